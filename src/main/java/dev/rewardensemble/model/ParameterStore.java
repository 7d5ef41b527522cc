package dev.rewardensemble.model;

import dev.rewardensemble.io.FloatTensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.Tensor;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Op;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Assign;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TFloat32;

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

  private record Entry(
      String name,
      long[] shape,
      Variable<TFloat32> variable,
      Placeholder<TFloat32> feed,
      Assign<TFloat32> assign) {}

  public ParameterStore(Ops tf) {
    this(tf, "", new LinkedHashMap<>());
  }

  /** A store whose variables are created in {@code cx}'s graph. */
  public ParameterStore(BuildContext cx) {
    this(cx.tf());
  }

  private ParameterStore(Ops tf, String prefix, Map<String, Entry> entries) {
    this.tf = tf;
    this.prefix = prefix;
    this.entries = entries;
  }

  /**
   * A view that creates and finds variables under {@code prefix + key} (e.g. {@code member2.}), so
   * that several models live in one graph and one store: model code asks the view for {@code
   * model.norm.weight}, the store holds {@code member2.model.norm.weight}. Every other method of a
   * view, like {@link #load} and {@link #names}, sees the whole store with full keys.
   */
  public ParameterStore view(String prefix) {
    return new ParameterStore(tf, this.prefix + prefix, entries);
  }

  /** Creates (or returns the existing) variable {@code name} of the given shape. */
  public Variable<TFloat32> get(String key, long... shape) {
    String name = prefix + key;
    Entry e = entries.get(name);
    if (e != null) {
      if (!Arrays.equals(e.shape, shape)) {
        throw new IllegalStateException(
            "variable "
                + name
                + " requested with shape "
                + Arrays.toString(shape)
                + " but exists with "
                + Arrays.toString(e.shape));
      }
      return e.variable;
    }
    Variable<TFloat32> v = tf.withName(name).variable(Shape.of(shape), TFloat32.class);
    Placeholder<TFloat32> feed =
        tf.withName(name + "_feed").placeholder(TFloat32.class, Placeholder.shape(Shape.of(shape)));
    Assign<TFloat32> assign = tf.withName(name + "_load").assign(v, feed);
    entries.put(name, new Entry(name, shape.clone(), v, feed, assign));
    return v;
  }

  public boolean contains(String name) {
    return entries.containsKey(name);
  }

  public Variable<TFloat32> variable(String name) {
    Entry e = entries.get(name);
    if (e == null) {
      throw new IllegalArgumentException("no variable named " + name);
    }
    return e.variable;
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
   * Loads values into the session in one run. Every variable must be given exactly once unless
   * {@code partial}; names and shapes are checked first, and the error names the key and both
   * shapes.
   */
  public void load(
      Session session, Map<String, FloatTensor> values, boolean partial, String source) {
    List<String> problems = new ArrayList<>();
    for (Map.Entry<String, FloatTensor> v : values.entrySet()) {
      Entry e = entries.get(v.getKey());
      if (e == null) {
        problems.add("unexpected tensor '" + v.getKey() + "' " + v.getValue().shapeString());
      } else if (!Arrays.equals(e.shape, v.getValue().shape())) {
        problems.add(
            "tensor '"
                + v.getKey()
                + "' has shape "
                + v.getValue().shapeString()
                + ", the model expects "
                + Arrays.toString(e.shape));
      }
    }
    if (!partial) {
      TreeSet<String> missing = new TreeSet<>(entries.keySet());
      missing.removeAll(values.keySet());
      for (String m : missing) {
        problems.add("missing tensor '" + m + "' " + Arrays.toString(entries.get(m).shape));
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
    if (values.isEmpty()) {
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

  /** Reads the current values of the given variables in one run. */
  public Map<String, FloatTensor> read(Session session, Collection<String> names) {
    Map<String, org.tensorflow.Operand<TFloat32>> byName = new LinkedHashMap<>();
    for (String name : names) {
      byName.put(name, variable(name));
    }
    return fetch(session, byName);
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
