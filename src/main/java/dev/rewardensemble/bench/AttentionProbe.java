package dev.rewardensemble.bench;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.model.Layers;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Sum;
import org.tensorflow.types.TFloat32;

/**
 * Hidden entry point for investigating one-token attention over a key/value cache, as a decode step
 * computes it ({@code KvCache.attendOne}): queries {@code [B*Nkv, 1, D]} against keys and values
 * {@code [B*Nkv, C, D]}, scores, softmax and context, per layer. Times the two products as batch
 * products (what the decode step runs) and as broadcast multiplies with sums, for a cache of {@code
 * C} slots, so that one can tell per-call overhead (constant in C) from reading the cache
 * (proportional to C). Usage: {@code java -cp CP dev.rewardensemble.bench.AttentionProbe ROWS C...
 * [--d 64] [--layers 4] [--threads 1] [--reps 200]} with {@code ROWS = B*Nkv}.
 */
public final class AttentionProbe {
  private AttentionProbe() {}

  public static void main(String[] args) throws Exception {
    int rows = Integer.parseInt(args[0]);
    List<Integer> caps = new ArrayList<>();
    int d = 64, layers = 4, threads = 1, reps = 200;
    for (int i = 1; i < args.length; i++) {
      switch (args[i]) {
        case "--d" -> d = Integer.parseInt(args[++i]);
        case "--layers" -> layers = Integer.parseInt(args[++i]);
        case "--threads" -> threads = Integer.parseInt(args[++i]);
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        default -> caps.add(Integer.parseInt(args[i]));
      }
    }
    for (int c : caps) {
      double[] us = run(rows, c, d, layers, threads, reps);
      System.out.printf(
          Locale.ROOT,
          "rows %d, cache %d slots, head %d, %d thread(s): batch products %.1f us per layer,"
              + " multiply+sum %.1f us (cache read per layer %.2f MB)%n",
          rows,
          c,
          d,
          threads,
          us[0],
          us[1],
          2.0 * rows * c * d * 4 / 1e6);
    }
  }

  /** Median microseconds per layer of the two forms, alternated in 5 rounds. */
  private static double[] run(int rows, int c, int d, int layers, int threads, int reps) {
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      @SuppressWarnings("unchecked")
      Operand<TFloat32>[] fetch = new Operand[2];
      List<Operand<TFloat32>[]> qkv = new ArrayList<>();
      for (int l = 0; l < layers; l++) {
        @SuppressWarnings("unchecked")
        Operand<TFloat32>[] t = new Operand[3];
        int[][] shapes = {{rows, 1, d}, {rows, c, d}, {rows, c, d}};
        for (int i = 0; i < 3; i++) {
          t[i] =
              tf.variable(
                  tf.random.statelessRandomUniform(
                      tf.constant(shapes[i]), tf.constant(new long[] {l, i}), TFloat32.class));
        }
        qkv.add(t);
      }
      for (int form = 0; form < 2; form++) {
        Operand<TFloat32> acc = null;
        for (Operand<TFloat32>[] t : qkv) {
          Operand<TFloat32> ctx;
          if (form == 0) {
            Operand<TFloat32> p = tf.nn.softmax(Layers.batchMatMul(tf, t[0], t[1], true));
            ctx = Layers.batchMatMul(tf, p, t[2], false); // [rows, 1, d]
          } else {
            Operand<TFloat32> scores = tf.sum(tf.math.mul(t[0], t[1]), tf.constant(-1)); // [rows,c]
            Operand<TFloat32> p =
                tf.reshape(tf.nn.softmax(scores), tf.constant(new int[] {rows, c, 1}));
            ctx = tf.sum(tf.math.mul(p, t[2]), tf.constant(1), Sum.keepDims(true)); // [rows,1,d]
          }
          acc = acc == null ? ctx : tf.math.add(acc, ctx);
        }
        fetch[form] = acc;
      }
      try (Session s = new ExecConfig(threads, 1, false).newSession(g)) {
        double[][] t = new double[2][5];
        for (int round = 0; round < 5; round++) {
          for (int form = 0; form < 2; form++) {
            for (int w = 0; w < 10; w++) {
              s.runner().fetch(fetch[form]).run().close();
            }
            long t0 = System.nanoTime();
            for (int i = 0; i < reps; i++) {
              try (Result r = s.runner().fetch(fetch[form]).run()) {
                // timed
              }
            }
            t[form][round] = (System.nanoTime() - t0) / 1e3 / reps / layers;
          }
        }
        double[] out = new double[2];
        for (int form = 0; form < 2; form++) {
          Arrays.sort(t[form]);
          out[form] = t[form][2];
        }
        return out;
      }
    }
  }
}
