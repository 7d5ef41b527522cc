package dev.rewardensemble.train;

/**
 * Plain-Java, double-precision twin of {@link BradleyTerry}'s loss and its gradient, for checking
 * the graph against numbers one can follow by hand (test code only).
 */
final class BradleyTerryReference {
  private BradleyTerryReference() {}

  /**
   * Plain-Java loss of one head, in double: {@code mean_b softplus(-(rc-rr-margin)) + coef * mean_b
   * (rc+rr)^2}.
   *
   * @param rc {@code [B]}
   * @param rr {@code [B]}
   * @param margin {@code [B]} or {@code null}
   */
  static double lossReference(float[] rc, float[] rr, float[] margin, double centeringCoef) {
    int n = rc.length;
    if (rr.length != n || (margin != null && margin.length != n) || n == 0) {
      throw new IllegalArgumentException("rc, rr and margin need the same non-zero length");
    }
    double bt = 0;
    double center = 0;
    for (int b = 0; b < n; b++) {
      double d = (double) rc[b] - rr[b] - (margin == null ? 0 : margin[b]);
      bt += softplus(-d);
      double sum = (double) rc[b] + rr[b];
      center += sum * sum;
    }
    return bt / n + centeringCoef * center / n;
  }

  /**
   * Plain-Java per-head losses for {@code [B][K]} rewards.
   *
   * @return {@code [K]}
   */
  static double[] lossReference(float[][] rc, float[][] rr, float[] margin, double centeringCoef) {
    int k = rc[0].length;
    double[] out = new double[k];
    for (int h = 0; h < k; h++) {
      out[h] = lossReference(column(rc, h), column(rr, h), margin, centeringCoef);
    }
    return out;
  }

  /**
   * Plain-Java gradient of {@code total} with respect to {@code rChosen} ({@code [B][K]}): {@code
   * (-sigmoid(-d) + 2 coef (rc + rr)) / (B K)}. The gradient with respect to {@code rRejected} is
   * {@code (sigmoid(-d) + 2 coef (rc + rr)) / (B K)}.
   *
   * @param chosen true for {@code d total / d rChosen}, false for {@code d total / d rRejected}
   */
  static double[][] gradReference(
      float[][] rc, float[][] rr, float[] margin, double centeringCoef, boolean chosen) {
    int n = rc.length;
    int k = rc[0].length;
    double[][] out = new double[n][k];
    for (int b = 0; b < n; b++) {
      for (int h = 0; h < k; h++) {
        double d = (double) rc[b][h] - rr[b][h] - (margin == null ? 0 : margin[b]);
        double bt = sigmoid(-d);
        double center = 2 * centeringCoef * ((double) rc[b][h] + rr[b][h]);
        out[b][h] = ((chosen ? -bt : bt) + center) / ((double) n * k);
      }
    }
    return out;
  }

  /** {@code log(1 + exp(x))} without overflow. */
  static double softplus(double x) {
    return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
  }

  private static double sigmoid(double x) {
    return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
  }

  private static float[] column(float[][] m, int h) {
    float[] c = new float[m.length];
    for (int b = 0; b < m.length; b++) {
      c[b] = m[b][h];
    }
    return c;
  }
}
