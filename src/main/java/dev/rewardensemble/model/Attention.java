package dev.rewardensemble.model;

import org.tensorflow.Operand;
import org.tensorflow.ndarray.index.Indices;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Max;
import org.tensorflow.op.math.Cumsum;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * Causal self-attention pieces shared by both families: dynamic batch geometry, the additive mask,
 * positions from the padding mask, rotary embeddings and grouped-query scaled dot-product
 * attention.
 */
public final class Attention {
  private Attention() {}

  /** Large negative added to masked scores (finite, so fully masked rows stay finite). */
  public static final float MASKED = -1e9f;

  /**
   * Dynamic geometry of a batch plus the tensors every block needs, computed once per graph.
   *
   * @param batch B as a scalar
   * @param time T as a scalar
   * @param positions {@code [B, T]} position of each token: {@code cumsum(mask) - 1} clamped at 0,
   *     so left- and right-padded sequences get the same positions for their real tokens
   * @param bias {@code [B, 1, 1, T, T]} additive mask: 0 where query i may see key j (j <= i and
   *     key j is not padding), {@link #MASKED} elsewhere
   */
  public record Geometry(
      Operand<TInt32> batch,
      Operand<TInt32> time,
      Operand<TInt32> positions,
      Operand<TFloat32> bias) {}

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
    return new Geometry(b, t, pos, bias);
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
  public static Operand<TFloat32> splitHeads(
      Ops tf, Operand<TFloat32> rows, Geometry g, int n, int d) {
    return tf.reshape(
        rows, tf.stack(java.util.List.of(g.batch(), g.time(), tf.constant(n), tf.constant(d))));
  }

  /**
   * Rotary embeddings in Hugging Face's rotate-half convention. {@code x [B, T, n, D]}, {@code
   * cos}, {@code sin [B, T, 1, D]}.
   */
  public static Operand<TFloat32> rope(
      Ops tf, Operand<TFloat32> x, Operand<TFloat32> cos, Operand<TFloat32> sin, int headDim) {
    int half = headDim / 2;
    Operand<TFloat32> x1 = Layers.columns(tf, x, 0, half);
    Operand<TFloat32> x2 = Layers.columns(tf, x, half, headDim);
    Operand<TFloat32> rotated = tf.concat(java.util.List.of(tf.math.neg(x2), x1), tf.constant(-1));
    return tf.math.add(tf.math.mul(x, cos), tf.math.mul(rotated, sin));
  }

  /**
   * {@code cos} and {@code sin [B, T, 1, D]} of the rotary angles {@code position * inv_freq}, with
   * {@code inv_freq[i] = theta^(-2i/D)} computed as Hugging Face does (float32).
   */
  public static Operand<TFloat32>[] ropeTables(Ops tf, Geometry g, int headDim, double theta) {
    float[] invFreq = new float[headDim / 2];
    for (int i = 0; i < invFreq.length; i++) {
      invFreq[i] = (float) (1.0 / Math.pow(theta, (2.0 * i) / headDim));
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
   * Scaled dot-product attention with grouped key/value heads.
   *
   * @param q {@code [B, T, N, D]}
   * @param k {@code [B, T, Nkv, D]}
   * @param v {@code [B, T, Nkv, D]}
   * @return {@code [B*T, N*D]}
   */
  public static Operand<TFloat32> attend(
      Ops tf,
      Operand<TFloat32> q,
      Operand<TFloat32> k,
      Operand<TFloat32> v,
      Geometry g,
      int n,
      int nKv,
      int d) {
    Operand<TFloat32> kh =
        tf.linalg.transpose(k, tf.constant(new int[] {0, 2, 1, 3})); // [B, Nkv, T, D]
    Operand<TFloat32> vh =
        tf.linalg.transpose(v, tf.constant(new int[] {0, 2, 1, 3})); // [B, Nkv, T, D]
    return attendHeadsFirst(tf, q, kh, vh, g, n, nKv, d);
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
   * @return {@code [B*S, N*D]}
   */
  public static Operand<TFloat32> attendHeadsFirst(
      Ops tf,
      Operand<TFloat32> q,
      Operand<TFloat32> kh,
      Operand<TFloat32> vh,
      Geometry g,
      int n,
      int nKv,
      int d) {
    int group = n / nKv;
    Operand<TFloat32> q5 =
        tf.reshape(
            q,
            tf.stack(
                java.util.List.of(
                    g.batch(), g.time(), tf.constant(nKv), tf.constant(group), tf.constant(d))));
    q5 = tf.linalg.transpose(q5, tf.constant(new int[] {0, 2, 3, 1, 4})); // [B, Nkv, G, S, D]
    Operand<TFloat32> k5 = tf.expandDims(kh, tf.constant(2)); // [B, Nkv, 1, Tk, D]
    Operand<TFloat32> v5 = tf.expandDims(vh, tf.constant(2)); // [B, Nkv, 1, Tk, D]
    Operand<TFloat32> scores = Layers.batchMatMul(tf, q5, k5, true); // [B, Nkv, G, S, Tk]
    scores = tf.math.add(tf.math.mul(scores, tf.constant((float) (1.0 / Math.sqrt(d)))), g.bias());
    Operand<TFloat32> probs = tf.nn.softmax(scores);
    Operand<TFloat32> ctx = Layers.batchMatMul(tf, probs, v5, false); // [B, Nkv, G, S, D]
    ctx = tf.linalg.transpose(ctx, tf.constant(new int[] {0, 3, 1, 2, 4})); // [B, S, Nkv, G, D]
    return tf.reshape(ctx, tf.constant(new int[] {-1, n * d})); // [B*S, N*D]
  }
}
