package dev.rewardensemble.bench;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.rl.Sampling;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * Hidden entry point for the cost of one token choice with top-p and top-k off: {@link
 * Sampling#choose} (each row's nucleus looked for among its most likely tokens, the rows it does
 * not fit sorted whole) against the whole-vocabulary sort of every row (the same function with no
 * candidate limit, which is what every top-p draw did before), in rounds alternating the two, on
 * {@code ROWS x VOCAB} Gaussian logits: a fraction {@code --flat} of the rows with standard
 * deviation 0.9 (a random model's spread: the nucleus is most of the vocabulary), the others 6 (a
 * peaked distribution whose 0.9 nucleus lies among the 1,024 most likely tokens). "same tokens"
 * compares the two choices; at {@code --top-p 1} rows drawn past their candidates walk the rest of
 * the vocabulary in index order, not sorted, so they draw other tokens with the same probabilities
 * (false is expected there). Usage: {@code java -cp CP dev.rewardensemble.bench.SamplingProbe ROWS
 * VOCAB [--flat F ...] [--top-p P] [--threads N] [--reps R]}.
 */
public final class SamplingProbe {
  private SamplingProbe() {}

  public static void main(String[] args) throws Exception {
    int threads = 2;
    int reps = 9;
    float topP = 0.9f;
    List<Double> flats = new ArrayList<>();
    List<Integer> nums = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--threads" -> threads = Integer.parseInt(args[++i]);
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        case "--top-p" -> topP = Float.parseFloat(args[++i]);
        case "--flat" -> flats.add(Double.parseDouble(args[++i]));
        default -> nums.add(Integer.parseInt(args[i]));
      }
    }
    if (nums.size() != 2) {
      System.err.println(
          "usage: SamplingProbe ROWS VOCAB [--flat F ...] [--top-p P] [--threads N] [--reps R]");
      System.exit(2);
    }
    if (flats.isEmpty()) {
      flats.addAll(List.of(0.0, 0.125, 0.5, 1.0));
    }
    int rows = nums.get(0);
    int vocab = nums.get(1);
    ExecConfig exec = new ExecConfig(threads, 1, false);
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      Placeholder<TFloat32> logits =
          tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, vocab)));
      Placeholder<TFloat32> u = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)));
      Operand<TFloat32> temperature = tf.constant(1f);
      Operand<TFloat32> p = tf.constant(topP);
      Operand<TInt32> k = tf.constant(vocab);
      Operand<TInt32> candidates = Sampling.choose(tf, logits, u, temperature, p, k);
      Operand<TInt32> whole = Sampling.chooseSortingWhole(tf, logits, u, temperature, p, k);
      try (Session s = new Session(g, exec.toProto())) {
        for (double flat : flats) {
          int flatRows = (int) Math.round(flat * rows);
          float[] x = new float[rows * vocab];
          SplittableRandom rng = new SplittableRandom(17);
          for (int b = 0; b < rows; b++) {
            double sd = b < flatRows ? 0.9 : 6.0;
            for (int v = 0; v < vocab; v++) {
              x[b * vocab + v] = (float) (nextGaussian(rng) * sd);
            }
          }
          float[] us = new float[rows];
          for (int b = 0; b < rows; b++) {
            us[b] = (float) rng.nextDouble();
          }
          try (TFloat32 lt =
                  TFloat32.tensorOf(Shape.of(rows, vocab), DataBuffers.of(x, true, false));
              TFloat32 ut = TFloat32.tensorOf(Shape.of(rows), DataBuffers.of(us, true, false))) {
            double[][] ms = new double[2][reps];
            int[][] ids = new int[2][rows];
            for (int r = -1; r < reps; r++) { // r = -1: warm-up
              for (int side = 0; side < 2; side++) {
                int which = (r & 1) == 0 ? side : 1 - side; // alternate which runs first
                long t0 = System.nanoTime();
                try (Result res =
                    s.runner()
                        .feed(logits, lt)
                        .feed(u, ut)
                        .fetch(which == 0 ? candidates : whole)
                        .run()) {
                  if (r >= 0) {
                    ms[which][r] = (System.nanoTime() - t0) / 1e6;
                  } else {
                    ((TInt32) res.get(0)).asRawTensor().data().asInts().read(ids[which]);
                  }
                }
              }
            }
            double a = median(ms[0]);
            double w = median(ms[1]);
            System.out.printf(
                Locale.ROOT,
                "rows %d, vocabulary %d, top-p %.2f, flat rows %d: among candidates %.2f ms,"
                    + " whole sort %.2f ms, whole/candidates %.2f; same tokens: %s%n",
                rows,
                vocab,
                topP,
                flatRows,
                a,
                w,
                w / a,
                Arrays.equals(ids[0], ids[1]));
          }
        }
      }
    }
  }

  private static double nextGaussian(SplittableRandom rng) {
    double u1 = rng.nextDouble();
    double u2 = rng.nextDouble();
    return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
  }

  private static double median(double[] v) {
    double[] c = v.clone();
    Arrays.sort(c);
    return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
  }
}
