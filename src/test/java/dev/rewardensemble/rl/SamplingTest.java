package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.testing.Fixtures;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
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

/** The token-choice graph against plain Java, and the validation of {@link SamplingConfig}. */
class SamplingTest {
  private static final float[][] LOGITS = {
    {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, 0.5f},
    {-0.3f, 0.2f, 3.0f, 0.1f, 0.1f, -2.0f},
  };

  /** Plain-Java inverse-CDF choice with the same filters (stable sort: lower index first). */
  static int reference(float[] logits, float u, double temperature, double topP, int k) {
    Integer[] order = IntStream.range(0, logits.length).boxed().toArray(Integer[]::new);
    Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -logits[i]));
    double max = logits[order[0]] / temperature;
    double[] p = new double[k];
    double z = 0;
    for (int i = 0; i < k; i++) {
      p[i] = Math.exp(logits[order[i]] / temperature - max);
      z += p[i];
    }
    double before = 0;
    double[] cum = new double[k];
    double total = 0;
    int kept = 0;
    for (int i = 0; i < k; i++) {
      p[i] /= z;
      if (before < topP) {
        total += p[i];
        kept++;
      }
      before += p[i];
      cum[i] = total;
    }
    int rank = 0;
    while (rank < kept - 1 && cum[rank] <= u * total) {
      rank++;
    }
    return order[rank];
  }

  private record Drawn(int[] ids, float[] logprobs) {}

  /** {@link Sampling#choose} and {@link Sampling#logProb} in a session of their own. */
  private static final class ChoiceGraph implements AutoCloseable {
    private final Graph g = new Graph();
    private final Placeholder<TFloat32> logits;
    private final Placeholder<TFloat32> u;
    private final Placeholder<TFloat32> temp;
    private final Placeholder<TFloat32> topP;
    private final Placeholder<TInt32> k;
    private final Operand<TInt32> chosen;
    private final Operand<TFloat32> lp;
    private final Session s;

    /** {@code candidates} 0: {@link Sampling#CANDIDATES}. */
    ChoiceGraph(int candidates) {
      Ops tf = Ops.create(g);
      logits = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1)));
      u = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)));
      temp = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.scalar()));
      topP = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.scalar()));
      k = tf.placeholder(TInt32.class, Placeholder.shape(Shape.scalar()));
      chosen =
          candidates == 0
              ? Sampling.choose(tf, logits, u, temp, topP, k)
              : Sampling.choose(tf, logits, u, temp, topP, k, candidates);
      lp = Sampling.logProb(tf, logits, chosen);
      s = new Session(g, ExecConfig.deterministic().toProto());
    }

    /** Tokens and their log-probabilities for rows {@code x} and uniform numbers {@code us}. */
    Drawn draw(float[][] x, float[] us, double temperature, double p, int topK) {
      int rows = x.length;
      int vocab = x[0].length;
      float[] flat = new float[rows * vocab];
      for (int b = 0; b < rows; b++) {
        System.arraycopy(x[b], 0, flat, b * vocab, vocab);
      }
      try (TFloat32 lT =
              TFloat32.tensorOf(Shape.of(rows, vocab), DataBuffers.of(flat, true, false));
          TFloat32 uT = TFloat32.tensorOf(Shape.of(rows), DataBuffers.of(us, true, false));
          TFloat32 tT = TFloat32.scalarOf((float) temperature);
          TFloat32 pT = TFloat32.scalarOf((float) p);
          TInt32 kT = TInt32.scalarOf(topK);
          Result r =
              s.runner()
                  .feed(logits, lT)
                  .feed(u, uT)
                  .feed(temp, tT)
                  .feed(topP, pT)
                  .feed(k, kT)
                  .fetch(chosen)
                  .fetch(lp)
                  .run()) {
        int[] got = new int[rows];
        float[] gotLp = new float[rows];
        ((TInt32) r.get(0)).asRawTensor().data().asInts().read(got);
        ((TFloat32) r.get(1)).asRawTensor().data().asFloats().read(gotLp);
        return new Drawn(got, gotLp);
      }
    }

    @Override
    public void close() {
      s.close();
      g.close();
    }
  }

  @Test
  void chooseMatchesPlainJavaAndLogProbIsLogSoftmax() {
    float[] us = {0f, 0.05f, 0.3f, 0.55f, 0.75f, 0.9f, 0.999f};
    double[][] settings = {
      {1.0, 1.0, 6}, {0.5, 0.8, 6}, {1.0, 0.5, 3}, {2.0, 0.9, 6}, {1.0, 1.0, 2}, {0.7, 0.95, 1}
    };
    try (ChoiceGraph choice = new ChoiceGraph(0)) {
      for (double[] st : settings) {
        for (float uv : us) {
          Drawn got = choice.draw(LOGITS, new float[] {uv, uv}, st[0], st[1], (int) st[2]);
          for (int b = 0; b < 2; b++) {
            int want = reference(LOGITS[b], uv, st[0], st[1], (int) st[2]);
            String what = Arrays.toString(st) + " u=" + uv + " row " + b;
            assertEquals(want, got.ids()[b], what);
            double lse = 0;
            for (float x : LOGITS[b]) {
              lse += Math.exp(x);
            }
            Fixtures.assertClose(
                new float[] {(float) (LOGITS[b][want] - Math.log(lse))},
                new float[] {got.logprobs()[b]},
                0,
                1e-6,
                what);
          }
        }
      }
    }
  }

  @Test
  void topPKeepsTheSmallestSetReachingTheMass() {
    // probabilities 0.5, 0.3, 0.2 (up to rounding): top-p 0.8 keeps the first two only.
    float[] logits = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.2)};
    assertEquals(1, reference(logits, 0.99f, 1.0, 0.8, 3));
    assertEquals(0, reference(logits, 0.6f, 1.0, 0.8, 3));
    assertEquals(2, reference(logits, 0.99f, 1.0, 1.0, 3));
  }

  /**
   * Top-p without a whole-vocabulary sort: with 16 candidates over 300 tokens, peaked rows (whose
   * nucleus lies among their candidates) and flat rows (sorted whole) in one batch draw what the
   * plain-Java full sort draws, for top-k off, within and beyond the candidates; at top-p 1 (pure
   * sampling) a row draws among its candidates when they hold more than its uniform number, and
   * past them in index order otherwise, as {@link #pureReference} does.
   */
  @Test
  void nucleusAmongCandidatesDrawsWhatTheWholeSortDraws() {
    int rows = 8;
    int vocab = 300;
    int candidates = 16;
    java.util.Random rng = new java.util.Random(7);
    float[][] logits = new float[rows][vocab];
    for (int b = 0; b < rows; b++) {
      double spread = b % 2 == 0 ? 6.0 : 0.4; // even rows peaked, odd rows flat
      for (int v = 0; v < vocab; v++) {
        logits[b][v] = (float) (rng.nextGaussian() * spread);
      }
    }
    logits[2][5] = logits[2][9]; // a tie among candidates: the lower index first
    // The mixed batch, and the flat rows alone (none can fit: the candidates shrink to one).
    int[][] batches = {{0, 1, 2, 3, 4, 5, 6, 7}, {1, 3, 5, 7}};
    double[][] settings = { // temperature, topP, k
      {1.0, 0.9, vocab},
      {0.7, 0.5, vocab},
      {1.5, 0.95, vocab},
      {1.0, 1.0, vocab},
      {1.0, 0.9, 10},
      {1.0, 0.9, 100}
    };
    // Rows drawn among the candidates and rows sorted whole (top-k off), below top-p 1 and at 1.
    int[] paths = new int[4];
    try (ChoiceGraph choice = new ChoiceGraph(candidates)) {
      for (int[] batch : batches) {
        int n = batch.length;
        float[][] x = new float[n][];
        for (int b = 0; b < n; b++) {
          x[b] = logits[batch[b]];
        }
        for (double[] st : settings) {
          for (int draw = 0; draw < 40; draw++) {
            float[] us = new float[n];
            for (int b = 0; b < n; b++) {
              us[b] = draw == 0 ? 0f : Math.min(rng.nextFloat(), Math.nextDown(1f));
            }
            int[] got = choice.draw(x, us, st[0], st[1], (int) st[2]).ids();
            boolean pure = st[1] >= 1 && st[2] == vocab;
            for (int b = 0; b < n; b++) {
              int want =
                  pure
                      ? pureReference(x[b], us[b], st[0], candidates)
                      : reference(x[b], us[b], st[0], st[1], (int) st[2]);
              assertEquals(want, got[b], Arrays.toString(st) + " u=" + us[b] + " row " + batch[b]);
              if (st[2] == vocab && n == rows) {
                paths[
                    (fitsAmong(x[b], us[b], st[0], st[1], candidates) ? 0 : 1)
                        + (st[1] >= 1 ? 2 : 0)]++;
              }
            }
          }
        }
      }
    }
    assertTrue(
        paths[0] >= 6 && paths[1] >= 6 && paths[2] >= 6 && paths[3] >= 6,
        "both paths drawn, below top-p 1 and at 1: " + Arrays.toString(paths));
  }

  /**
   * Plain-Java pure sampling (top-p 1, top-k off) as {@link Sampling#choose} orders the vocabulary:
   * its {@code held} most likely tokens first (lower index first among equals), then the others in
   * index order; the first token whose cumulative probability exceeds {@code u}.
   */
  static int pureReference(float[] logits, float u, double temperature, int held) {
    Integer[] order = IntStream.range(0, logits.length).boxed().toArray(Integer[]::new);
    Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -logits[i]));
    boolean[] head = new boolean[logits.length];
    List<Integer> walk = new ArrayList<>();
    for (int i = 0; i < held; i++) {
      head[order[i]] = true;
      walk.add(order[i]);
    }
    for (int v = 0; v < logits.length; v++) {
      if (!head[v]) {
        walk.add(v);
      }
    }
    double max = logits[order[0]] / temperature;
    double z = 0;
    for (float x : logits) {
      z += Math.exp(x / temperature - max);
    }
    double cum = 0;
    for (int v : walk) {
      cum += Math.exp(logits[v] / temperature - max) / z;
      if (cum > u) {
        return v;
      }
    }
    return walk.get(walk.size() - 1);
  }

  /**
   * Whether the {@code candidates} most likely tokens hold {@code topP} plus the margin, or at
   * top-p 1 (where the nucleus is the whole vocabulary) more than {@code u}: the draw then falls
   * among them.
   */
  private static boolean fitsAmong(
      float[] logits, float u, double temperature, double topP, int candidates) {
    double[] p = new double[logits.length];
    double max = Double.NEGATIVE_INFINITY;
    for (float x : logits) {
      max = Math.max(max, x / temperature);
    }
    double z = 0;
    for (int i = 0; i < p.length; i++) {
      p[i] = Math.exp(logits[i] / temperature - max);
      z += p[i];
    }
    double[] sorted = p.clone();
    Arrays.sort(sorted); // ascending: the candidates are the last ones
    double mass = 0;
    for (int i = sorted.length - candidates; i < sorted.length; i++) {
      mass += sorted[i] / z;
    }
    return topP >= 1 ? mass > u : mass >= topP + Sampling.FIT_MARGIN;
  }

  @Test
  void configIsValidatedAndPresetsFollowThePaper() {
    assertTrue(
        assertThrows(
                IllegalArgumentException.class, () -> new SamplingConfig(0, true, 1, 1, 0, 0, true))
            .getMessage()
            .contains("maxNewTokens must be >= 1, got 0"));
    assertTrue(
        assertThrows(
                IllegalArgumentException.class,
                () -> new SamplingConfig(4, false, 0, 1, 0, 0, true))
            .getMessage()
            .contains("temperature must be a positive finite number"));
    assertTrue(
        assertThrows(
                IllegalArgumentException.class,
                () -> new SamplingConfig(4, false, 1, 0, 0, 0, true))
            .getMessage()
            .contains("topP must be in (0, 1], got 0.0"));
    assertTrue(
        assertThrows(
                IllegalArgumentException.class,
                () -> new SamplingConfig(4, false, 1, 1, -1, 0, true))
            .getMessage()
            .contains("topK must be >= 0"));
    new SamplingConfig(4, true, 0, 1, 0, 0, true); // greedy needs no temperature
    assertEquals(1.0, SamplingConfig.bestOfN().temperature());
    assertEquals(0.9, SamplingConfig.bestOfN().topP());
    assertEquals(0.7, SamplingConfig.ppo().temperature());
    assertEquals(0.9, SamplingConfig.ppo().topP());
    assertArrayEquals(
        new boolean[] {false, false},
        new boolean[] {SamplingConfig.ppo().greedy(), SamplingConfig.bestOfN().greedy()});
  }
}
