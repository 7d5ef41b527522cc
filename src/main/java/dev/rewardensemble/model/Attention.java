package dev.rewardensemble.model;

import org.tensorflow.Operand;
import org.tensorflow.ndarray.index.Indices;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Max;
import org.tensorflow.op.math.Cumsum;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.family.TFloating;
import org.tensorflow.types.family.TType;

/**
 * Causal self-attention pieces shared by the families: dynamic batch geometry, the additive mask
 * (optionally a sliding window), positions from the padding mask, rotary embeddings (from any
 * inverse frequencies) and grouped-query scaled dot-product attention with the per-layer {@link
 * Options} (scale, logit soft-capping, window), over the new tokens or a {@link KvCache}.
 */
public final class Attention {
  private Attention() {}

  /** Large negative added to masked scores (finite, so fully masked rows stay finite). */
  public static final float MASKED = -1e9f;

  /**
   * Dynamic geometry of a batch plus the tensors every block needs, computed once per graph: by
   * {@link #geometry} for a whole sequence, by {@link KvCache#extend} for new tokens over a cache.
   *
   * @param batch B as a scalar
   * @param time T (the new tokens, S, over a cache) as a scalar
   * @param positions {@code [B, T]} position of each token: {@code cumsum(mask) - 1} clamped at 0,
   *     so left- and right-padded sequences get the same positions for their real tokens
   * @param bias {@code [B, 1, 1, T, Tk]} additive mask: 0 where query i may see key j (j <= i and
   *     key j is not padding), {@link #MASKED} elsewhere; {@code Tk = T} without a cache
   * @param offsets {@code [T, Tk]} index of query i minus index of key j within the (padded)
   *     sequence, as transformers' sliding-window mask counts them ({@link #bias(Ops, int)});
   *     {@code [B, 1, 1, T, Tk]} over a preallocated cache, whose rows may be at different slots
   */
  public record Geometry(
      Operand<TInt32> batch,
      Operand<TInt32> time,
      Operand<TInt32> positions,
      Operand<TFloat32> bias,
      Operand<TInt32> offsets) {

    /**
     * The additive mask of a layer with a sliding window of {@code window} keys (0: none): query i
     * sees key j when {@code i - window < j <= i} and j is not padding, as transformers' sliding
     * mask does (indices within the padded sequence, the query itself included).
     */
    public Operand<TFloat32> bias(Ops tf, int window) {
      if (window == 0) {
        return bias;
      }
      // [T, Tk] or [B, 1, 1, T, Tk]: MASKED where key j is window or more back
      Operand<TFloat32> outside =
          tf.math.mul(
              tf.dtypes.cast(tf.math.greaterEqual(offsets, tf.constant(window)), TFloat32.class),
              tf.constant(MASKED));
      return tf.math.minimum(bias, outside); // [B, 1, 1, T, Tk]
    }
  }

  /**
   * How a layer attends, as a family's config says: {@code scores = q k^T * scale}, then (when
   * {@code softcap > 0}) {@code softcap * tanh(scores / softcap)}, then the mask, restricted to a
   * sliding window of {@code window} keys when {@code window > 0}. A family passes one per layer.
   *
   * @param scale factor of the scores: {@code head_dim^-0.5} ({@link #standard}), Gemma 2's {@code
   *     query_pre_attn_scalar^-0.5}
   * @param softcap attention logit soft-capping (Gemma 2's {@code attn_logit_softcapping}); 0 for
   *     none
   * @param window sliding-window size in keys (Mistral's, Qwen2's {@code sliding_window}, Gemma 2's
   *     sliding layers); 0 for full causal attention
   */
  public record Options(double scale, double softcap, int window) {
    public Options {
      if (!(scale > 0) || Double.isInfinite(scale)) {
        throw new IllegalArgumentException("attention scale must be finite and > 0, got " + scale);
      }
      if (!(softcap >= 0) || Double.isInfinite(softcap)) {
        throw new IllegalArgumentException(
            "attention logit softcap must be finite and >= 0 (0: none), got " + softcap);
      }
      if (window < 0) {
        throw new IllegalArgumentException("sliding window must be >= 0 (0: none), got " + window);
      }
    }

    /** Scores scaled by {@code headDim^-0.5}, no soft-capping, full causal attention. */
    public static Options standard(int headDim) {
      return new Options(1.0 / Math.sqrt(headDim), 0, 0);
    }

    public Options withScale(double s) {
      return new Options(s, softcap, window);
    }

    public Options withSoftcap(double cap) {
      return new Options(scale, cap, window);
    }

    public Options withWindow(int w) {
      return new Options(scale, softcap, w);
    }
  }

  /** Builds the geometry of {@code mask [B, T]} (1 for real tokens, 0 for padding). */
  public static Geometry geometry(Ops tf, Operand<TInt32> mask) {
    Operand<TInt32> shape = tf.shape(mask);
    Operand<TInt32> b = tf.reshape(tf.stridedSlice(shape, Indices.at(0)), tf.constant(new int[0]));
    Operand<TInt32> t = tf.reshape(tf.stridedSlice(shape, Indices.at(1)), tf.constant(new int[0]));
    Operand<TInt32> pos =
        tf.math.maximum(
            tf.math.sub(
                tf.math.cumsum(mask, tf.constant(1), Cumsum.exclusive(false)), tf.constant(1)),
            tf.constant(0)); // [B, T]
    Operand<TFloat32> maskF = tf.dtypes.cast(mask, TFloat32.class);
    Operand<TFloat32> ones = tf.fill(tf.stack(java.util.List.of(t, t)), tf.constant(1f)); // [T, T]
    Operand<TFloat32> causal = tf.linalg.bandPart(ones, tf.constant(-1), tf.constant(0)); // [T, T]
    Operand<TFloat32> keys =
        tf.reshape(
            maskF,
            tf.stack(java.util.List.of(b, tf.constant(1), tf.constant(1), tf.constant(1), t)));
    Operand<TFloat32> allowed = tf.math.mul(keys, causal); // [B, 1, 1, T, T]
    Operand<TFloat32> bias =
        tf.math.mul(tf.math.sub(tf.constant(1f), allowed), tf.constant(MASKED));
    Operand<TInt32> steps = tf.range(tf.constant(0), t, tf.constant(1)); // [T]
    return new Geometry(b, t, pos, bias, offsets(tf, steps, steps));
  }

  /** {@code [S, Tk]}: {@code querySlots[i] - keySlots[j]}. */
  static Operand<TInt32> offsets(Ops tf, Operand<TInt32> querySlots, Operand<TInt32> keySlots) {
    return tf.math.sub(
        tf.expandDims(querySlots, tf.constant(1)), tf.expandDims(keySlots, tf.constant(0)));
  }

  /**
   * Index of the last real token of each row, {@code [B]}: the largest t with {@code mask[b, t] =
   * 1} (0 for an all-padding row). Right and left padding are both handled.
   */
  public static Operand<TInt32> lastTokenIndex(Ops tf, Operand<TInt32> mask, Geometry g) {
    Operand<TInt32> steps = tf.range(tf.constant(0), g.time(), tf.constant(1)); // [T]
    return tf.max(tf.math.mul(mask, steps), tf.constant(1), Max.keepDims(false)); // [B]
  }

  /** {@code rows [B*T, H]} -> {@code [B, T, n, d]}. */
  public static <T extends TType> Operand<T> splitHeads(
      Ops tf, Operand<T> rows, Geometry g, int n, int d) {
    return tf.reshape(
        rows, tf.stack(java.util.List.of(g.batch(), g.time(), tf.constant(n), tf.constant(d))));
  }

  /**
   * Rotary embeddings in Hugging Face's rotate-half convention. {@code x [B, T, n, D]}, {@code
   * cos}, {@code sin [B, T, 1, D]}; in {@code x}'s dtype (the tables are cast to it, as
   * transformers casts them to the queries' dtype).
   */
  public static <T extends TFloating> Operand<T> rope(
      Ops tf, Operand<T> x, Operand<TFloat32> cos, Operand<TFloat32> sin, int headDim) {
    // One Split, not two strided slices: the same halves, and its gradient is one Concat where the
    // slices' StridedSliceGrad took ~8% of a bench-llama training step's op time.
    org.tensorflow.op.core.Split<T> halves = tf.split(tf.constant(-1), x, 2L);
    Operand<T> x1 = halves.output().get(0);
    Operand<T> x2 = halves.output().get(1);
    Operand<T> rotated = tf.concat(java.util.List.of(tf.math.neg(x2), x1), tf.constant(-1));
    return tf.math.add(
        tf.math.mul(x, Layers.cast(tf, cos, x.type())),
        tf.math.mul(rotated, Layers.cast(tf, sin, x.type())));
  }

  /**
   * Hugging Face's default rotary inverse frequencies, {@code inv_freq[i] = theta^(-2i/D)} for i in
   * [0, D/2), computed in double and rounded to float32. Rope scaling ({@code llama3}, {@code
   * linear}, ...) rewrites these and passes the result to {@link #ropeTables(Ops, Geometry,
   * float[])}.
   */
  public static float[] inverseFrequencies(int headDim, double theta) {
    float[] invFreq = new float[headDim / 2];
    for (int i = 0; i < invFreq.length; i++) {
      invFreq[i] = (float) (1.0 / Math.pow(theta, (2.0 * i) / headDim));
    }
    return invFreq;
  }

  /**
   * {@code cos} and {@code sin [B, T, 1, D]} of the rotary angles {@code position * inv_freq}, with
   * the default {@link #inverseFrequencies}.
   */
  public static Operand<TFloat32>[] ropeTables(Ops tf, Geometry g, int headDim, double theta) {
    return ropeTables(tf, g, inverseFrequencies(headDim, theta));
  }

  /**
   * {@code cos} and {@code sin [B, T, 1, D]} of the rotary angles {@code position * invFreq[i]},
   * each angle twice ({@code D = 2 * invFreq.length}, rotate-half convention), in float32 as
   * Hugging Face computes them.
   */
  public static Operand<TFloat32>[] ropeTables(Ops tf, Geometry g, float[] invFreq) {
    if (invFreq.length == 0) {
      throw new IllegalArgumentException("rotary embeddings need at least one inverse frequency");
    }
    for (float f : invFreq) {
      if (!Float.isFinite(f)) {
        throw new IllegalArgumentException("rotary inverse frequency is not finite: " + f);
      }
    }
    Operand<TFloat32> pos =
        tf.expandDims(tf.dtypes.cast(g.positions(), TFloat32.class), tf.constant(-1));
    Operand<TFloat32> angles = tf.math.mul(pos, tf.constant(invFreq)); // [B, T, D/2]
    Operand<TFloat32> emb =
        tf.concat(java.util.List.of(angles, angles), tf.constant(-1)); // [B, T, D]
    Operand<TFloat32> e4 = tf.expandDims(emb, tf.constant(2)); // [B, T, 1, D]
    @SuppressWarnings("unchecked")
    Operand<TFloat32>[] out = new Operand[] {tf.math.cos(e4), tf.math.sin(e4)};
    return out;
  }

  /**
   * Scaled dot-product attention with grouped key/value heads, over the new tokens' own keys or,
   * with a cache, over every cached key: the new keys and values are written into {@code cache}'s
   * layer {@code layer} first ({@link KvCache#update}).
   *
   * @param q {@code [B, T, N, D]}
   * @param k {@code [B, T, Nkv, D]}
   * @param v {@code [B, T, Nkv, D]}
   * @param g the geometry: of the whole sequence without a cache, {@link KvCache#extend}'s with one
   * @param o scale, soft-capping and sliding window of this layer
   * @param cache null, or the cache to write and read
   * @return {@code [B*T, N*D]}
   */
  public static <T extends TFloating> Operand<T> attend(
      Ops tf,
      Operand<T> q,
      Operand<T> k,
      Operand<T> v,
      Geometry g,
      int n,
      int nKv,
      int d,
      Options o,
      KvCache cache,
      int layer) {
    Operand<T> kh = tf.linalg.transpose(k, tf.constant(new int[] {0, 2, 1, 3})); // [B, Nkv, T, D]
    Operand<T> vh = tf.linalg.transpose(v, tf.constant(new int[] {0, 2, 1, 3})); // [B, Nkv, T, D]
    if (cache == null) {
      return attendHeadsFirst(tf, q, kh, vh, g, n, nKv, d, o);
    }
    // The cache holds float32 keys and values (also under bfloat16 compute): attention over it
    // runs in float32.
    KvCache.Layer all =
        cache.update(
            tf,
            layer,
            Layers.cast(tf, kh, TFloat32.class),
            Layers.cast(tf, vh, TFloat32.class)); // [B, Nkv, Tk, D] each
    Operand<TFloat32> ctx =
        cache.attend(tf, Layers.cast(tf, q, TFloat32.class), all, g, n, nKv, d, o);
    cache.readBy(layer, ctx);
    return Layers.cast(tf, ctx, q.type());
  }

  /**
   * Attention of {@code S} new queries over {@code Tk} keys and values already laid out
   * heads-first, as a key/value cache keeps them (so that a decode step does not transpose the
   * whole cache).
   *
   * @param q {@code [B, S, N, D]}, with {@code g.time() = S}
   * @param kh {@code [B, Nkv, Tk, D]}
   * @param vh {@code [B, Nkv, Tk, D]}
   * @param g geometry of the new tokens; {@code g.bias()} is {@code [B, 1, 1, S, Tk]}
   * @return {@code [B*S, N*D]}, in the inputs' dtype: the products {@code q k^T} and {@code p v}
   *     run in it, scaling, soft-capping, the mask and softmax in float32 (as transformers' eager
   *     attention runs softmax), the probabilities cast back for the second product
   */
  public static <T extends TFloating> Operand<T> attendHeadsFirst(
      Ops tf,
      Operand<T> q,
      Operand<T> kh,
      Operand<T> vh,
      Geometry g,
      int n,
      int nKv,
      int d,
      Options o) {
    int group = n / nKv;
    Operand<T> q5 =
        tf.reshape(
            q,
            tf.stack(
                java.util.List.of(
                    g.batch(), g.time(), tf.constant(nKv), tf.constant(group), tf.constant(d))));
    q5 = tf.linalg.transpose(q5, tf.constant(new int[] {0, 2, 3, 1, 4})); // [B, Nkv, G, S, D]
    Operand<T> k5 = tf.expandDims(kh, tf.constant(2)); // [B, Nkv, 1, Tk, D]
    Operand<T> v5 = tf.expandDims(vh, tf.constant(2)); // [B, Nkv, 1, Tk, D]
    Operand<TFloat32> scores =
        Layers.cast(tf, Layers.batchMatMul(tf, q5, k5, true), TFloat32.class); // [B, Nkv, G, S, Tk]
    scores = tf.math.mul(scores, tf.constant((float) o.scale()));
    if (o.softcap() > 0) { // before the mask, as transformers' eager attention
      Operand<TFloat32> cap = tf.constant((float) o.softcap());
      scores = tf.math.mul(tf.math.tanh(tf.math.div(scores, cap)), cap);
    }
    scores = tf.math.add(scores, g.bias(tf, o.window()));
    Operand<TFloat32> probs = tf.nn.softmax(scores);
    Operand<T> ctx =
        Layers.batchMatMul(tf, Layers.cast(tf, probs, q.type()), v5, false); // [B, Nkv, G, S, D]
    ctx = tf.linalg.transpose(ctx, tf.constant(new int[] {0, 3, 1, 2, 4})); // [B, S, Nkv, G, D]
    return tf.reshape(ctx, tf.constant(new int[] {-1, n * d})); // [B*S, N*D]
  }
}
