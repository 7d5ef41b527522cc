package dev.rewardensemble.bench;

import dev.rewardensemble.config.ExecConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;
import org.tensorflow.op.linalg.MatMul;
import org.tensorflow.types.TBfloat16;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.family.TFloating;

/**
 * Hidden entry point for investigating the weight products of a block: {@code rows x in} times a
 * weight stored {@code [in, out]} ({@code x @ w}, as GPT-2's Conv1D) against the same weight stored
 * {@code [out, in]} ({@code x @ w^T}, torch's Linear, as the Llama family applies it), median time
 * of each in rounds alternating the two forms. Usage: {@code java -cp CP
 * dev.rewardensemble.bench.ProjectionProbe ROWS IN OUT [IN OUT ...] [--threads N] [--reps R]
 * [--grad x|xw] [--bf16]}: {@code --grad} times the backward pass (with respect to x, or x and the
 * weight), {@code --bf16} the products in bfloat16.
 */
public final class ProjectionProbe {
  private ProjectionProbe() {}

  public static void main(String[] args) throws Exception {
    int threads = 2;
    int reps = 10;
    String grad = "none";
    boolean bf16 = false;
    List<Integer> nums = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--threads" -> threads = Integer.parseInt(args[++i]);
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        case "--grad" -> grad = args[++i];
        case "--bf16" -> bf16 = true;
        default -> nums.add(Integer.parseInt(args[i]));
      }
    }
    if (nums.size() < 3 || nums.size() % 2 != 1) {
      System.err.println(
          "usage: ProjectionProbe ROWS IN OUT [IN OUT ...] [--threads N] [--reps R] [--grad x|xw]"
              + " [--bf16]");
      System.exit(2);
    }
    int rows = nums.get(0);
    ExecConfig exec = new ExecConfig(threads, 1, false);
    for (int p = 1; p < nums.size(); p += 2) {
      int in = nums.get(p), out = nums.get(p + 1);
      double[] t = measure(exec, rows, in, out, reps, grad, bf16);
      double flops = 2.0 * rows * in * out;
      System.out.printf(
          Locale.ROOT,
          "rows %d, %d -> %d: x@w %.3f ms (%.1f GFLOP/s), x@w^T %.3f ms (%.1f GFLOP/s),"
              + " (w x^T)^T %.3f ms (%.1f GFLOP/s), BatchMatMulV2(x, w, adj_y) %.3f ms, einsum %.3f ms;"
              + " w^T/w %.2f, (w x^T)^T/w %.2f, batch/w %.2f, einsum/w %.2f%n",
          rows,
          in,
          out,
          t[0] * 1e3,
          flops / t[0] / 1e9,
          t[1] * 1e3,
          flops / t[1] / 1e9,
          t[2] * 1e3,
          flops / t[2] / 1e9,
          t[3] * 1e3,
          t[4] * 1e3,
          t[1] / t[0],
          t[2] / t[0],
          t[3] / t[0],
          t[4] / t[0]);
    }
  }

  /**
   * Median seconds of {@code x @ w}, {@code x @ w^T}, {@code (w x^T)^T} (the weight first), {@code
   * BatchMatMulV2(x, w, adj_y)} and einsum, in rounds rotating the order; with {@code grad} "x" or
   * "xw" the backward pass instead (float32 only); {@code bf16}: inputs and products in bfloat16.
   */
  static double[] measure(
      ExecConfig exec, int rows, int in, int out, int reps, String grad, boolean bf16)
      throws Exception {
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      Operand<TFloat32> x = read(tf, rows, in);
      Operand<TFloat32> w = read(tf, in, out);
      Operand<TFloat32> wt = read(tf, out, in);
      List<Operand<TFloat32>> forms;
      if (bf16) {
        forms = forms(tf, bfloat16(tf, rows, in), bfloat16(tf, in, out), bfloat16(tf, out, in));
      } else {
        forms = forms(tf, x, w, wt);
      }
      if (!grad.equals("none")) {
        if (bf16) {
          throw new IllegalArgumentException("--grad is for float32");
        }
        // The backward pass instead: each form's gradients with respect to x ("x", a frozen
        // weight) or to x and its weight ("xw"), summed to a scalar.
        List<Operand<TFloat32>> withGrad = new ArrayList<>();
        List<Operand<TFloat32>> weightOf = List.of(w, wt, wt, wt, wt);
        for (int k = 0; k < forms.size(); k++) {
          List<Operand<TFloat32>> wrt =
              grad.equals("xw") ? List.of(x, weightOf.get(k)) : List.<Operand<TFloat32>>of(x);
          Operand<TFloat32> total = null;
          for (Operand<?> dg : tf.gradients(forms.get(k), wrt).dy()) {
            @SuppressWarnings("unchecked")
            Operand<TFloat32> d = (Operand<TFloat32>) dg;
            Operand<TFloat32> m =
                tf.math.mean(tf.reshape(d, tf.constant(new int[] {-1})), tf.constant(0));
            total = total == null ? m : tf.math.add(total, m);
          }
          withGrad.add(total);
        }
        forms = withGrad;
      }
      try (Session s = exec.newSession(g)) {
        double[][] times = new double[forms.size()][reps];
        for (int warm = 0; warm < 3; warm++) {
          for (Operand<TFloat32> f : forms) {
            s.runner().fetch(f).run().close();
          }
        }
        for (int r = 0; r < reps; r++) {
          for (int k = 0; k < forms.size(); k++) {
            int which = (k + r) % forms.size();
            long t0 = System.nanoTime();
            s.runner().fetch(forms.get(which)).run().close();
            times[which][r] = (System.nanoTime() - t0) / 1e9;
          }
        }
        double[] medians = new double[forms.size()];
        for (int k = 0; k < medians.length; k++) {
          medians[k] = Timing.median(times[k]);
        }
        return medians;
      }
    }
  }

  /** A read (Identity) of a float32 variable of random values, so that gradients can be taken. */
  private static Operand<TFloat32> read(Ops tf, int r, int c) {
    return tf.identity(
        tf.variable(tf.random.randomUniform(tf.constant(new long[] {r, c}), TFloat32.class)));
  }

  /** A read of a bfloat16 variable of random values. */
  private static Operand<TBfloat16> bfloat16(Ops tf, int r, int c) {
    return tf.identity(
        tf.variable(
            tf.dtypes.cast(
                tf.random.randomUniform(tf.constant(new long[] {r, c}), TFloat32.class),
                TBfloat16.class)));
  }

  /** The five forms of the product, each reduced to a float32 scalar (nothing else leaves). */
  private static <T extends TFloating> List<Operand<TFloat32>> forms(
      Ops tf, Operand<T> x, Operand<T> w, Operand<T> wt) {
    List<Operand<T>> products =
        List.of(
            tf.linalg.matMul(x, w),
            tf.linalg.matMul(x, wt, MatMul.transposeB(true)),
            tf.linalg.transpose(
                tf.linalg.matMul(wt, x, MatMul.transposeB(true)), tf.constant(new int[] {1, 0})),
            // oneDNN's matmul primitive (its layout pass rewrites BatchMatMulV2), the weight's
            // transpose given by strides (adj_y)
            dev.rewardensemble.model.Layers.batchMatMul(tf, x, wt, true),
            tf.linalg.einsum(List.of(x, wt), "ri,oi->ro"));
    List<Operand<TFloat32>> out = new ArrayList<>();
    for (Operand<T> p : products) {
      out.add(tf.dtypes.cast(tf.math.mean(p, tf.constant(new int[] {0, 1})), TFloat32.class));
    }
    return out;
  }
}
