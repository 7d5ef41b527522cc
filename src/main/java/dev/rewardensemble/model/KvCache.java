package dev.rewardensemble.model;

import java.util.ArrayList;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.index.Indices;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Sum;
import org.tensorflow.op.math.Cumsum;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * The keys and values of every attention layer for the positions seen so far, so that a decode step
 * runs the forward over its new tokens only (what Hugging Face's {@code past_key_values} is to its
 * modeling files). A graph-building object: each step builds ops that read the cache's tensors and
 * leaves the cache holding the ops' outputs; {@link #state()} and {@link #withState} carry them
 * through the loop variables of an in-graph decode loop.
 *
 * <p>{@link Layout#PREALLOCATED} (what generation uses): per layer keys and values {@code [B, Nkv,
 * C, D]}, heads first, allocated once at the capacity C (prompt length + new tokens) and written in
 * place with {@code TensorScatterUpdate} at the slots of the new tokens (TensorFlow forwards the
 * input buffer to the output when nothing else holds it, which is the case for a loop variable
 * consumed only by the write); a step's attention reads all C slots, with unwritten and padding
 * slots masked out. Nothing is concatenated, so a step costs O(C), not a copy of the whole cache.
 * {@link Layout#CONCATENATED} appends each step's keys to the previous ones (a copy of the whole
 * cache per step, O(length^2) in all): the reference and the benchmark's baseline.
 *
 * <p>A forward uses it in two calls: the caller's {@link #extend} appends the new tokens' slots
 * (its attention mask) and returns their {@link Attention.Geometry}; each attention layer's {@link
 * #update} (through {@link Attention#attend}) writes its keys and values there and returns the
 * whole cache to attend over.
 *
 * <pre>{@code
 * KvCache cache = KvCache.preallocated(tf, capacity);
 * Attention.Geometry g = cache.extend(tf, promptMask);                   // [B, P] prefill
 * Operand<TFloat32> rows = Transformers.forward(cx, c, w, promptIds, g, Projector.NONE, null, cache);
 * // in the loop body, from the loop variables:
 * KvCache step = cache.withState(stateVariables);
 * Attention.Geometry g1 = step.extend(tf, liveMask);                     // [B, 1]
 * rows = Transformers.forward(cx, c, w, lastToken, g1, Projector.NONE, null, step);
 * next = step.state();
 * }</pre>
 */
public final class KvCache {

  /** How the cache grows. */
  public enum Layout {
    /** Allocated at the capacity once, written in place. */
    PREALLOCATED,
    /** Concatenated per step: the old way, kept as the reference and benchmark baseline. */
    CONCATENATED
  }

  /** The whole cache of one layer after a write, heads first: {@code [B, Nkv, Tk, D]} each. */
  public record Layer(Operand<TFloat32> keys, Operand<TFloat32> values) {}

  private final Layout layout;

  /** Scalar number of slots (PREALLOCATED, until the first {@link #extend}); null otherwise. */
  private final Operand<TInt32> capacity;

  /**
   * Where the next tokens go: PREALLOCATED, per row {@code [B]} (the first slot not yet written, so
   * that a row can be restarted at its prompt's end, {@link #restart}); CONCATENATED, a scalar (the
   * columns so far). Scalar 0 before the first {@link #extend}.
   */
  private Operand<TInt32> length;

  /** {@code [B, C]} 1 at written slots that hold a real token, 0 at padding and unwritten ones. */
  private Operand<TInt32> keyMask;

  /** Per layer, keys and values {@code [B, Nkv, C, D]}; filled by the prefill's writes. */
  private final List<Layer> layers;

  /** Per layer, the ops that read its current tensors ({@link #readBy}): a write waits for them. */
  private final List<List<Operand<?>>> readers = new ArrayList<>();

  /**
   * First slot of the current step's tokens, set by {@link #extend}; null before. Per row {@code
   * [B]} when preallocated, a scalar when concatenated.
   */
  private Operand<TInt32> start;

  /** The current step's tokens are one per row ({@link #extendByOne}). */
  private boolean oneToken;

  /** The geometry of the last {@link #extend}. */
  private Attention.Geometry geometry;

  /**
   * Per-step memos of a one-token step's attention ({@link #attend}): {@code [B*Nkv, C, D]} for the
   * cache's keys, keyed by head count and size, and the additive mask laid out as the scores {@code
   * [B*Nkv, G, C]}, keyed by head count, group and window.
   */
  private final java.util.Map<Long, Operand<TInt32>> stepRows = new java.util.HashMap<>();

  private final java.util.Map<java.util.List<Integer>, Operand<TFloat32>> stepBias =
      new java.util.HashMap<>();

  /** Scatter indices of the current step's slots, for heads of the size of the key (memo). */
  private long indexHeads = -2;

  private Operand<TInt32> index;

  /**
   * Shapes of the current step's writes for heads of the size of the key ({@link #shapes}, memo):
   * {@code [B*Nkv*C, D]}, {@code [B, Nkv, C, D]} and {@code [-1, D]}.
   */
  private Operand<TInt32>[] shapes;

  private KvCache(
      Layout layout,
      Operand<TInt32> capacity,
      Operand<TInt32> length,
      Operand<TInt32> keyMask,
      List<Layer> layers) {
    this.layout = layout;
    this.capacity = capacity;
    this.length = length;
    this.keyMask = keyMask;
    this.layers = layers;
  }

  /**
   * An empty cache of {@code capacity} slots (a scalar: the prompt length plus the new tokens); its
   * tensors are allocated by the first {@link #extend} and {@link #update}s, whose inputs give the
   * batch and head sizes.
   */
  public static KvCache preallocated(Ops tf, Operand<TInt32> capacity) {
    return new KvCache(Layout.PREALLOCATED, capacity, tf.constant(0), null, new ArrayList<>());
  }

  /** An empty cache that grows by concatenation (the reference). */
  public static KvCache concatenated(Ops tf) {
    return new KvCache(Layout.CONCATENATED, null, tf.constant(0), null, new ArrayList<>());
  }

  public Layout layout() {
    return layout;
  }

  /** Number of layers written. */
  public int numLayers() {
    return layers.size();
  }

  /**
   * The tensors that carry the cache to the next step, in order: the next slot ({@code [B]} int32
   * preallocated, a scalar concatenated), the key mask ({@code [B, C]} int32), then every layer's
   * keys and values ({@code [B, Nkv, C, D]} float32).
   */
  public List<Operand<?>> state() {
    if (keyMask == null) {
      throw new IllegalStateException("the cache holds nothing yet: extend it first");
    }
    List<Operand<?>> out = new ArrayList<>(2 + 2 * layers.size());
    out.add(length);
    out.add(keyMask);
    for (Layer l : layers) {
      out.add(l.keys());
      out.add(l.values());
    }
    return out;
  }

  /**
   * A cache of this layout and number of layers holding {@code state} (tensors in the order of
   * {@link #state()}, e.g. the loop variables of a decode loop's body).
   */
  @SuppressWarnings("unchecked")
  public KvCache withState(List<? extends Operand<?>> state) {
    if (state.size() != 2 + 2 * layers.size()) {
      throw new IllegalArgumentException(
          "a cache of "
              + layers.size()
              + " layers has "
              + (2 + 2 * layers.size())
              + " state tensors, got "
              + state.size());
    }
    List<Layer> ls = new ArrayList<>(layers.size());
    for (int i = 0; i < layers.size(); i++) {
      ls.add(
          new Layer(
              (Operand<TFloat32>) state.get(2 + 2 * i), (Operand<TFloat32>) state.get(3 + 2 * i)));
    }
    return new KvCache(
        layout, null, (Operand<TInt32>) state.get(0), (Operand<TInt32>) state.get(1), ls);
  }

  /**
   * Appends the slots of S new tokens (after the last step's) and returns their geometry over the
   * whole cache: positions continue from the real tokens already cached, and query i of the new
   * tokens sees the real tokens cached before it and the new ones up to itself.
   *
   * @param mask {@code [B, S]} 1 for a real token, 0 for padding
   * @return geometry with {@code time} S, {@code positions [B, S]}, {@code bias [B, 1, 1, S, C]}
   *     and {@code offsets} ({@code [B, 1, 1, S, C]} preallocated, as rows may be at different
   *     slots; {@code [S, C]} concatenated; C the capacity, or every slot so far when concatenated)
   */
  public Attention.Geometry extend(Ops tf, Operand<TInt32> mask) {
    return extend(tf, mask, false);
  }

  private Attention.Geometry extend(Ops tf, Operand<TInt32> mask, boolean byMask) {
    oneToken = false;
    stepRows.clear();
    stepBias.clear();
    geometry = extendBy(tf, mask, byMask);
    return geometry;
  }

  /**
   * {@link #extend} by one token per row (a decode step): the same geometry, and the step's
   * attention then takes a shorter form ({@link #attend}: one query per row needs no transposes,
   * and the mask and shapes are built once per step, not per layer).
   *
   * <p>Preallocated, a row's next slot moves on only where its token is real: a finished row
   * (padding) writes its masked keys at its next unwritten slot, again and again, so that it never
   * runs past the capacity however long other rows go on.
   *
   * @param mask {@code [B, 1]} 1 for a real token, 0 for padding
   */
  public Attention.Geometry extendByOne(Ops tf, Operand<TInt32> mask) {
    Attention.Geometry g = extend(tf, mask, layout == Layout.PREALLOCATED);
    oneToken = true;
    return g;
  }

  /**
   * Restarts rows after this step's writes (preallocated only): where {@code rows [B]} is 1, every
   * slot from {@code keep} (a scalar: the prompts' padded width) on is forgotten (masked, to be
   * overwritten) and the row's next token goes to slot {@code keep}, as if the row had just been
   * prefilled with the prompt it holds. A decode loop uses it to start another response to the same
   * prompt in a row that finished, without a prefill ({@code Sampler}'s refill).
   */
  public void restart(Ops tf, Operand<TInt32> rows, Operand<TInt32> keep) {
    if (layout != Layout.PREALLOCATED || keyMask == null) {
      throw new IllegalStateException("only a preallocated, prefilled cache restarts rows");
    }
    Operand<TInt32> c = dim(tf, tf.shape(keyMask), 1);
    Operand<TInt32> beyond =
        tf.dtypes.cast(
            tf.math.greaterEqual(tf.range(tf.constant(0), c, tf.constant(1)), keep),
            TInt32.class); // [C]
    Operand<TInt32> forget =
        tf.math.mul(tf.expandDims(rows, tf.constant(1)), tf.expandDims(beyond, tf.constant(0)));
    keyMask = tf.math.mul(keyMask, tf.math.sub(tf.constant(1), forget)); // [B, C]
    length = tf.math.add(length, tf.math.mul(rows, tf.math.sub(keep, length))); // [B]
  }

  private Attention.Geometry extendBy(Ops tf, Operand<TInt32> mask, boolean byMask) {
    Operand<TInt32> shape = tf.shape(mask);
    Operand<TInt32> b = scalar(tf, tf.stridedSlice(shape, Indices.at(0)));
    Operand<TInt32> s = scalar(tf, tf.stridedSlice(shape, Indices.at(1)));
    boolean pre = layout == Layout.PREALLOCATED;
    Operand<TInt32> past; // [B, 1] real tokens already cached
    if (keyMask == null) {
      past = tf.constant(0);
      keyMask = pre ? tf.fill(tf.stack(List.of(b, capacity)), tf.constant(0)) : null; // [B, C]
      start = pre ? tf.fill(tf.expandDims(b, tf.constant(0)), tf.constant(0)) : length; // [B]
    } else {
      past = tf.sum(keyMask, tf.constant(1), Sum.keepDims(true)); // [B, 1]
      start = length;
    }
    index = null;
    indexHeads = -2;
    shapes = null;
    Operand<TInt32> steps = tf.range(tf.constant(0), s, tf.constant(1)); // [S]
    Operand<TInt32> offsets;
    if (pre) {
      Operand<TInt32> querySlots =
          tf.math.add(
              tf.expandDims(start, tf.constant(1)), tf.expandDims(steps, tf.constant(0))); // [B, S]
      Operand<TInt32> at =
          tf.stack(
              List.of(
                  tf.broadcastTo(
                      tf.expandDims(tf.range(tf.constant(0), b, tf.constant(1)), tf.constant(1)),
                      tf.stack(List.of(b, s))),
                  querySlots),
              org.tensorflow.op.core.Stack.axis(-1L)); // [B, S, 2]: (row, slot)
      keyMask = tf.tensorScatterNdUpdate(keyMask, at, mask); // [B, C]
      Operand<TInt32> c = dim(tf, tf.shape(keyMask), 1);
      offsets =
          tf.reshape(
              tf.math.sub(
                  tf.expandDims(querySlots, tf.constant(2)),
                  tf.reshape(
                      tf.range(tf.constant(0), c, tf.constant(1)),
                      tf.constant(new int[] {1, 1, -1}))),
              tf.stack(List.of(b, tf.constant(1), tf.constant(1), s, c))); // [B, 1, 1, S, C]
      // A one-token step moves a row on only where its token is real (extendByOne).
      length = byMask ? tf.math.add(start, tf.sum(mask, tf.constant(1))) : tf.math.add(start, s);
    } else {
      keyMask = keyMask == null ? mask : tf.concat(List.of(keyMask, mask), tf.constant(1));
      Operand<TInt32> c = dim(tf, tf.shape(keyMask), 1);
      offsets =
          Attention.offsets(
              tf, tf.math.add(steps, start), tf.range(tf.constant(0), c, tf.constant(1))); // [S, C]
      length = tf.math.add(start, s);
    }
    Operand<TInt32> positions =
        tf.math.maximum(
            tf.math.sub(
                tf.math.add(tf.math.cumsum(mask, tf.constant(1), Cumsum.exclusive(false)), past),
                tf.constant(1)),
            tf.constant(0)); // [B, S]
    Operand<TInt32> c = scalar(tf, tf.stridedSlice(tf.shape(keyMask), Indices.at(1)));
    Operand<TFloat32> causal =
        tf.dtypes.cast(tf.math.greaterEqual(offsets, tf.constant(0)), TFloat32.class);
    Operand<TFloat32> keys =
        tf.reshape(
            tf.dtypes.cast(keyMask, TFloat32.class),
            tf.stack(
                List.of(b, tf.constant(1), tf.constant(1), tf.constant(1), c))); // [B, 1, 1, 1, C]
    Operand<TFloat32> allowed = tf.math.mul(keys, causal); // [B, 1, 1, S, C]
    Operand<TFloat32> bias =
        tf.math.mul(tf.math.sub(tf.constant(1f), allowed), tf.constant(Attention.MASKED));
    return new Attention.Geometry(b, s, positions, bias, offsets);
  }

  /**
   * Writes the new tokens' keys and values of attention layer {@code layer} at the slots of the
   * last {@link #extend} and returns the layer's whole cache. The prefill's writes create the
   * layers, in order.
   *
   * @param keys {@code [B, Nkv, S, D]}
   * @param values {@code [B, Nkv, S, D]}
   * @return keys and values {@code [B, Nkv, C, D]}
   */
  public Layer update(Ops tf, int layer, Operand<TFloat32> keys, Operand<TFloat32> values) {
    if (start == null) {
      throw new IllegalStateException("extend the cache by the new tokens before writing a layer");
    }
    if (layer < 0 || layer > layers.size()) {
      throw new IllegalArgumentException(
          "cache layer " + layer + " written before layer " + layers.size());
    }
    Layer old = layer < layers.size() ? layers.get(layer) : null;
    if (old != null && layer < readers.size() && !readers.get(layer).isEmpty()) {
      // In place: the old tensors' readers in this graph must have run first.
      tf = tf.withControlDependencyOps(readers.get(layer).stream().map(Operand::op).toList());
    }
    Layer now;
    if (layout == Layout.CONCATENATED) {
      now =
          old == null
              ? new Layer(keys, values)
              : new Layer(
                  tf.concat(List.of(old.keys(), keys), tf.constant(2)),
                  tf.concat(List.of(old.values(), values), tf.constant(2)));
    } else {
      Operand<TInt32> at = slotRows(tf, keys); // [B*Nkv*S]
      now =
          new Layer(
              write(tf, old == null ? null : old.keys(), at, keys),
              write(tf, old == null ? null : old.values(), at, values));
    }
    if (old == null) {
      layers.add(now);
    } else {
      layers.set(layer, now);
    }
    while (readers.size() <= layer) {
      readers.add(new ArrayList<>());
    }
    readers.get(layer).clear();
    return now;
  }

  /**
   * Notes that {@code reader} read layer {@code layer}'s current tensors, so that a later write to
   * the layer in the same graph runs after it ({@link Attention#attend} calls this). Across the
   * steps of a decode loop the next write depends on the step's token anyway.
   */
  public void readBy(int layer, Operand<?> reader) {
    while (readers.size() <= layer) {
      readers.add(new ArrayList<>());
    }
    readers.get(layer).add(reader);
  }

  /**
   * {@code cache [B, Nkv, C, D]} (null: a new one of zeros) with {@code x [B, Nkv, S, D]} written
   * at rows {@code at} of its {@code [B*Nkv*C, D]} view, in place: {@code InplaceUpdate} writes
   * into its input's buffer (reshapes share it). That is safe here because the buffer is this
   * cache's own (a {@code Fill} per layer, which Grappler does not merge as it feeds an in-place
   * op) and the old tensor has no other reader: a step's attention reads the written tensor, and
   * the next step writes only after its token, hence every layer of this step, is computed.
   */
  private Operand<TFloat32> write(
      Ops tf, Operand<TFloat32> cache, Operand<TInt32> at, Operand<TFloat32> x) {
    Operand<TInt32>[] sh = shapes(tf, x); // built once per step: a step writes 2 x layers times
    Operand<TFloat32> rows;
    if (cache == null) {
      // A new buffer per layer, keys and values: its shape is computed from this write's own x, so
      // that Grappler cannot merge the Fills (identical inputs) into one shared, overwritten
      // buffer.
      Operand<TInt32> shape = tf.shape(x); // [4]: B, Nkv, S, D
      Operand<TInt32> c = dim(tf, tf.shape(keyMask), 1);
      rows =
          tf.fill(
              tf.stack(
                  List.of(
                      tf.math.mul(tf.math.mul(dim(tf, shape, 0), dim(tf, shape, 1)), c),
                      dim(tf, shape, 3))),
              tf.constant(0f)); // [B*Nkv*C, D]
    } else {
      rows = tf.reshape(cache, sh[0]); // [B*Nkv*C, D]
    }
    Operand<TFloat32> written = tf.inplaceUpdate(rows, at, tf.reshape(x, sh[2]));
    return tf.reshape(written, sh[1]); // [B, Nkv, C, D]
  }

  /**
   * {@code [B*Nkv*C, D]}, {@code [B, Nkv, C, D]} and {@code [-1, D]} for keys {@code x [B, Nkv, S,
   * D]}: built once per step for layers with the same (static) head count, and from the static head
   * count and size when known, so that a decode step does not rebuild them per write.
   */
  @SuppressWarnings("unchecked")
  private Operand<TInt32>[] shapes(Ops tf, Operand<TFloat32> x) {
    Shape st = x.shape();
    boolean known = st.numDimensions() == 4 && st.get(1) >= 0 && st.get(3) >= 0;
    if (shapes != null && known && shapesKey == st.get(1) * 1_000_003L + st.get(3)) {
      return shapes;
    }
    Operand<TInt32> shape = known ? null : tf.shape(x);
    Operand<TInt32> b = dim(tf, tf.shape(keyMask), 0);
    Operand<TInt32> nKv = known ? tf.constant((int) st.get(1)) : dim(tf, shape, 1);
    Operand<TInt32> d = known ? tf.constant((int) st.get(3)) : dim(tf, shape, 3);
    Operand<TInt32> c = dim(tf, tf.shape(keyMask), 1);
    Operand<TInt32>[] out =
        new Operand[] {
          tf.stack(List.of(tf.math.mul(tf.math.mul(b, nKv), c), d)),
          tf.stack(List.of(b, nKv, c, d)),
          tf.stack(List.of(tf.constant(-1), d))
        };
    if (known) {
      shapes = out;
      shapesKey = st.get(1) * 1_000_003L + st.get(3);
    }
    return out;
  }

  private long shapesKey = -1;

  /**
   * Rows {@code [B*Nkv*S]} of the current step's slots in a layer's {@code [B*Nkv*C, D]} view, for
   * keys {@code x [B, Nkv, S, D]}: {@code (b * Nkv + h) * C + start[b] + s}, in the order of {@code
   * x}'s rows; built once per step for layers with the same (static) head count.
   */
  private Operand<TInt32> slotRows(Ops tf, Operand<TFloat32> x) {
    long heads = x.shape().numDimensions() == 4 ? x.shape().get(1) : -1;
    if (index != null && heads >= 0 && heads == indexHeads) {
      return index;
    }
    Operand<TInt32> shape = tf.shape(x);
    Operand<TInt32> nKv = dim(tf, shape, 1);
    Operand<TInt32> c = dim(tf, tf.shape(keyMask), 1);
    Operand<TInt32> rowHeads =
        tf.math.add(
            tf.math.mul(
                tf.expandDims(
                    tf.range(tf.constant(0), dim(tf, shape, 0), tf.constant(1)), tf.constant(1)),
                nKv),
            tf.expandDims(
                tf.range(tf.constant(0), nKv, tf.constant(1)), tf.constant(0))); // [B, Nkv]
    Operand<TInt32> firsts =
        tf.math.add(tf.math.mul(rowHeads, c), tf.expandDims(start, tf.constant(1))); // [B, Nkv]
    Operand<TInt32> slots = tf.range(tf.constant(0), dim(tf, shape, 2), tf.constant(1)); // [S]
    Operand<TInt32> at =
        tf.reshape(
            tf.math.add(
                tf.expandDims(firsts, tf.constant(2)),
                tf.reshape(slots, tf.constant(new int[] {1, 1, -1}))),
            tf.constant(new int[] {-1})); // [B*Nkv*S]
    index = at;
    indexHeads = heads;
    return at;
  }

  /**
   * Attention of {@code S} new queries over this layer's whole cache, what {@link
   * Attention#attendHeadsFirst} computes, with the two products as plain 3-D batch products {@code
   * [B*Nkv, G*S, D] x [B*Nkv, C, D]^T} and {@code [B*Nkv, G*S, C] x [B*Nkv, C, D]}: the 5-D
   * broadcasting product (keys {@code [B, Nkv, 1, C, D]} against queries {@code [B, Nkv, G, S, D]})
   * takes oneDNN's slow path, which made the two products of a decode step's attention the
   * costliest ops of the step after the weight products (profiled: ~25% of a bench-llama step).
   *
   * @param q {@code [B, S, N, D]}, with {@code g.time() = S}
   * @param all the layer's keys and values after {@link #update}, {@code [B, Nkv, C, D]} each
   * @param g the geometry of the last {@link #extend}
   * @return {@code [B*S, N*D]}
   */
  Operand<TFloat32> attend(
      Ops tf,
      Operand<TFloat32> q,
      Layer all,
      Attention.Geometry g,
      int n,
      int nKv,
      int d,
      Attention.Options o) {
    if (oneToken && g == geometry) {
      return attendOne(tf, q, all, n, nKv, d, o);
    }
    int group = n / nKv;
    Operand<TInt32> b = g.batch();
    Operand<TInt32> s = g.time();
    Operand<TInt32> bn = tf.math.mul(b, tf.constant(nKv)); // B*Nkv
    Operand<TFloat32> q5 =
        tf.reshape(
            q, tf.stack(List.of(b, s, tf.constant(nKv), tf.constant(group), tf.constant(d))));
    q5 = tf.linalg.transpose(q5, tf.constant(new int[] {0, 2, 3, 1, 4})); // [B, Nkv, G, S, D]
    Operand<TFloat32> q3 =
        tf.reshape(q5, tf.stack(List.of(bn, tf.constant(-1), tf.constant(d)))); // [B*Nkv, G*S, D]
    Operand<TInt32> rows3 = tf.stack(List.of(bn, tf.constant(-1), tf.constant(d)));
    Operand<TFloat32> k3 = tf.reshape(all.keys(), rows3); // [B*Nkv, C, D]
    Operand<TFloat32> v3 = tf.reshape(all.values(), rows3); // [B*Nkv, C, D]
    Operand<TFloat32> scores = Layers.batchMatMul(tf, q3, k3, true); // [B*Nkv, G*S, C]
    Operand<TInt32> c = dim(tf, tf.shape(k3), 1);
    scores =
        tf.reshape(
            scores,
            tf.stack(List.of(b, tf.constant(nKv), tf.constant(group), s, c))); // [B, Nkv, G, S, C]
    scores = tf.math.mul(scores, tf.constant((float) o.scale()));
    if (o.softcap() > 0) { // before the mask, as transformers' eager attention
      Operand<TFloat32> cap = tf.constant((float) o.softcap());
      scores = tf.math.mul(tf.math.tanh(tf.math.div(scores, cap)), cap);
    }
    scores = tf.math.add(scores, g.bias(tf, o.window()));
    Operand<TFloat32> probs =
        tf.reshape(
            tf.nn.softmax(scores), tf.stack(List.of(bn, tf.constant(-1), c))); // [B*Nkv, G*S, C]
    Operand<TFloat32> ctx = Layers.batchMatMul(tf, probs, v3, false); // [B*Nkv, G*S, D]
    ctx =
        tf.reshape(
            ctx,
            tf.stack(
                List.of(
                    b, tf.constant(nKv), tf.constant(group), s, tf.constant(d)))); // [B,Nkv,G,S,D]
    ctx = tf.linalg.transpose(ctx, tf.constant(new int[] {0, 3, 1, 2, 4})); // [B, S, Nkv, G, D]
    return tf.reshape(ctx, tf.constant(new int[] {-1, n * d})); // [B*S, N*D]
  }

  /**
   * {@link #attend} for one query per row (S = 1): the queries {@code [B, 1, N, D]} are already in
   * the order of {@code [B*Nkv, G, D]} and the context {@code [B*Nkv, G, D]} in that of {@code [B,
   * N*D]}, so both are reshapes (the general path's transposes move nothing when S = 1), and the
   * cache's shape and the mask in the scores' layout come from per-step memos. The same products,
   * scaling, soft-capping, mask and softmax, element for element.
   */
  private Operand<TFloat32> attendOne(
      Ops tf, Operand<TFloat32> q, Layer all, int n, int nKv, int d, Attention.Options o) {
    int group = n / nKv;
    Operand<TFloat32> q3 = tf.reshape(q, tf.constant(new int[] {-1, group, d})); // [B*Nkv, G, D]
    Operand<TInt32> rows3 =
        stepRows.computeIfAbsent(
            (long) nKv * 1_000_003L + d,
            key -> {
              Operand<TInt32> b = dim(tf, tf.shape(keyMask), 0);
              Operand<TInt32> c = dim(tf, tf.shape(keyMask), 1);
              return tf.stack(
                  List.of(tf.math.mul(b, tf.constant(nKv)), c, tf.constant(d))); // B*Nkv, C, D
            });
    Operand<TFloat32> k3 = tf.reshape(all.keys(), rows3); // [B*Nkv, C, D]
    Operand<TFloat32> v3 = tf.reshape(all.values(), rows3); // [B*Nkv, C, D]
    Operand<TFloat32> scores = Layers.batchMatMul(tf, q3, k3, true); // [B*Nkv, G, C]
    scores = tf.math.mul(scores, tf.constant((float) o.scale()));
    if (o.softcap() > 0) { // before the mask, as transformers' eager attention
      Operand<TFloat32> cap = tf.constant((float) o.softcap());
      scores = tf.math.mul(tf.math.tanh(tf.math.div(scores, cap)), cap);
    }
    scores = tf.math.add(scores, stepBias(tf, nKv, group, o.window()));
    Operand<TFloat32> probs = tf.nn.softmax(scores); // [B*Nkv, G, C]
    Operand<TFloat32> ctx = Layers.batchMatMul(tf, probs, v3, false); // [B*Nkv, G, D]
    return tf.reshape(ctx, tf.constant(new int[] {-1, n * d})); // [B, N*D]
  }

  /**
   * The current one-token step's additive mask for a layer of {@code nKv} key/value heads, {@code
   * group} queries per head and sliding window {@code window}, as {@code [B*Nkv, G, C]}: the
   * geometry's {@code [B, 1, 1, 1, C]} broadcast over the heads (built once per step).
   */
  private Operand<TFloat32> stepBias(Ops tf, int nKv, int group, int window) {
    return stepBias.computeIfAbsent(
        List.of(nKv, group, window),
        key -> {
          Operand<TInt32> b = dim(tf, tf.shape(keyMask), 0);
          Operand<TInt32> c = dim(tf, tf.shape(keyMask), 1);
          Operand<TFloat32> bias =
              tf.broadcastTo(
                  geometry.bias(tf, window),
                  tf.stack(
                      List.of(
                          b,
                          tf.constant(nKv),
                          tf.constant(group),
                          tf.constant(1),
                          c))); // [B, Nkv, G, 1, C]
          return tf.reshape(
              bias, tf.stack(List.of(tf.math.mul(b, tf.constant(nKv)), tf.constant(group), c)));
        });
  }

  private static Operand<TInt32> dim(Ops tf, Operand<TInt32> shape, int i) {
    return scalar(tf, tf.stridedSlice(shape, Indices.at(i)));
  }

  private static Operand<TInt32> scalar(Ops tf, Operand<TInt32> x) {
    return tf.reshape(x, tf.constant(new int[0]));
  }
}
