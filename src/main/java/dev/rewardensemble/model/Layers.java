package dev.rewardensemble.model;

import dev.rewardensemble.config.OneDnn;
import dev.rewardensemble.config.Precision;
import org.tensorflow.GraphOperation;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.index.Indices;
import org.tensorflow.op.Ops;
import org.tensorflow.op.linalg.MatMul;
import org.tensorflow.proto.DataType;
import org.tensorflow.types.TBfloat16;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.family.TFloating;
import org.tensorflow.types.family.TType;

/**
 * Stateless building blocks shared by the model families. Shapes are written as {@code [rows, in]}.
 */
public final class Layers {
  private Layers() {}

  /**
   * The dtype of the activations inside a block in {@code cx}: {@link TFloat32}, or {@link
   * TBfloat16} under {@link Precision#BFLOAT16} compute. The residual stream between blocks, the
   * norms' statistics, softmax, heads and losses are float32 in both; a block casts its normed
   * input to this dtype once, and its projections, attention products, MLP intermediates and LoRA
   * deltas then stay in it ({@link #matMul} returns it for such inputs).
   */
  public static Class<? extends TFloating> activations(BuildContext cx) {
    return cx.precision() == Precision.BFLOAT16 ? TBfloat16.class : TFloat32.class;
  }

  /** {@code x} as {@code type}: {@code x} itself when it already is (no op is added). */
  @SuppressWarnings("unchecked")
  public static <T extends TType, U extends TType> Operand<U> cast(
      Ops tf, Operand<T> x, Class<U> type) {
    if (x.type() == type) {
      return (Operand<U>) x;
    }
    return tf.dtypes.cast(x, type);
  }

  /** The scalar {@code v} as {@code type} (a float32 constant, cast when another type). */
  public static <T extends TType> Operand<T> constant(Ops tf, float v, Class<T> type) {
    return cast(tf, tf.constant(v), type);
  }

  /**
   * {@code a @ b} (or {@code a @ b^T}) with a weight {@code b}, in {@code a}'s dtype and the
   * context's {@link Precision}: a bfloat16 {@code a} (an activation under bfloat16 compute) is
   * multiplied by {@code b} in bfloat16 ({@link #weightAs}) with a bfloat16 result; a float32
   * {@code a} with bfloat16 compute (heads) has both inputs cast down and the product cast back to
   * float32; float32 otherwise.
   */
  @SuppressWarnings("unchecked")
  public static <T extends TFloating> Operand<T> matMul(
      BuildContext cx, Operand<T> a, Operand<TFloat32> b, boolean transposeB) {
    Ops tf = cx.tf();
    if (transposeB
        && weightFirst(cx, a, b)
        && a.type() == TFloat32.class
        && cx.precision() == Precision.FLOAT32) {
      return (Operand<T>) weightFirstProduct(tf, (Operand<TFloat32>) a, b);
    }
    if (transposeB
        && cx.inference()
        && a.type() == TFloat32.class
        && cx.precision() == Precision.FLOAT32
        && (a.shape().isUnknown() || a.shape().numDimensions() == 2)
        && !b.shape().hasUnknownDimension()
        && b.shape().size() >= linearBatchMatMulMin()) {
      // oneDNN runs MatMul's x @ w^T with the [out, in] weight several times slower than x @ w
      // (its sgemm path: 4x at 16 rows, 1.45x at 256, hidden 2048), but BatchMatMulV2 with adj_y
      // (its matmul primitive, the transpose as strides) as fast as x @ w. Forward only: the
      // gradient of BatchMatMulV2 is BatchMatMulV3, which oneDNN leaves to Eigen.
      return (Operand<T>) batchMatMul(tf, (Operand<TFloat32>) a, b, true);
    }
    if (a.type() == TBfloat16.class) {
      if (!OneDnn.bfloat16Products()) { // Eigen: see bfloat16Product
        return (Operand<T>)
            tf.dtypes.cast(
                bfloat16Product(
                    tf,
                    (Operand<TBfloat16>) a,
                    asBfloat16(tf, b),
                    transposeB,
                    transposeB && weightFirst(cx, a, b)),
                TBfloat16.class);
      }
      return (Operand<T>)
          tf.linalg.matMul(
              (Operand<TBfloat16>) a, asBfloat16(tf, b), MatMul.transposeB(transposeB));
    }
    if (cx.precision() == Precision.BFLOAT16 && !OneDnn.bfloat16Products()) {
      return (Operand<T>)
          bfloat16Product(
              tf,
              tf.dtypes.cast(a, TBfloat16.class),
              asBfloat16(tf, b),
              transposeB,
              transposeB && weightFirst(cx, a, b));
    }
    if (cx.precision() == Precision.BFLOAT16) {
      return (Operand<T>)
          tf.dtypes.cast(
              tf.linalg.matMul(
                  tf.dtypes.cast(a, TBfloat16.class),
                  asBfloat16(tf, b),
                  MatMul.transposeB(transposeB)),
              TFloat32.class);
    }
    return tf.linalg.matMul(a, (Operand<T>) b, MatMul.transposeB(transposeB));
  }

  /**
   * A float32 weight as {@code type} for a product in that dtype: itself for float32; for bfloat16,
   * a weight stored in bfloat16 and widened for the float32 graph is taken as stored ({@link
   * #asBfloat16}), anything else rounded.
   */
  @SuppressWarnings("unchecked")
  public static <T extends TFloating> Operand<T> weightAs(
      Ops tf, Operand<TFloat32> w, Class<T> type) {
    if (type == TBfloat16.class) {
      return (Operand<T>) asBfloat16(tf, w);
    }
    return cast(tf, w, type);
  }

  /**
   * {@code b} in bfloat16 for a bfloat16 product: a weight stored in bfloat16 and widened for the
   * float32 graph ({@code Cast} of a bfloat16 tensor) is multiplied as stored, so that no float32
   * copy of it is made and read back; anything else is rounded to bfloat16.
   */
  @SuppressWarnings("unchecked")
  private static Operand<TBfloat16> asBfloat16(Ops tf, Operand<TFloat32> b) {
    if (widenedBfloat16(b.op())) {
      return (Operand<TBfloat16>) (Operand<?>) ((GraphOperation) b.op()).input(0);
    }
    if (b.op() instanceof GraphOperation g
        && g.type().equals("Identity")
        && g.numInputs() == 1
        && widenedBfloat16(g.input(0).op())) {
      // A widened weight read through its own Identity (LmHead: a tied head is also the
      // embedding): its own read of the stored weight.
      return tf.identity(
          (Operand<TBfloat16>) (Operand<?>) ((GraphOperation) g.input(0).op()).input(0));
    }
    return tf.dtypes.cast(b, TBfloat16.class);
  }

  /** Whether {@code op} is a {@code Cast} of a bfloat16 tensor (a weight widened as stored). */
  private static boolean widenedBfloat16(org.tensorflow.Operation op) {
    return op instanceof GraphOperation g
        && g.type().equals("Cast")
        && g.numInputs() == 1
        && (g.input(0).dataType() == DataType.DT_BFLOAT16
            || g.input(0).dataType() == DataType.DT_BFLOAT16_REF);
  }

  /**
   * {@code a @ b} (or {@code a @ b^T}) of bfloat16 operands with float32 accumulation, as oneDNN
   * computes a bfloat16 product: the operands widened (exactly) and multiplied in float32. Where
   * oneDNN does not take bfloat16 ops ({@link OneDnn#bfloat16Products()}: off, or a CPU without
   * AVX-512), Eigen's bfloat16 MatMul rounds far more (a Llama fixture's rewards under bfloat16
   * compute 0.061 from float32's, against PyTorch bfloat16's 0.025) and has no bfloat16 arithmetic
   * to be faster with on a CPU without AVX512_BF16.
   */
  static Operand<TFloat32> bfloat16Product(
      Ops tf, Operand<TBfloat16> a, Operand<TBfloat16> b, boolean transposeB, boolean weightFirst) {
    Operand<TFloat32> a32 = tf.dtypes.cast(a, TFloat32.class);
    Operand<TFloat32> b32 = tf.dtypes.cast(b, TFloat32.class);
    if (weightFirst) {
      return weightFirstProduct(tf, a32, b32);
    }
    return tf.linalg.matMul(a32, b32, MatMul.transposeB(transposeB));
  }

  /**
   * {@code x @ w^T} for a weight stored {@code [out, in]}, computed weight first as {@code (w @
   * x^T)^T}: Eigen (TensorFlow without oneDNN) runs {@code x @ w^T} far slower than {@code x @ w}
   * at a few hundred rows or fewer, while this form streams the weight in its stored order and is
   * as fast as {@code x @ w} or faster ({@link #weightFirst}). The same values up to the order of
   * float additions; the gradients are MatMul's (both forms' backward passes measured equal).
   */
  static Operand<TFloat32> weightFirstProduct(Ops tf, Operand<TFloat32> x, Operand<TFloat32> w) {
    Operand<TFloat32> t = tf.linalg.matMul(w, x, MatMul.transposeB(true)); // [out, rows]
    return tf.linalg.transpose(t, tf.constant(new int[] {1, 0}));
  }

  /** {@code a @ b} (or {@code a @ b^T}) of two tensors of one dtype, as TensorFlow's MatMul. */
  public static <T extends TType> Operand<T> product(
      Ops tf, Operand<T> a, Operand<T> b, boolean transposeB) {
    return tf.linalg.matMul(a, b, MatMul.transposeB(transposeB));
  }

  /**
   * Batched {@code a @ b} (or {@code a @ b^T} over the last two axes, broadcasting the batch axes),
   * in the inputs' dtype, as TensorFlow's {@code BatchMatMulV2}: on the CPU oneDNN's layout pass
   * replaces it with its own kernel, which it does not for the {@code BatchMatMulV3} that TF Java's
   * typed op builds (1.5x faster on the attention products measured here). Gradients are
   * TensorFlow's C++ ones.
   */
  @SuppressWarnings("unchecked")
  public static <T extends TType> Operand<T> batchMatMul(
      Ops tf, Operand<T> a, Operand<T> b, boolean adjointB) {
    if (a.type() == TBfloat16.class && !OneDnn.bfloat16Products()) {
      // float32 accumulation, as bfloat16Product
      return (Operand<T>)
          tf.dtypes.cast(
              batchMatMul(
                  tf,
                  tf.dtypes.cast(a, TFloat32.class),
                  tf.dtypes.cast(b, TFloat32.class),
                  adjointB),
              TBfloat16.class);
    }
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
  public static <T extends TFloating> Operand<T> conv1d(
      BuildContext cx, Operand<T> x, Operand<TFloat32> w, Operand<TFloat32> b) {
    Operand<T> y = matMul(cx, x, w, false); // [rows, out]
    return b == null ? y : cx.tf().nn.biasAdd(y, cast(cx.tf(), b, y.type()));
  }

  /**
   * Elements from which a weight stored {@code [out, in]} is multiplied by {@code BatchMatMulV2}
   * (with {@code adj_y}) instead of {@code MatMul} in inference graphs ({@link #matMul}): 512 x
   * 512. Below it oneDNN's MatMul is as fast or faster (the bench presets' 256 x 256 and 256 x 688:
   * 1.1-1.4x faster at 16 rows, equal at 2,048); from it BatchMatMulV2 is (512 x 512: 2.2x at 16
   * rows, 1.6x at 256). The system property {@code rme.linearBatchMatMulMin} overrides it (tests
   * set 0).
   */
  public static long linearBatchMatMulMin() {
    return Long.getLong("rme.linearBatchMatMulMin", 512L * 512L);
  }

  /**
   * Whether the product of rows {@code x [rows, in]} (2-D) with weight {@code w} stored {@code
   * [out, in]} is computed weight first ({@link #weightFirstProduct}): in a decode step (a few rows
   * per weight) and, in any graph, for weights of {@link #weightFirstMin()} elements or more, when
   * TensorFlow runs without oneDNN ({@link OneDnn#enabled()}). Eigen's {@code x @ w^T} against
   * {@code x @ w} (bench.ProjectionProbe, AVX2-only AMD EPYC, 2 threads): 1.2-5.3x slower at 16
   * rows, 2.1-2.4x at 256 rows for Llama-3.2-1B's 2048 x 2048, 2048 x 8192 and 8192 x 2048, where
   * the weight-first form takes 0.53-0.84x of {@code x @ w}; at 2,048 rows the forms are within 5%
   * of each other there, but weight-first is 2x slower for the bench presets' 256 x 688 (below the
   * threshold). Backward passes are equal in both forms. With oneDNN the forms are equal or {@code
   * x @ w^T} is faster. The system property {@code rme.weightFirst} ({@code auto}, {@code true}:
   * also with oneDNN, {@code false}: never) overrides the oneDNN condition (tests check both forms
   * on any machine).
   */
  public static boolean weightFirst(BuildContext cx, Operand<?> x, Operand<TFloat32> w) {
    boolean where =
        cx.decoding() || (!w.shape().hasUnknownDimension() && w.shape().size() >= weightFirstMin());
    if (!where || !(x.shape().isUnknown() || x.shape().numDimensions() == 2)) {
      return false;
    }
    String v = System.getProperty("rme.weightFirst", "auto");
    return switch (v) {
      case "auto" -> !OneDnn.enabled();
      case "true" -> true;
      case "false" -> false;
      default ->
          throw new IllegalArgumentException(
              "-Drme.weightFirst must be auto, true or false, got '" + v + "'");
    };
  }

  /**
   * Elements from which a weight stored {@code [out, in]} is multiplied weight first in any graph
   * ({@link #weightFirst}): 512 x 512, as {@link #linearBatchMatMulMin()}. The system property
   * {@code rme.weightFirstMin} overrides it (tests set 0).
   */
  public static long weightFirstMin() {
    return Long.getLong("rme.weightFirstMin", 512L * 512L);
  }

  /** {@code x @ w^T} for a torch Linear weight stored {@code [out, in]} (Llama, heads). */
  public static <T extends TFloating> Operand<T> linear(
      BuildContext cx, Operand<T> x, Operand<TFloat32> w) {
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

  /**
   * {@link #rmsNorm} of rows of another dtype (Qwen 3's per-head norms under bfloat16 compute):
   * computed in float32, as transformers' RMSNorms do, and returned in {@code x}'s dtype.
   */
  public static <T extends TFloating> Operand<T> rmsNormOf(
      Ops tf, Operand<T> x, Operand<TFloat32> weight, double eps) {
    return cast(tf, rmsNorm(tf, cast(tf, x, TFloat32.class), weight, eps), x.type());
  }

  /**
   * GPT-2's {@code gelu_new} (Gemma 2's {@code gelu_pytorch_tanh}), the tanh approximation {@code
   * 0.5 x (1 + tanh(c (x + 0.044715 x^3)))}, in {@code x}'s dtype, computed in its equal form
   * {@code x sigmoid(x (2c + 2c 0.044715 x^2))} (as {@code 0.5 (1 + tanh(z)) = sigmoid(2z)}): 6 ops
   * instead of 9 forward and fewer in the gradient, each over the MLP's widest rows (a bench-gpt2
   * training step spent a fifth of its op time in {@code Mul}s, most of them the activation's). For
   * large negative {@code x} it is the more accurate form: no {@code 1 + tanh(z)} cancelling to 0.
   */
  public static <T extends TFloating> Operand<T> geluNew(Ops tf, Operand<T> x) {
    Class<T> t = x.type();
    double a = 2 * Math.sqrt(2.0 / Math.PI);
    Operand<T> z =
        tf.math.mul(
            x,
            tf.math.add(
                constant(tf, (float) a, t),
                tf.math.mul(constant(tf, (float) (a * 0.044715), t), tf.math.square(x))));
    return tf.math.mul(x, tf.math.sigmoid(z));
  }

  /** Exact gelu with erf (in float32: rows of another dtype are widened and cast back). */
  public static <T extends TFloating> Operand<T> gelu(Ops tf, Operand<T> x) {
    Operand<TFloat32> x32 = cast(tf, x, TFloat32.class);
    Operand<TFloat32> erf =
        tf.math.erf(tf.math.mul(x32, tf.constant((float) (1.0 / Math.sqrt(2.0)))));
    return cast(
        tf,
        tf.math.mul(tf.math.mul(tf.constant(0.5f), x32), tf.math.add(tf.constant(1f), erf)),
        x.type());
  }

  /** {@code x * sigmoid(x)}. */
  public static <T extends TFloating> Operand<T> silu(Ops tf, Operand<T> x) {
    return tf.math.mul(x, tf.math.sigmoid(x));
  }

  /** Columns {@code [from, to)} of the last axis. */
  public static <T extends TType> Operand<T> columns(Ops tf, Operand<T> x, long from, long to) {
    return tf.stridedSlice(x, Indices.ellipsis(), Indices.slice(from, to));
  }
}
