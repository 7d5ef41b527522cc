package dev.rewardensemble.rl;

/**
 * Generalised advantage estimation (Schulman et al. 2016) over the response tokens of a rollout, on
 * the host between rollouts:
 *
 * <pre>
 *   delta[t] = r[t] + gamma * V[t+1] - V[t]          V after the last response token = 0
 *   A[t]     = delta[t] + gamma * lambda * A[t+1]     computed right to left
 *   R[t]     = A[t] + V[t]                            (the value targets)
 * </pre>
 *
 * Positions run over the tokens whose mask is non-zero, in order; "t+1" is the next such token, so
 * both left- and right-padded rows work. Outputs are 0 at masked positions. Shapes: one response
 * {@code [T]}, or a batch {@code [N][T]}.
 *
 * <p>{@link #whiten} normalises advantages over the masked tokens of the whole batch, as TRL's
 * {@code masked_whiten} (unbiased variance, epsilon 1e-8 inside the square root).
 */
public final class Gae {
  private Gae() {}

  /** Variance floor added before the square root when whitening. */
  public static final double WHITEN_EPS = 1e-8;

  /**
   * Advantages and returns of one response.
   *
   * @param advantages {@code [T]}
   * @param returns {@code advantages + values}, {@code [T]}
   */
  public record Result(double[] advantages, double[] returns) {}

  /**
   * Advantages and returns of a batch.
   *
   * @param advantages {@code [N][T]}
   * @param returns {@code [N][T]}
   */
  public record Batch(double[][] advantages, double[][] returns) {}

  /**
   * GAE of one response.
   *
   * @param rewards per-token rewards, {@code [T]}
   * @param values value estimates at each token, {@code [T]}
   * @param mask response mask, {@code [T]} (non-zero = response token)
   * @param gamma discount in {@code [0, 1]}
   * @param lambda GAE lambda in {@code [0, 1]}
   */
  public static Result compute(
      double[] rewards, double[] values, double[] mask, double gamma, double lambda) {
    checkCoefficients(gamma, lambda);
    int len = rewards.length;
    if (values.length != len || mask.length != len) {
      throw new IllegalArgumentException(
          "rewards, values and mask need the same length, got "
              + len
              + ", "
              + values.length
              + ", "
              + mask.length);
    }
    double[] adv = new double[len];
    double[] ret = new double[len];
    double nextValue = 0; // V after the last response token
    double nextAdv = 0;
    for (int t = len - 1; t >= 0; t--) {
      if (mask[t] == 0) {
        continue;
      }
      double delta = rewards[t] + gamma * nextValue - values[t];
      adv[t] = delta + gamma * lambda * nextAdv;
      ret[t] = adv[t] + values[t];
      nextValue = values[t];
      nextAdv = adv[t];
    }
    return new Result(adv, ret);
  }

  /**
   * GAE of each row of a batch; see {@link #compute(double[], double[], double[], double, double)}.
   */
  public static Batch compute(
      double[][] rewards, double[][] values, double[][] mask, double gamma, double lambda) {
    int n = rewards.length;
    if (values.length != n || mask.length != n) {
      throw new IllegalArgumentException(
          "rewards, values and mask need the same number of rows, got "
              + n
              + ", "
              + values.length
              + ", "
              + mask.length);
    }
    double[][] adv = new double[n][];
    double[][] ret = new double[n][];
    for (int i = 0; i < n; i++) {
      try {
        Result r = compute(rewards[i], values[i], mask[i], gamma, lambda);
        adv[i] = r.advantages();
        ret[i] = r.returns();
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("row " + i + ": " + e.getMessage(), e);
      }
    }
    return new Batch(adv, ret);
  }

  /**
   * Whitens {@code x} over its masked tokens: {@code (x - mean) / sqrt(var + 1e-8)} with the
   * unbiased variance; with {@code shiftMean = false} the mean is added back (only the scale
   * changes). Masked positions of the result are 0.
   *
   * @param x {@code [N][T]}
   * @param mask {@code [N][T]}, at least two non-zero entries
   * @throws IllegalArgumentException if fewer than two tokens are unmasked (the variance is
   *     undefined)
   */
  public static double[][] whiten(double[][] x, double[][] mask, boolean shiftMean) {
    if (mask.length != x.length) {
      throw new IllegalArgumentException("mask has " + mask.length + " rows, x has " + x.length);
    }
    long count = 0;
    double sum = 0;
    for (int n = 0; n < x.length; n++) {
      if (mask[n].length != x[n].length) {
        throw new IllegalArgumentException(
            "mask row " + n + " has length " + mask[n].length + ", x row has " + x[n].length);
      }
      for (int t = 0; t < x[n].length; t++) {
        if (mask[n][t] != 0) {
          count++;
          sum += x[n][t];
        }
      }
    }
    if (count < 2) {
      throw new IllegalArgumentException(
          "whitening needs at least 2 unmasked tokens to estimate a variance, got " + count);
    }
    double mean = sum / count;
    double sq = 0;
    for (int n = 0; n < x.length; n++) {
      for (int t = 0; t < x[n].length; t++) {
        if (mask[n][t] != 0) {
          double d = x[n][t] - mean;
          sq += d * d;
        }
      }
    }
    double var = sq / (count - 1); // unbiased, as torch.var / TRL masked_var
    double scale = 1 / Math.sqrt(var + WHITEN_EPS);
    double[][] out = new double[x.length][];
    for (int n = 0; n < x.length; n++) {
      out[n] = new double[x[n].length];
      for (int t = 0; t < x[n].length; t++) {
        if (mask[n][t] != 0) {
          double w = (x[n][t] - mean) * scale;
          out[n][t] = shiftMean ? w : w + mean;
        }
      }
    }
    return out;
  }

  /** {@link #whiten(double[][], double[][], boolean)} of a single row {@code [T]}. */
  public static double[] whiten(double[] x, double[] mask, boolean shiftMean) {
    return whiten(new double[][] {x}, new double[][] {mask}, shiftMean)[0];
  }

  private static void checkCoefficients(double gamma, double lambda) {
    if (!(gamma >= 0 && gamma <= 1)) {
      throw new IllegalArgumentException("gamma must be in [0, 1], got " + gamma);
    }
    if (!(lambda >= 0 && lambda <= 1)) {
      throw new IllegalArgumentException("lambda must be in [0, 1], got " + lambda);
    }
  }
}
