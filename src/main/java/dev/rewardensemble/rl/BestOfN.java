package dev.rewardensemble.rl;

import java.util.Arrays;

/**
 * Best-of-n selection and its unbiased evaluation from a fixed pool.
 *
 * <p>Generating n samples per prompt for every n is wasteful and noisy; instead a pool of m >= n
 * candidates is generated once, and the expected outcome of Best-of-n is computed exactly over all
 * C(m, n) subsets of the pool (Coste et al. 2023, order statistics): sorting the candidates by the
 * selection score, the candidate of rank j (1-based, ascending) is the best of a uniformly random
 * n-subset with probability {@code C(j-1, n-1) / C(m, n)}.
 */
public final class BestOfN {
  private BestOfN() {}

  /** Index of the highest score (the first one on ties). */
  public static int argmax(double[] scores) {
    if (scores.length == 0) {
      throw new IllegalArgumentException("no candidates");
    }
    int best = 0;
    for (int i = 1; i < scores.length; i++) {
      if (scores[i] > scores[best]) {
        best = i;
      }
    }
    return best;
  }

  /** The analytic KL divergence of Best-of-n from the sampling policy: {@code log n - (n-1)/n}. */
  public static double kl(int n) {
    if (n < 1) {
      throw new IllegalArgumentException("n must be >= 1, got " + n);
    }
    return Math.log(n) - (n - 1.0) / n;
  }

  /**
   * Probability that the candidate of each ascending rank (0-based) is the best of a uniformly
   * random n-subset of m candidates: {@code C(j, n-1) / C(m, n)} for rank j.
   */
  public static double[] rankWeights(int m, int n) {
    return weights(m, n).clone();
  }

  /**
   * The rank weights of the last few pool sizes and n, shared (never modified): an evaluation asks
   * for the same few (m, n) for every prompt, curve and model, and each costs O(m^2) logarithms.
   */
  private static final java.util.Map<Long, double[]> WEIGHTS =
      java.util.Collections.synchronizedMap(
          new java.util.LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(java.util.Map.Entry<Long, double[]> e) {
              return size() > 64;
            }
          });

  private static double[] weights(int m, int n) {
    if (n < 1 || n > m) {
      throw new IllegalArgumentException("need 1 <= n <= pool size " + m + ", got n = " + n);
    }
    return WEIGHTS.computeIfAbsent(((long) m << 32) | n, k -> computeWeights(m, n));
  }

  private static double[] computeWeights(int m, int n) {
    double[] w = new double[m];
    // log C(j, n-1) - log C(m, n), from sums of logarithms (so no factorial overflows).
    double logDenominator = logChoose(m, n);
    for (int j = n - 1; j < m; j++) {
      w[j] = Math.exp(logChoose(j, n - 1) - logDenominator);
    }
    return w;
  }

  /**
   * Expected {@code value} of the candidate that Best-of-n picks by {@code select}, over all
   * n-subsets of the pool. Ties in {@code select} are broken by candidate index (earlier wins, as
   * {@link #argmax} does).
   */
  public static double expected(double[] select, double[] value, int n) {
    return expected(ranking(select), value, n);
  }

  /**
   * The candidates in ascending order of {@code select}, among equal scores the later index first
   * (so that the earlier one wins, as {@link #argmax} does): sort once, then take {@link
   * #expected(int[], double[], int)} for every value and n.
   */
  public static int[] ranking(double[] select) {
    int m = select.length;
    Integer[] order = new Integer[m];
    for (int i = 0; i < m; i++) {
      order[i] = i;
    }
    Arrays.sort(
        order,
        (a, b) ->
            select[a] != select[b] ? Double.compare(select[a], select[b]) : Integer.compare(b, a));
    int[] out = new int[m];
    for (int i = 0; i < m; i++) {
      out[i] = order[i];
    }
    return out;
  }

  /**
   * As {@link #expected(double[], double[], int)}, with the candidates ranked by {@link #ranking}.
   */
  public static double expected(int[] ranking, double[] value, int n) {
    int m = ranking.length;
    if (value.length != m) {
      throw new IllegalArgumentException("select has " + m + " candidates, value " + value.length);
    }
    double[] w = weights(m, n);
    double e = 0;
    for (int j = 0; j < m; j++) {
      e += w[j] * value[ranking[j]];
    }
    return e;
  }

  private static double logChoose(int a, int b) {
    if (b < 0 || b > a) {
      return Double.NEGATIVE_INFINITY;
    }
    return logFactorial(a) - logFactorial(b) - logFactorial(a - b);
  }

  private static double logFactorial(int n) {
    double s = 0;
    for (int i = 2; i <= n; i++) {
      s += Math.log(i);
    }
    return s;
  }
}
