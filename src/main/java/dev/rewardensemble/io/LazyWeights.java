package dev.rewardensemble.io;

import dev.rewardensemble.config.Precision;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.AbstractMap;
import java.util.AbstractSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Named weights of which some are still on disk: a {@code Map<String, FloatTensor>} whose on-disk
 * entries are read (as float32, one tensor) only when a caller asks for their value, so that
 * holding a model costs no heap. What {@link HfCheckpoint#open} hands out; a graph's {@code
 * ParameterStore} loads such a map through {@link #open()}, streaming every tensor from the file's
 * memory map straight into its variable in the variable's dtype, one tensor in flight.
 *
 * <p>Shapes and stored dtypes are known from the safetensors headers ({@link #shape}, {@link
 * #storedDtype}) without reading any data. Entries can also be given as values ({@link #put}), e.g.
 * a zero head or trained adapters next to a frozen trunk. Insertion-ordered; not thread-safe.
 */
public final class LazyWeights extends AbstractMap<String, FloatTensor> {

  /** A tensor on disk: the checkpoint (directory or file) and its key there. */
  private record Ref(Path checkpoint, String sourceKey, TensorInfo info) {}

  /**
   * A tensor held outside the Java heap (e.g. a graph variable in a session), whose bytes are
   * streamed on demand: what {@link #putDeferred} adds.
   */
  public interface Deferred {
    /** Its shape. */
    long[] shape();

    /** The dtype it is held in. */
    Precision dtype();

    /** Streams its values as {@code target}'s little-endian bytes, chunk by chunk. */
    void stream(Precision target, TensorBytes.Sink sink);
  }

  /**
   * The tensors of a safetensors file (or checkpoint directory, or sharded index) by their keys in
   * the file, validated from the headers and left on disk: a checkpoint of {@code
   * dev.rewardensemble.train.Checkpoints}, a run's {@code model.safetensors}.
   */
  public static LazyWeights ofFile(Path file) throws IOException {
    LazyWeights w = new LazyWeights();
    try (TensorSource src = TensorSources.openCheckpoint(file)) {
      for (String key : src.keys()) {
        w.putLazy(key, file, key, src.info(key));
      }
    }
    return w;
  }

  /** Adds {@code value}, streamed from where it is held whenever it is read or written. */
  public void putDeferred(String key, Deferred value) {
    entries.put(key, java.util.Objects.requireNonNull(value, key));
  }

  private final Map<String, Object> entries = new LinkedHashMap<>();

  public LazyWeights() {}

  /** A copy of {@code m}: lazy entries stay lazy. */
  public LazyWeights(Map<String, FloatTensor> m) {
    putAll(m);
  }

  /** Adds the on-disk tensor {@code sourceKey} of {@code checkpoint} as {@code key}. */
  void putLazy(String key, Path checkpoint, String sourceKey, TensorInfo info) {
    entries.put(key, new Ref(checkpoint, sourceKey, info));
  }

  /** Adds {@code from}'s entry {@code fromKey} as {@code key}, lazy if it is lazy there. */
  public void putFrom(String key, Map<String, FloatTensor> from, String fromKey) {
    if (from instanceof LazyWeights l) {
      Object v = l.entries.get(fromKey);
      if (v == null) {
        throw new IllegalArgumentException("no tensor '" + fromKey + "'");
      }
      entries.put(key, v);
    } else {
      FloatTensor t = from.get(fromKey);
      if (t == null) {
        throw new IllegalArgumentException("no tensor '" + fromKey + "'");
      }
      entries.put(key, t);
    }
  }

  @Override
  public void putAll(Map<? extends String, ? extends FloatTensor> m) {
    if (m instanceof LazyWeights l) {
      entries.putAll(l.entries);
    } else {
      super.putAll(m);
    }
  }

  @Override
  public FloatTensor put(String key, FloatTensor value) {
    Object old = entries.put(key, java.util.Objects.requireNonNull(value, key));
    return old == null ? null : materialize(old);
  }

  @Override
  public FloatTensor get(Object key) {
    Object v = entries.get(key);
    return v == null ? null : materialize(v);
  }

  @Override
  public boolean containsKey(Object key) {
    return entries.containsKey(key);
  }

  @Override
  public FloatTensor remove(Object key) {
    Object v = entries.remove(key);
    return v instanceof FloatTensor t ? t : null;
  }

  @Override
  public int size() {
    return entries.size();
  }

  @Override
  public Set<String> keySet() {
    return entries.keySet();
  }

  @Override
  public Set<Entry<String, FloatTensor>> entrySet() {
    return new AbstractSet<>() {
      @Override
      public Iterator<Entry<String, FloatTensor>> iterator() {
        Iterator<Map.Entry<String, Object>> it = entries.entrySet().iterator();
        return new Iterator<>() {
          @Override
          public boolean hasNext() {
            return it.hasNext();
          }

          @Override
          public Entry<String, FloatTensor> next() {
            Map.Entry<String, Object> e = it.next();
            return new SimpleImmutableEntry<>(e.getKey(), materialize(e.getValue()));
          }

          @Override
          public void remove() {
            it.remove();
          }
        };
      }

      @Override
      public int size() {
        return entries.size();
      }
    };
  }

  /** Whether {@code key}'s value is still on disk (or held outside the heap). */
  public boolean isLazy(String key) {
    Object v = entries.get(key);
    return v instanceof Ref || v instanceof Deferred;
  }

  /**
   * Whether {@code key} is a matrix in a checkpoint file that {@link #mapRows} can map: F32 or BF16
   * ({@link MappedRows#mappable}), still on disk.
   */
  public boolean rowsMappable(String key) {
    return entries.get(key) instanceof Ref r
        && MappedRows.mappable(r.info().dtype(), r.info().shape());
  }

  /**
   * Maps {@code key}'s tensor read-only from its checkpoint file for row lookups ({@link
   * #rowsMappable}); the caller closes the mapping.
   *
   * @throws IllegalArgumentException if {@code key} is not such a tensor
   */
  public MappedRows mapRows(String key) {
    if (!rowsMappable(key)) {
      throw new IllegalArgumentException(
          "tensor '" + key + "' is not an F32 or BF16 matrix on disk");
    }
    Ref r = (Ref) entries.get(key);
    try (TensorSource src = TensorSources.openCheckpoint(r.checkpoint())) {
      return src.mapRows(r.sourceKey());
    } catch (IOException e) {
      throw new UncheckedIOException("opening " + r.checkpoint() + " failed: " + e.getMessage(), e);
    }
  }

  /** The shape of {@code key}, from the header when it is on disk. */
  public long[] shape(String key) {
    Object v = entries.get(key);
    if (v == null) {
      throw new IllegalArgumentException("no tensor '" + key + "'");
    }
    if (v instanceof Deferred d) {
      return d.shape().clone();
    }
    return v instanceof Ref r ? r.info().shape() : ((FloatTensor) v).shape().clone();
  }

  /** The safetensors dtype {@code key} is stored in ({@code F32} for values in memory). */
  public String storedDtype(String key) {
    Object v = entries.get(key);
    if (v == null) {
      throw new IllegalArgumentException("no tensor '" + key + "'");
    }
    if (v instanceof Deferred d) {
      return d.dtype() == Precision.BFLOAT16 ? "BF16" : "F32";
    }
    return v instanceof Ref r ? r.info().dtype() : "F32";
  }

  /** The shape of {@code key} in {@code m}, without reading a lazy tensor. */
  public static long[] shapeOf(Map<String, FloatTensor> m, String key) {
    if (m instanceof LazyWeights l) {
      return l.shape(key);
    }
    FloatTensor t = m.get(key);
    if (t == null) {
      throw new IllegalArgumentException("no tensor '" + key + "'");
    }
    return t.shape().clone();
  }

  /** Whether {@code m} is a {@link LazyWeights} of which every tensor is stored as BF16. */
  public static boolean allBf16(Map<String, FloatTensor> m) {
    return m instanceof LazyWeights l
        && !l.isEmpty()
        && l.keySet().stream().allMatch(k -> l.storedDtype(k).equals("BF16"));
  }

  /** A copy with every value in memory, for callers that need arrays. */
  public Map<String, FloatTensor> materializeAll() {
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    try (Reader r = open()) {
      entries.forEach(
          (k, v) ->
              out.put(
                  k,
                  v instanceof Ref ref
                      ? r.read(ref)
                      : v instanceof Deferred d ? read(d) : (FloatTensor) v));
    }
    return out;
  }

  /** Opens the checkpoints of the lazy entries for streaming; close it when done. */
  public Reader open() {
    return new Reader();
  }

  private static FloatTensor materialize(Object v) {
    if (v instanceof FloatTensor t) {
      return t;
    }
    if (v instanceof Deferred d) {
      return read(d);
    }
    Ref r = (Ref) v;
    try (TensorSource src = TensorSources.openCheckpoint(r.checkpoint())) {
      return src.read(r.sourceKey());
    } catch (IOException e) {
      throw new UncheckedIOException("reading " + r.checkpoint() + " failed: " + e.getMessage(), e);
    }
  }

  /** Reads a deferred tensor into the heap as float32. */
  private static FloatTensor read(Deferred d) {
    long[] shape = d.shape().clone();
    float[] out = new float[Math.toIntExact(FloatTensor.numElements(shape))];
    d.stream(
        Precision.FLOAT32,
        (chunk, offset) -> {
          ByteBuffer b = chunk.slice().order(ByteOrder.LITTLE_ENDIAN);
          b.asFloatBuffer().get(out, Math.toIntExact(offset / 4), b.remaining() / 4);
        });
    return new FloatTensor(shape, out);
  }

  /** Streams the entries of a {@link LazyWeights}, keeping each checkpoint open once. */
  public final class Reader implements AutoCloseable {
    private final Map<Path, TensorSource> sources = new LinkedHashMap<>();

    private Reader() {}

    private TensorSource source(Path checkpoint) {
      return sources.computeIfAbsent(
          checkpoint,
          p -> {
            try {
              return TensorSources.openCheckpoint(p);
            } catch (IOException e) {
              throw new UncheckedIOException("opening " + p + " failed: " + e.getMessage(), e);
            }
          });
    }

    private FloatTensor read(Ref r) {
      return source(r.checkpoint()).read(r.sourceKey());
    }

    /**
     * Streams {@code key} as {@code target}'s little-endian bytes ({@link TensorSource#stream}); a
     * value in memory is encoded from its array.
     */
    public void stream(String key, Precision target, TensorBytes.Sink sink) {
      Object v = entries.get(key);
      if (v == null) {
        throw new IllegalArgumentException("no tensor '" + key + "'");
      }
      if (v instanceof Ref r) {
        source(r.checkpoint()).stream(r.sourceKey(), target, sink);
      } else if (v instanceof Deferred d) {
        d.stream(target, sink);
      } else {
        TensorBytes.encode(((FloatTensor) v).data(), target, sink);
      }
    }

    @Override
    public void close() {
      RuntimeException failure = null;
      for (TensorSource s : sources.values()) {
        try {
          s.close();
        } catch (RuntimeException e) {
          if (failure == null) {
            failure = e;
          } else {
            failure.addSuppressed(e);
          }
        }
      }
      sources.clear();
      if (failure != null) {
        throw failure;
      }
    }
  }
}
