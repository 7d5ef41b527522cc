package dev.rewardensemble.model;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.MappedRows;
import dev.rewardensemble.io.TensorBytes;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.function.Predicate;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.Tensor;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.ByteDataBuffer;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Op;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Assign;
import org.tensorflow.op.core.IsVariableInitialized;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.core.StridedSliceAssign;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TBfloat16;
import org.tensorflow.types.TBool;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.TInt64;
import org.tensorflow.types.family.TType;

/**
 * The float variables of one graph, each named after its Hugging Face checkpoint key, with a
 * placeholder and an assign op per variable so that all values load in one {@code Session.run}.
 *
 * <p>Values live in the session, never as constants in the GraphDef (which would copy every weight
 * into the graph and hit protobuf's 2 GB limit on large models).
 */
public final class ParameterStore {
  private final Ops tf;
  private final String prefix;
  private final Map<String, Entry> entries;
  private final Storage storage;

  /**
   * One variable: {@code variable} in its storage dtype, {@code value} what forwards read (the
   * variable itself in float32, else its widening {@code Cast}).
   */
  private record Entry(
      String name,
      long[] shape,
      Precision storage,
      Variable<? extends TType> variable,
      Operand<TFloat32> value,
      Placeholder<? extends TType> feed,
      Assign<? extends TType> assign) {}

  /**
   * A table whose rows the host gathers ({@link #gatherOnHost}): no variable, a placeholder {@code
   * rows [N, width]} in the storage dtype fed per run from {@code table}, the checkpoint's tensor
   * mapped read-only (bound by {@link #load}).
   */
  private static final class Hosted {
    final String name;
    final long[] shape;
    final Precision storage;
    final Placeholder<? extends TType> rows;
    final Operand<TFloat32> value;
    MappedRows table;

    Hosted(
        String name,
        long[] shape,
        Precision storage,
        Placeholder<? extends TType> rows,
        Operand<TFloat32> value) {
      this.name = name;
      this.shape = shape;
      this.storage = storage;
      this.rows = rows;
      this.value = value;
    }
  }

  /** The storage rule and the host-gathered tables, shared by a store and its views. */
  private static final class Storage {
    Function<String, Precision> rule = name -> Precision.FLOAT32;
    Predicate<String> onHost = name -> false;
    final Map<String, Operand<TFloat32>> widened = new java.util.HashMap<>();
    final Map<String, Hosted> hosted = new LinkedHashMap<>();
    final Map<String, RowLoad> rowLoads = new java.util.HashMap<>();
  }

  public ParameterStore(Ops tf) {
    this(tf, "", new LinkedHashMap<>(), new Storage());
  }

  /** A store whose variables are created in {@code cx}'s graph. */
  public ParameterStore(BuildContext cx) {
    this(cx.tf());
  }

  private ParameterStore(Ops tf, String prefix, Map<String, Entry> entries, Storage storage) {
    this.tf = tf;
    this.prefix = prefix;
    this.entries = entries;
    this.storage = storage;
  }

  /**
   * Sets the dtype variables created from now on are stored in, by full key (e.g. bfloat16 for a
   * frozen trunk, {@link ExecConfig#weights}); float32 for every key until set. A bfloat16 variable
   * is read through {@link #value} (widened to float32 at the point of use) and loads from float32
   * or bfloat16 data; it cannot be trained ({@link #get} and {@link #variable} refuse it).
   *
   * @return this store
   */
  public ParameterStore storeAs(Function<String, Precision> rule) {
    storage.rule = java.util.Objects.requireNonNull(rule, "rule");
    return this;
  }

  /**
   * Sets the tables (by full key) whose rows {@link #rows} gathers on the host instead of from a
   * variable: a scoring graph's token embedding read from a checkpoint file, of which a batch reads
   * a few rows, so that the process holds only the pages of those rows ({@link MappedRows}) and not
   * the whole table. Such a table gets no variable: {@link #rows} returns a placeholder {@code [N,
   * width]} (in the key's storage dtype, widened to float32), {@link #load} maps the tensor from
   * its checkpoint file, and every run feeds the rows of the graph's flattened input ids ({@link
   * #feedHostRows}), which must be the ids the graph looks the table up with. Reading such a key
   * any other way ({@link #value}, {@link #get}, {@link #stored}) is refused. Applies to tables
   * first requested from now on; none until set.
   *
   * @return this store
   */
  public ParameterStore gatherOnHost(Predicate<String> names) {
    storage.onHost = java.util.Objects.requireNonNull(names, "names");
    return this;
  }

  /**
   * Bytes from which {@link dev.rewardensemble.api.RewardModel} gathers a token embedding's rows on
   * the host ({@link #gatherOnHost}): 16 MiB in the storage dtype. Below that a table is a small
   * part of any model, and batches read most of its rows anyway. The system property {@code
   * rme.hostRowsMin} (bytes) overrides it (tests set 0; a negative value turns host gathering off).
   */
  public static long hostRowsMin() {
    return Long.getLong("rme.hostRowsMin", 16L << 20);
  }

  /**
   * A view that creates and finds variables under {@code prefix + key} (e.g. {@code member2.}), so
   * that several models live in one graph and one store: model code asks the view for {@code
   * model.norm.weight}, the store holds {@code member2.model.norm.weight}. Every other method of a
   * view, like {@link #load} and {@link #names}, sees the whole store with full keys.
   */
  public ParameterStore view(String prefix) {
    return new ParameterStore(tf, this.prefix + prefix, entries, storage);
  }

  /**
   * Creates (or returns the existing) float32 variable {@code name} of the given shape: a variable
   * to train. A key stored in bfloat16 ({@link #storeAs}) is refused: read it through {@link
   * #value}.
   */
  public Variable<TFloat32> get(String key, long... shape) {
    return float32(entry(key, shape));
  }

  /**
   * The float32 value of variable {@code key} (created on first use): the variable itself, or for
   * one stored in bfloat16 its widening {@code Cast} (TensorFlow frees the float32 copy once the op
   * that reads it has run).
   */
  public Operand<TFloat32> value(String key, long... shape) {
    return value(entry(key, shape));
  }

  private Operand<TFloat32> value(Entry e) {
    if (e.value != null) {
      return e.value;
    }
    return storage.widened.computeIfAbsent(
        e.name, n -> tf.withName(n + "_f32").dtypes.cast(e.variable, TFloat32.class));
  }

  /**
   * {@link #value}, for a variable stored in bfloat16 widened only once {@code after} has been
   * computed (a control dependency): a forward passes its block's input, so that TensorFlow, which
   * runs every op as soon as its inputs are ready, widens one block's weights at a time instead of
   * all of them at the start of the run. A float32 variable is returned as it is.
   */
  public Operand<TFloat32> value(String key, long[] shape, Operand<?> after) {
    Entry e = entry(key, shape);
    if (e.storage == Precision.FLOAT32 || after == null) {
      return value(e);
    }
    return tf.withControlDependencies(List.<org.tensorflow.op.Op>of(after))
        .dtypes
        .cast(e.variable, TFloat32.class);
  }

  /**
   * Variable {@code key} (created on first use) in its storage dtype, unwidened: what a loop passes
   * into its body as a loop variable, to be widened there ({@link Weights#widening}).
   */
  public Operand<? extends TType> stored(String key, long... shape) {
    return entry(key, shape).variable;
  }

  /**
   * Rows {@code ids} (along axis 0) of variable {@code key} as float32: gathered in the storage
   * dtype and then widened, so that a bfloat16 embedding table is never widened as a whole.
   */
  public Operand<TFloat32> rows(String key, long[] shape, Operand<TInt32> ids) {
    String name = prefix + key;
    if (!entries.containsKey(name)
        && (storage.hosted.containsKey(name) || storage.onHost.test(name))) {
      return hosted(name, shape);
    }
    Entry e = entry(key, shape);
    if (e.storage == Precision.FLOAT32) {
      return tf.gather(value(e), ids, tf.constant(0));
    }
    return tf.dtypes.cast(tf.gather(e.variable, ids, tf.constant(0)), TFloat32.class);
  }

  /** Refuses a second request for {@code name} with another shape than it was created with. */
  private static void requireShape(String what, String name, long[] asked, long[] has) {
    if (!Arrays.equals(asked, has)) {
      throw new IllegalStateException(
          what
              + " "
              + name
              + " requested with shape "
              + Arrays.toString(asked)
              + " but exists with "
              + Arrays.toString(has));
    }
  }

  private Operand<TFloat32> hosted(String name, long[] shape) {
    Hosted h = storage.hosted.get(name);
    if (h != null) {
      requireShape("table", name, shape, h.shape);
      return h.value;
    }
    if (shape.length != 2) {
      throw new IllegalArgumentException(
          "only a matrix's rows can be gathered on the host: " + name + Arrays.toString(shape));
    }
    Precision p = storage.rule.apply(name);
    Shape rowsShape = Shape.of(Shape.UNKNOWN_SIZE, shape[1]);
    if (p == Precision.BFLOAT16) {
      Placeholder<TBfloat16> rows =
          tf.withName(name + "_rows").placeholder(TBfloat16.class, Placeholder.shape(rowsShape));
      h = new Hosted(name, shape.clone(), p, rows, tf.dtypes.cast(rows, TFloat32.class));
    } else {
      Placeholder<TFloat32> rows =
          tf.withName(name + "_rows").placeholder(TFloat32.class, Placeholder.shape(rowsShape));
      h = new Hosted(name, shape.clone(), p, rows, rows);
    }
    storage.hosted.put(name, h);
    return h.value;
  }

  /**
   * Rows {@code [start, start + count)} of the matrix variable {@code key} as float32: a slice of
   * the variable, widened (for one stored in bfloat16) once {@code after} has been computed (null:
   * at once), so that a caller can widen a large bfloat16 matrix a block of rows at a time.
   */
  public Operand<TFloat32> rowRange(
      String key, long[] shape, int start, int count, Operand<?> after) {
    return Weights.rowRange(tf, entry(key, shape).variable, start, count, after);
  }

  /** The tables whose rows are gathered on the host, by full key, in creation order. */
  public List<String> hostedNames() {
    return List.copyOf(storage.hosted.keySet());
  }

  /**
   * Feeds every host-gathered table ({@link #gatherOnHost}) to {@code runner}: rows {@code ids}
   * (the graph's input ids, flattened) copied from the mapped checkpoint into a new tensor of the
   * table's storage dtype, added to {@code fed}, which the caller closes after the run.
   *
   * @throws IllegalArgumentException naming an id outside the table
   */
  public Session.Runner feedHostRows(Session.Runner runner, int[] ids, List<Tensor> fed) {
    for (Hosted h : storage.hosted.values()) {
      MappedRows table = h.table;
      if (table == null) {
        throw new IllegalStateException("the table " + h.name + " has not been loaded");
      }
      Shape sh = Shape.of(ids.length, h.shape[1]);
      Tensor t = h.storage == Precision.BFLOAT16 ? TBfloat16.tensorOf(sh) : TFloat32.tensorOf(sh);
      fed.add(t);
      ByteDataBuffer data = t.asRawTensor().data();
      byte[] staging = new byte[Math.toIntExact(h.shape[1] * TensorBytes.bytes(h.storage))];
      table.gather(ids, h.storage, (chunk, offset) -> copy(chunk, data, offset, staging));
      runner.feed(h.rows, t);
    }
    return runner;
  }

  /**
   * The host-gathered tables' values ({@link #gatherOnHost}) as float32 of their storage dtype's
   * precision, read from their mapped checkpoints.
   */
  public Map<String, FloatTensor> readHosted() {
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    for (Hosted h : storage.hosted.values()) {
      if (h.table == null) {
        throw new IllegalStateException("the table " + h.name + " has not been loaded");
      }
      out.put(h.name, h.table.readAll(h.storage));
    }
    return out;
  }

  /**
   * Unmaps the host-gathered tables' checkpoints (idempotent). Their owner (the session's owner)
   * calls it once no run can read them any more: after the session is closed.
   */
  public void unmapHostRows() {
    RuntimeException failure = null;
    for (Hosted h : storage.hosted.values()) {
      try {
        if (h.table != null) {
          h.table.close();
        }
      } catch (RuntimeException ex) {
        if (failure == null) {
          failure = ex;
        } else {
          failure.addSuppressed(ex);
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
  }

  /** The dtype variable {@code name} is stored in. */
  public Precision storage(String name) {
    Entry e = entries.get(name);
    if (e == null) {
      throw new IllegalArgumentException("no variable named " + name);
    }
    return e.storage;
  }

  private Entry entry(String key, long[] shape) {
    String name = prefix + key;
    if (storage.hosted.containsKey(name)) {
      throw new IllegalStateException(
          name + " is gathered on the host (gatherOnHost): only its rows can be read");
    }
    Entry e = entries.get(name);
    if (e != null) {
      requireShape("variable", name, shape, e.shape);
      return e;
    }
    Precision p = storage.rule.apply(name);
    if (p == Precision.BFLOAT16) {
      Variable<TBfloat16> v = tf.withName(name).variable(Shape.of(shape), TBfloat16.class);
      Placeholder<TBfloat16> feed =
          tf.withName(name + "_feed")
              .placeholder(TBfloat16.class, Placeholder.shape(Shape.of(shape)));
      Assign<TBfloat16> assign = tf.withName(name + "_load").assign(v, feed);
      e =
          new Entry(
              name,
              shape.clone(),
              p,
              v,
              null, // widened on first use: value()
              feed,
              assign);
    } else {
      Variable<TFloat32> v = tf.withName(name).variable(Shape.of(shape), TFloat32.class);
      Placeholder<TFloat32> feed =
          tf.withName(name + "_feed")
              .placeholder(TFloat32.class, Placeholder.shape(Shape.of(shape)));
      Assign<TFloat32> assign = tf.withName(name + "_load").assign(v, feed);
      e = new Entry(name, shape.clone(), Precision.FLOAT32, v, v, feed, assign);
    }
    entries.put(name, e);
    return e;
  }

  @SuppressWarnings("unchecked")
  private static Variable<TFloat32> float32(Entry e) {
    if (e.storage != Precision.FLOAT32) {
      throw new IllegalStateException(
          "variable "
              + e.name
              + " is stored in "
              + e.storage.id()
              + " (frozen): it has no float32 variable");
    }
    return (Variable<TFloat32>) e.variable;
  }

  public boolean contains(String name) {
    return entries.containsKey(name);
  }

  public Variable<TFloat32> variable(String name) {
    Entry e = entries.get(name);
    if (e == null) {
      throw new IllegalArgumentException("no variable named " + name);
    }
    return float32(e);
  }

  public long[] shape(String name) {
    Entry e = entries.get(name);
    if (e == null) {
      throw new IllegalArgumentException("no variable named " + name);
    }
    return e.shape.clone();
  }

  /** Names in creation order. */
  public List<String> names() {
    return List.copyOf(entries.keySet());
  }

  /** Name to shape, in creation order. */
  public Map<String, long[]> shapes() {
    Map<String, long[]> m = new LinkedHashMap<>();
    entries.forEach((k, e) -> m.put(k, e.shape.clone()));
    return Collections.unmodifiableMap(m);
  }

  /** Total number of scalar parameters of the given variables. */
  public long count(Collection<String> names) {
    long n = 0;
    for (String name : names) {
      n += FloatTensor.numElements(shape(name));
    }
    return n;
  }

  /**
   * Loads values into the session. Every variable must be given exactly once unless {@code
   * partial}; names and shapes are checked first (from the headers for a {@link LazyWeights}, whose
   * tensors are not read for it), and the error names the key and both shapes.
   *
   * <p>Values in memory for float32 variables load in one run. A {@link LazyWeights} or a variable
   * stored in bfloat16 loads tensor by tensor: a tensor of the variable's dtype is filled from the
   * checkpoint's memory map (converted only if the dtypes differ) and assigned in runs of {@link
   * #groupBytes} (freed after each run), so that at most a group is in flight and no whole-model
   * copy exists; a tensor larger than a group loads in blocks of its rows ({@link
   * #loadInRowBlocks}).
   */
  public void load(
      Session session, Map<String, FloatTensor> values, boolean partial, String source) {
    load(session, values, partial, source, 0);
  }

  /**
   * {@link #load(Session, Map, boolean, String)} streaming {@code groupBytes} per run (0: {@link
   * #groupBytes} of the load's total), for tests of the grouping and of row blocks.
   */
  void load(
      Session session,
      Map<String, FloatTensor> values,
      boolean partial,
      String source,
      long groupBytesOrZero) {
    List<String> problems = new ArrayList<>();
    for (String key : values.keySet()) {
      Entry e = entries.get(key);
      long[] shape = LazyWeights.shapeOf(values, key);
      Hosted h = storage.hosted.get(key);
      long[] expected = h != null ? h.shape : e != null ? e.shape : null;
      if (expected == null) {
        problems.add("unexpected tensor '" + key + "' " + Arrays.toString(shape));
      } else if (!Arrays.equals(expected, shape)) {
        problems.add(
            "tensor '"
                + key
                + "' has shape "
                + Arrays.toString(shape)
                + ", the model expects "
                + Arrays.toString(expected));
      } else if (h != null && !(values instanceof LazyWeights l && l.rowsMappable(key))) {
        problems.add(
            "tensor '"
                + key
                + "' must be an F32 or BF16 matrix in a checkpoint file (its rows are gathered"
                + " on the host)");
      }
    }
    if (!partial) {
      TreeSet<String> missing = new TreeSet<>(entries.keySet());
      missing.addAll(storage.hosted.keySet());
      missing.removeAll(values.keySet());
      for (String m : missing) {
        long[] shape = entries.containsKey(m) ? entries.get(m).shape : storage.hosted.get(m).shape;
        problems.add("missing tensor '" + m + "' " + Arrays.toString(shape));
      }
    }
    if (!problems.isEmpty()) {
      int shown = Math.min(problems.size(), 10);
      throw new IllegalArgumentException(
          source
              + ": "
              + String.join("; ", problems.subList(0, shown))
              + (problems.size() > shown ? "; and " + (problems.size() - shown) + " more" : ""));
    }
    if (values.keySet().stream().anyMatch(storage.hosted::containsKey)) {
      LazyWeights lazy = (LazyWeights) values;
      LazyWeights rest = new LazyWeights();
      for (String key : values.keySet()) {
        Hosted h = storage.hosted.get(key);
        if (h == null) {
          rest.putFrom(key, lazy, key);
        } else {
          MappedRows old = h.table;
          h.table = lazy.mapRows(key);
          if (old != null) {
            old.close();
          }
        }
      }
      values = rest;
    }
    if (values.isEmpty()) {
      return;
    }
    boolean stream =
        values instanceof LazyWeights
            || values.keySet().stream().anyMatch(k -> entries.get(k).storage != Precision.FLOAT32);
    if (stream) {
      LazyWeights lazy = values instanceof LazyWeights l ? l : new LazyWeights(values);
      byte[] staging = new byte[STAGING_BYTES]; // one for the whole load: no garbage per tensor
      List<Tensor> group = new ArrayList<>();
      long total = 0;
      for (String key : values.keySet()) {
        Entry e = entries.get(key);
        total += bytesOf(e);
      }
      releaseBuildGarbage(total);
      long groupBytes = groupBytesOrZero > 0 ? groupBytesOrZero : groupBytes(total);
      try (LazyWeights.Reader reader = lazy.open()) {
        Session.Runner runner = session.runner();
        long bytes = 0;
        for (String key : values.keySet()) {
          Entry e = entries.get(key);
          if (e.shape.length >= 2 && bytesOf(e) > groupBytes) {
            loadInRowBlocks(session, reader, e, groupBytes, staging);
            continue;
          }
          Tensor t = tensorOf(reader, e.name, e.shape, e.storage, staging);
          group.add(t);
          runner.feed(e.feed, t).addTarget(e.assign);
          bytes += t.numBytes();
          if (bytes >= groupBytes) {
            runner.run().close();
            group.forEach(Tensor::close);
            group.clear();
            runner = session.runner();
            bytes = 0;
          }
        }
        if (!group.isEmpty()) {
          runner.run().close();
        }
      } finally {
        group.forEach(Tensor::close);
      }
      return;
    }
    List<Tensor> tensors = new ArrayList<>();
    try {
      Session.Runner runner = session.runner();
      for (Map.Entry<String, FloatTensor> v : values.entrySet()) {
        Entry e = entries.get(v.getKey());
        TFloat32 t =
            TFloat32.tensorOf(Shape.of(e.shape), DataBuffers.of(v.getValue().data(), true, false));
        tensors.add(t);
        runner.feed(e.feed, t).addTarget(e.assign);
      }
      runner.run().close();
    } finally {
      tensors.forEach(Tensor::close);
    }
  }

  private static long bytesOf(Entry e) {
    return FloatTensor.numElements(e.shape) * TensorBytes.bytes(e.storage);
  }

  /**
   * The ops that load a variable a block of rows at a time: {@code allocate} gives a variable not
   * yet {@code initialized} its buffer (an uninitialised {@code Empty}, which the assign takes over
   * without a copy), {@code assign} writes the rows fed to {@code rows} at {@code [begin, end)} in
   * place.
   */
  private record RowLoad(
      Operand<TBool> initialized,
      Op allocate,
      Placeholder<? extends TType> rows,
      Placeholder<TInt64> begin,
      Placeholder<TInt64> end,
      Op assign) {}

  /** {@code e}'s {@link RowLoad}, added to the graph the first time the variable needs it. */
  private RowLoad rowLoad(Entry e) {
    return storage.rowLoads.computeIfAbsent(e.name, n -> rowLoad(e.variable, e.shape));
  }

  private <T extends TType> RowLoad rowLoad(Variable<T> v, long[] shape) {
    String name = v.op().name();
    Class<T> type = v.type();
    int[] dims = new int[shape.length];
    long[] blockShape = shape.clone();
    long[] ones = new long[shape.length];
    for (int i = 0; i < shape.length; i++) {
      dims[i] = Math.toIntExact(shape[i]);
      ones[i] = 1;
    }
    blockShape[0] = -1;
    Assign<T> allocate =
        tf.withName(name + "_allocate").assign(v, tf.empty(tf.constant(dims), type));
    Placeholder<T> rows =
        tf.withName(name + "_rows_feed").placeholder(type, Placeholder.shape(Shape.of(blockShape)));
    Placeholder<TInt64> begin =
        tf.withName(name + "_rows_begin")
            .placeholder(TInt64.class, Placeholder.shape(Shape.of(shape.length)));
    Placeholder<TInt64> end =
        tf.withName(name + "_rows_end")
            .placeholder(TInt64.class, Placeholder.shape(Shape.of(shape.length)));
    StridedSliceAssign<T> assign =
        tf.withName(name + "_rows_load").stridedSliceAssign(v, begin, end, tf.constant(ones), rows);
    IsVariableInitialized initialized = tf.withName(name + "_initialized").isVariableInitialized(v);
    return new RowLoad(initialized, allocate, rows, begin, end, assign);
  }

  /**
   * Loads {@code e}, larger than {@code blockBytes}, in blocks of whole rows of at most that many
   * bytes (at least one row), each assigned in place into the variable's one buffer. A whole tensor
   * fed to an assign is a second copy in flight, and TensorFlow's CPU allocator keeps the memory it
   * frees for later tensors: a 250 MiB embedding loaded whole left 250 MiB of free allocator memory
   * beside the weights, which the model's other 193 MiB did not fill (the bench's 465 MB bf16
   * memory model: 717 MiB anonymous memory after the load, 674 in blocks; the peak of two
   * generations after it 13 MiB lower, three runs each). The blocks of one variable share one run
   * signature, so that TensorFlow prunes the graph once for them.
   */
  private void loadInRowBlocks(
      Session session, LazyWeights.Reader reader, Entry e, long blockBytes, byte[] staging) {
    RowLoad ops = rowLoad(e);
    try (Result r = session.runner().fetch(ops.initialized).run()) {
      if (!((TBool) r.get(0)).getBoolean()) {
        session.runner().addTarget(ops.allocate).run().close();
      } // else loaded before: its buffer is written over in place
    }
    long total = bytesOf(e);
    long rowBytes = total / e.shape[0];
    long perBlock = Math.max(1, blockBytes / Math.max(1, rowBytes));
    Precision dtype = e.storage;
    long[] filled = {0};
    Tensor[] block = {null};
    long[] blockStart = {0}; // first byte of the open block
    long[] blockRows = {0};
    try {
      reader.stream(
          e.name,
          dtype,
          (chunk, offset) -> {
            if (offset != filled[0] || offset + chunk.remaining() > total) {
              throw new IllegalStateException(
                  e.name
                      + ": bytes "
                      + offset
                      + ".."
                      + (offset + chunk.remaining())
                      + " streamed into a "
                      + total
                      + "-byte tensor after "
                      + filled[0]);
            }
            ByteBuffer in = chunk.slice();
            while (in.hasRemaining()) {
              if (block[0] == null) {
                long row = filled[0] / rowBytes;
                blockRows[0] = Math.min(perBlock, e.shape[0] - row);
                long[] sh = e.shape.clone();
                sh[0] = blockRows[0];
                block[0] =
                    dtype == Precision.BFLOAT16
                        ? TBfloat16.tensorOf(Shape.of(sh))
                        : TFloat32.tensorOf(Shape.of(sh));
                blockStart[0] = filled[0];
              }
              long blockEnd = blockStart[0] + blockRows[0] * rowBytes;
              int n = (int) Math.min(in.remaining(), blockEnd - filled[0]);
              ByteBuffer part = in.slice().limit(n);
              copy(part, block[0].asRawTensor().data(), filled[0] - blockStart[0], staging);
              in.position(in.position() + n);
              filled[0] += n;
              if (filled[0] == blockEnd) {
                long row = blockStart[0] / rowBytes;
                assignRows(session, ops, e.shape, row, row + blockRows[0], block[0]);
                block[0].close();
                block[0] = null;
              }
            }
          });
    } finally {
      if (block[0] != null) {
        block[0].close();
      }
    }
    if (filled[0] != total) {
      throw new IllegalStateException(
          e.name + ": " + filled[0] + " bytes streamed into a " + total + "-byte tensor");
    }
  }

  private static void assignRows(
      Session session, RowLoad ops, long[] shape, long from, long to, Tensor rows) {
    long[] begin = new long[shape.length];
    long[] end = shape.clone();
    begin[0] = from;
    end[0] = to;
    try (TInt64 b = TInt64.vectorOf(begin);
        TInt64 en = TInt64.vectorOf(end)) {
      session
          .runner()
          .feed(ops.rows, rows)
          .feed(ops.begin, b)
          .feed(ops.end, en)
          .addTarget(ops.assign)
          .run()
          .close();
    }
  }

  /** Bytes of a streamed load from which {@link #releaseBuildGarbage} collects the heap first. */
  static final long COLLECT_FOR_LOADS_OF = 64L << 20;

  /**
   * Before a large streamed load, collects the Java heap: building a large graph through TensorFlow
   * Java leaves garbage (JavaCPP pointers, op builders, gradient bookkeeping) that G1 under the
   * launcher's {@code -Xmx8g} lets grow to gigabytes before collecting, and the pages it touched
   * stayed in the process's RSS beside the weights. A full collection of the small live set takes
   * tens of milliseconds against seconds of loading, and G1 then shrinks the heap and returns the
   * freed regions to the operating system, so that the eden the later runs touch starts small.
   * Measured on the K = 3 LoRA phase-2 step of llama-7b (bf16 trunk of 13.2 GB, every block
   * recomputed): peak RSS 19.01 GB without it, 17.35 GB with it (load peaks 18.09 and 16.47 GB); on
   * the same graph over 2 blocks of the model, load peaks 2.10 and 1.77 GB. It used to collect only
   * above 128 MiB of heap in use; a decoding process of the bench's 465 MB bf16 memory model held
   * 79 MiB there, and its heap's resident pages at the end of two generations were 77-113 MiB with
   * that rule and 39-41 MiB collecting always (a 44 ms pause; heap 400 -> 136 MiB). Small models
   * (tests, the demo) never reach the load size.
   */
  private static void releaseBuildGarbage(long loadBytes) {
    if (loadBytes >= COLLECT_FOR_LOADS_OF) {
      System.gc();
    }
  }

  /**
   * Bytes of streamed tensors assigned by one {@code Session.run}. Every run with a new set of
   * feeds and targets makes TensorFlow prune and place the whole graph for it (an executor per
   * signature), which costs about a second per run in a 7B LoRA training graph on two cores; runs
   * of ~256 MiB make that a few dozen runs instead of one per tensor, at the price of holding up to
   * that many bytes (plus one tensor) in flight.
   */
  static final long GROUP_BYTES = 256L << 20;

  /**
   * Bytes per run when loading {@code total} bytes: a 32nd of the load, between 8 MiB and {@link
   * #GROUP_BYTES}. The tensors in flight are a second copy of that much of the model, and
   * TensorFlow's CPU allocator keeps the memory they free for later tensors, so a group of 256 MiB
   * put that much above the model into a small model's peak RSS (measured: generation's peak on the
   * 109M copy of bench-llama); at least 32 runs keep it to a 32nd, while a large model keeps the
   * fewest runs.
   */
  static long groupBytes(long total) {
    return Math.min(GROUP_BYTES, Math.max(8L << 20, total / 32));
  }

  /**
   * A new tensor of {@code storage}'s dtype and {@code shape} filled with {@code key}'s values
   * streamed from {@code reader} (converted only if the dtypes differ); the caller closes it.
   */
  public static Tensor tensorOf(
      LazyWeights.Reader reader, String key, long[] shape, Precision storage) {
    return tensorOf(reader, key, shape, storage, new byte[STAGING_BYTES]);
  }

  /** Bytes copied at a time from a streamed chunk into a tensor. */
  private static final int STAGING_BYTES = 1 << 22;

  private static Tensor tensorOf(
      LazyWeights.Reader reader, String key, long[] shape, Precision storage, byte[] staging) {
    Shape sh = Shape.of(shape);
    Tensor t = storage == Precision.BFLOAT16 ? TBfloat16.tensorOf(sh) : TFloat32.tensorOf(sh);
    try {
      ByteDataBuffer data = t.asRawTensor().data();
      long expected = data.size();
      long[] filled = {0};
      reader.stream(
          key,
          storage,
          (chunk, offset) -> {
            int n = chunk.remaining();
            if (offset + n > expected) {
              throw new IllegalStateException(
                  key
                      + ": "
                      + (offset + n)
                      + " bytes streamed into a "
                      + expected
                      + "-byte tensor");
            }
            copy(chunk, data, offset, staging);
            filled[0] += n;
          });
      if (filled[0] != expected) {
        throw new IllegalStateException(
            key + ": " + filled[0] + " bytes streamed into a " + expected + "-byte tensor");
      }
      return t;
    } catch (RuntimeException | Error ex) {
      t.close();
      throw ex;
    }
  }

  /**
   * Copies {@code chunk}'s remaining bytes to byte {@code offset} of {@code data} through {@code
   * staging}, a small heap buffer: a raw buffer's array writes are block copies, while copying a
   * NIO buffer into it goes byte by byte.
   */
  private static void copy(ByteBuffer chunk, ByteDataBuffer data, long offset, byte[] staging) {
    ByteBuffer in = chunk.slice();
    int n = in.remaining();
    for (int done = 0; done < n; ) {
      int m = Math.min(staging.length, n - done);
      in.get(staging, 0, m);
      data.offset(offset + done).write(staging, 0, m);
      done += m;
    }
  }

  /** Reads the current values of the given variables in one run. */
  public Map<String, FloatTensor> read(Session session, Collection<String> names) {
    Map<String, org.tensorflow.Operand<TFloat32>> byName = new LinkedHashMap<>();
    for (String name : names) {
      Entry e = entries.get(name);
      if (e == null) {
        throw new IllegalArgumentException("no variable named " + name);
      }
      byName.put(name, value(e));
    }
    return fetch(session, byName);
  }

  /**
   * The current values of the variables {@code names} as a {@link LazyWeights} whose tensors stay
   * in the session: each is fetched in its storage dtype only when it is read or written (e.g. by
   * {@code Safetensors.write}), streamed out in chunks and freed before the next, so that no
   * whole-model copy is made. Valid while the session is open.
   */
  public LazyWeights deferred(Session session, Collection<String> names) {
    LazyWeights out = new LazyWeights();
    for (String name : names) {
      Entry e = entries.get(name);
      if (e == null) {
        throw new IllegalArgumentException("no variable named " + name);
      }
      out.putDeferred(name, deferred(session, e.variable, e.shape, e.storage));
    }
    return out;
  }

  /**
   * {@code operand} (float32 or bfloat16, of {@code shape}) read from {@code session} each time it
   * is streamed: one fetched tensor in flight.
   */
  public static LazyWeights.Deferred deferred(
      Session session, Operand<?> operand, long[] shape, Precision dtype) {
    long[] sh = shape.clone();
    return new LazyWeights.Deferred() {
      @Override
      public long[] shape() {
        return sh.clone();
      }

      @Override
      public Precision dtype() {
        return dtype;
      }

      @Override
      public void stream(Precision target, TensorBytes.Sink sink) {
        try (Result r = session.runner().fetch(operand).run()) {
          ByteDataBuffer data = r.get(0).asRawTensor().data();
          int from = TensorBytes.bytes(dtype);
          int to = TensorBytes.bytes(target);
          long size = data.size();
          int chunk = (int) Math.min(size, (1 << 22) / from * from);
          byte[] buf = new byte[Math.max(chunk, 1)];
          for (long done = 0; done < size; done += chunk) {
            int n = (int) Math.min(chunk, size - done);
            data.slice(done, n).read(buf, 0, n);
            ByteBuffer in = ByteBuffer.wrap(buf, 0, n).order(ByteOrder.LITTLE_ENDIAN);
            TensorBytes.convert(in, dtype, target, done / from * to, sink);
          }
        }
      }
    };
  }

  /**
   * Fetches float operands (e.g. variables, optimizer slots) in one run, as named tensors on the
   * heap.
   */
  public static Map<String, FloatTensor> fetch(
      Session session, Map<String, ? extends org.tensorflow.Operand<TFloat32>> byName) {
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    if (byName.isEmpty()) {
      return out;
    }
    Session.Runner runner = session.runner();
    List<String> order = new ArrayList<>(byName.keySet());
    order.forEach(n -> runner.fetch(byName.get(n)));
    try (Result r = runner.run()) {
      for (int i = 0; i < order.size(); i++) {
        TFloat32 t = (TFloat32) r.get(i);
        float[] data = new float[Math.toIntExact(t.size())];
        t.asRawTensor().data().asFloats().read(data);
        out.put(order.get(i), new FloatTensor(t.shape().asArray(), data));
      }
    }
    return out;
  }

  /** Reads every variable. */
  public Map<String, FloatTensor> readAll(Session session) {
    return read(session, entries.keySet());
  }

  /** The ops that assign every variable from its feed (used to mark a graph's load targets). */
  public List<Op> loadOps() {
    List<Op> ops = new ArrayList<>();
    entries.values().forEach(e -> ops.add(e.assign));
    return ops;
  }
}
