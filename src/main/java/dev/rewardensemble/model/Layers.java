package dev.rewardensemble.model;

import dev.rewardensemble.config.Precision;
import org.tensorflow.GraphOperation;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.index.Indices;
import org.tensorflow.op.Ops;
import org.tensorflow.op.linalg.MatMul;
import org.tensorflow.proto.DataType;
import org.tensorflow.types.TBfloat16;
import org.tensorflow.types.TFloat32;

/**
 * Stateless building blocks shared by the model families. Shapes are written as {@code [rows, in]}.
 */
public final class Layers {
  private Layers() {}

  /**
   * {@code a @ b} (or {@code a @ b^T}) in the context's {@link Precision}: with bfloat16 both
   * inputs are cast down and the product cast back to float32.
   */
  public static Operand<TFloat32> matMul(
      BuildContext cx, Operand<TFloat32> a, Operand<TFloat32> b, boolean transposeB) {
    Ops tf = cx.tf();
    if (cx.precision() == Precision.BFLOAT16) {
      return tf.dtypes.cast(
          tf.linalg.matMul(
              tf.dtypes.cast(a, TBfloat16.class), asBfloat16(tf, b), MatMul.transposeB(transposeB)),
          TFloat32.class);
    }
    return tf.linalg.matMul(a, b, MatMul.transposeB(transposeB));
  }

  /**
   * {@code b} in bfloat16 for a bfloat16 product: a weight stored in bfloat16 and widened for the
   * float32 graph ({@code Cast} of a bfloat16 tensor) is multiplied as stored, so that no float32
   * copy of it is made and read back; anything else is rounded to bfloat16.
   */
  @SuppressWarnings("unchecked")
  private static Operand<TBfloat16> asBfloat16(Ops tf, Operand<TFloat32> b) {
    if (b.op() instanceof GraphOperation g
        && g.type().equals("Cast")
        && g.numInputs() == 1
        && (g.input(0).dataType() == DataType.DT_BFLOAT16
            || g.input(0).dataType() == DataType.DT_BFLOAT16_REF)) {
      return (Operand<TBfloat16>) (Operand<?>) g.input(0);
    }
    return tf.dtypes.cast(b, TBfloat16.class);
  }

  /**
   * Batched {@code a @ b} (or {@code a @ b^T} over the last two axes, broadcasting the batch axes),
   * float32, as TensorFlow's {@code BatchMatMulV2}: on the CPU oneDNN's layout pass replaces it
   * with its own kernel, which it does not for the {@code BatchMatMulV3} that TF Java's typed op
   * builds (1.5x faster on the attention products measured here). Gradients are TensorFlow's C++
   * ones.
   */
  public static Operand<TFloat32> batchMatMul(
      Ops tf, Operand<TFloat32> a, Operand<TFloat32> b, boolean adjointB) {
    return tf.scope()
        .opBuilder("BatchMatMulV2", "BatchMatMulV2")
        .addInput(a.asOutput())
        .addInput(b.asOutput())
        .setAttr("adj_x", false)
        .setAttr("adj_y", adjointB)
        .build()
        .output(0);
  }

  /** {@code x @ w (+ b)} for a Conv1D weight stored {@code [in, out]} (GPT-2). */
  public static Operand<TFloat32> conv1d(
      BuildContext cx, Operand<TFloat32> x, Operand<TFloat32> w, Operand<TFloat32> b) {
    Operand<TFloat32> y = matMul(cx, x, w, false); // [rows, out]
    return b == null ? y : cx.tf().nn.biasAdd(y, b);
  }

  /** {@code x @ w^T} for a torch Linear weight stored {@code [out, in]} (Llama, heads). */
  public static Operand<TFloat32> linear(
      BuildContext cx, Operand<TFloat32> x, Operand<TFloat32> w) {
    return matMul(cx, x, w, true); // [rows, out]
  }

  /** LayerNorm over the last axis with biased variance, as {@code torch.nn.LayerNorm}. */
  public static Operand<TFloat32> layerNorm(
      Ops tf, Operand<TFloat32> x, Operand<TFloat32> gamma, Operand<TFloat32> beta, double eps) {
    Operand<TFloat32> mean =
        tf.math.mean(x, tf.constant(-1), org.tensorflow.op.math.Mean.keepDims(true));
    Operand<TFloat32> centered = tf.math.sub(x, mean);
    Operand<TFloat32> var =
        tf.math.mean(
            tf.math.square(centered), tf.constant(-1), org.tensorflow.op.math.Mean.keepDims(true));
    Operand<TFloat32> normed =
        tf.math.mul(centered, tf.math.rsqrt(tf.math.add(var, tf.constant((float) eps))));
    return tf.math.add(tf.math.mul(normed, gamma), beta);
  }

  /** RMSNorm over the last axis, as Hugging Face's {@code LlamaRMSNorm}. */
  public static Operand<TFloat32> rmsNorm(
      Ops tf, Operand<TFloat32> x, Operand<TFloat32> weight, double eps) {
    Operand<TFloat32> ms =
        tf.math.mean(
            tf.math.square(x), tf.constant(-1), org.tensorflow.op.math.Mean.keepDims(true));
    return tf.math.mul(
        tf.math.mul(x, tf.math.rsqrt(tf.math.add(ms, tf.constant((float) eps)))), weight);
  }

  /** GPT-2's {@code gelu_new}: the tanh approximation. */
  public static Operand<TFloat32> geluNew(Ops tf, Operand<TFloat32> x) {
    float c = (float) Math.sqrt(2.0 / Math.PI);
    Operand<TFloat32> cube = tf.math.mul(tf.math.square(x), x);
    Operand<TFloat32> inner =
        tf.math.mul(tf.constant(c), tf.math.add(x, tf.math.mul(tf.constant(0.044715f), cube)));
    return tf.math.mul(
        tf.math.mul(tf.constant(0.5f), x), tf.math.add(tf.constant(1f), tf.math.tanh(inner)));
  }

  /** Exact gelu with erf. */
  public static Operand<TFloat32> gelu(Ops tf, Operand<TFloat32> x) {
    Operand<TFloat32> erf =
        tf.math.erf(tf.math.mul(x, tf.constant((float) (1.0 / Math.sqrt(2.0)))));
    return tf.math.mul(tf.math.mul(tf.constant(0.5f), x), tf.math.add(tf.constant(1f), erf));
  }

  /** {@code x * sigmoid(x)}. */
  public static Operand<TFloat32> silu(Ops tf, Operand<TFloat32> x) {
    return tf.math.mul(x, tf.math.sigmoid(x));
  }

  /** Columns {@code [from, to)} of the last axis. */
  public static Operand<TFloat32> columns(Ops tf, Operand<TFloat32> x, long from, long to) {
    return tf.stridedSlice(x, Indices.ellipsis(), Indices.slice(from, to));
  }
}
