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
import org.tensorflow.types.TFloat32;

/**
 * Hidden entry point for investigating the weight products of a block: {@code rows x in} times a
 * weight stored {@code [in, out]} ({@code x @ w}, as GPT-2's Conv1D) against the same weight stored
 * {@code [out, in]} ({@code x @ w^T}, torch's Linear, as the Llama family applies it), median time
 * of each in rounds alternating the two forms. Usage: {@code java -cp CP
 * dev.rewardensemble.bench.ProjectionProbe ROWS IN OUT [IN OUT ...] [--threads N] [--reps R]}.
 */
public final class ProjectionProbe {
  private ProjectionProbe() {}

  public static void main(String[] args) throws Exception {
    int threads = 2;
    int reps = 10;
    String grad = "none";
    List<Integer> nums = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--threads" -> threads = Integer.parseInt(args[++i]);
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        case "--grad" -> grad = args[++i];
        default -> nums.add(Integer.parseInt(args[i]));
      }
    }
    if (nums.size() < 3 || nums.size() % 2 != 1) {
      System.err.println(
          "usage: ProjectionProbe ROWS IN OUT [IN OUT ...] [--threads N] [--reps R]");
      System.exit(2);
    }
    int rows = nums.get(0);
    ExecConfig exec = new ExecConfig(threads, 1, false);
    for (int p = 1; p < nums.size(); p += 2) {
      int in = nums.get(p), out = nums.get(p + 1);
      double[] t = measure(exec, rows, in, out, reps, grad);
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
   * Median seconds of {@code x @ w}, of {@code x @ w^T} and of {@code (w x^T)^T} (the weight
   * first), in rounds rotating the order.
   */
  static double[] measure(ExecConfig exec, int rows, int in, int out, int reps, String grad)
      throws Exception {
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      // Reads of the variables (Identity), so that gradients can be taken with respect to them.
      Operand<TFloat32> x =
          tf.identity(
              tf.variable(
                  tf.random.randomUniform(tf.constant(new long[] {rows, in}), TFloat32.class)));
      Operand<TFloat32> w =
          tf.identity(
              tf.variable(
                  tf.random.randomUniform(tf.constant(new long[] {in, out}), TFloat32.class)));
      Operand<TFloat32> wt =
          tf.identity(
              tf.variable(
                  tf.random.randomUniform(tf.constant(new long[] {out, in}), TFloat32.class)));
      // A reduction of the product as the target, so that nothing but a scalar leaves the graph.
      Operand<TFloat32> plain = tf.math.mean(tf.linalg.matMul(x, w), tf.constant(new int[] {0, 1}));
      Operand<TFloat32> transposed =
          tf.math.mean(
              tf.linalg.matMul(x, wt, MatMul.transposeB(true)), tf.constant(new int[] {0, 1}));
      // The same product weight-first: (w x^T)^T, the weight as the product's left operand.
      Operand<TFloat32> weightFirst =
          tf.math.mean(
              tf.linalg.transpose(
                  tf.linalg.matMul(wt, x, MatMul.transposeB(true)), tf.constant(new int[] {1, 0})),
              tf.constant(new int[] {0, 1}));
      try (Session s = exec.newSession(g)) {
        // oneDNN's matmul primitive (BatchMatMulV2, which its layout pass rewrites) with the
        // weight's transpose given by strides (adj_y), and einsum.
        Operand<TFloat32> batched =
            tf.math.mean(
                dev.rewardensemble.model.Layers.batchMatMul(tf, x, wt, true),
                tf.constant(new int[] {0, 1}));
        Operand<TFloat32> einsum =
            tf.math.mean(
                tf.linalg.einsum(java.util.List.of(x, wt), "ri,oi->ro"),
                tf.constant(new int[] {0, 1}));
        List<Operand<TFloat32>> forms = List.of(plain, transposed, weightFirst, batched, einsum);
        if (!grad.equals("none")) {
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
          medians[k] = median(times[k]);
        }
        return medians;
      }
    }
  }

  private static double median(double[] v) {
    double[] s = v.clone();
    java.util.Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }
}
