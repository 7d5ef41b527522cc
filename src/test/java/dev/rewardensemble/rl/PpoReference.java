package dev.rewardensemble.rl;

/**
 * Plain-Java, double-precision twins of {@link PpoLosses}, for checking the graph against numbers
 * one can follow by hand (test code only). Same shapes ({@code [N][T]}, logits {@code [N][T][V]})
 * and the same masking rule: values at masked positions are ignored, outputs there are 0.
 */
public final class PpoReference {
  private PpoReference() {}

  /** {@code log_softmax} of one row, stable for large logits. */
  public static double[] logSoftmax(double[] logits) {
    double max = Double.NEGATIVE_INFINITY;
    for (double x : logits) {
      max = Math.max(max, x);
    }
    double sum = 0;
    for (double x : logits) {
      sum += Math.exp(x - max);
    }
    double logZ = max + Math.log(sum);
    double[] out = new double[logits.length];
    for (int v = 0; v < logits.length; v++) {
      out[v] = logits[v] - logZ;
    }
    return out;
  }

  /**
   * Log-probability of each given token; 0 where masked or where the id is outside {@code [0, V)}.
   *
   * @param logits {@code [N][T][V]}
   * @param tokens {@code [N][T]}
   * @param mask {@code [N][T]}
   * @return {@code [N][T]}
   */
  public static double[][] tokenLogProbs(double[][][] logits, int[][] tokens, double[][] mask) {
    double[][] out = new double[logits.length][];
    for (int n = 0; n < logits.length; n++) {
      out[n] = new double[logits[n].length];
      for (int t = 0; t < logits[n].length; t++) {
        int id = tokens[n][t];
        if (mask[n][t] != 0 && id >= 0 && id < logits[n][t].length) {
          out[n][t] = logSoftmax(logits[n][t])[id] * mask[n][t];
        }
      }
    }
    return out;
  }

  /**
   * Entropy {@code -sum_v p log p} of each token's distribution, {@code [N][T]}, 0 where masked.
   */
  public static double[][] entropy(double[][][] logits, double[][] mask) {
    double[][] out = new double[logits.length][];
    for (int n = 0; n < logits.length; n++) {
      out[n] = new double[logits[n].length];
      for (int t = 0; t < logits[n].length; t++) {
        if (mask[n][t] != 0) {
          double h = 0;
          for (double lp : logSoftmax(logits[n][t])) {
            h -= Math.exp(lp) * lp;
          }
          out[n][t] = h * mask[n][t];
        }
      }
    }
    return out;
  }

  /** {@code sum(x * mask) / max(sum(mask), 1)}; masked entries of {@code x} are skipped. */
  public static double maskedMean(double[][] x, double[][] mask) {
    double sum = 0;
    double count = 0;
    for (int n = 0; n < x.length; n++) {
      for (int t = 0; t < x[n].length; t++) {
        if (mask[n][t] != 0) {
          sum += x[n][t] * mask[n][t];
          count += mask[n][t];
        }
      }
    }
    return sum / Math.max(count, 1);
  }

  /** The clipped policy loss and its diagnostics; see {@link PpoLosses.PolicyLoss}. */
  public record PolicyLoss(double loss, double clipFraction, double approxKl, double approxKlK3) {}

  /** {@link PpoLosses#policyLoss} in double. */
  public static PolicyLoss policyLoss(
      double[][] logp,
      double[][] oldLogp,
      double[][] advantages,
      double[][] mask,
      double clipRange) {
    int n = logp.length;
    double[][] perToken = new double[n][];
    double[][] clipped = new double[n][];
    double[][] halfSq = new double[n][];
    double[][] k3 = new double[n][];
    for (int i = 0; i < n; i++) {
      int len = logp[i].length;
      perToken[i] = new double[len];
      clipped[i] = new double[len];
      halfSq[i] = new double[len];
      k3[i] = new double[len];
      for (int t = 0; t < len; t++) {
        if (mask[i][t] == 0) {
          continue;
        }
        double d = logp[i][t] - oldLogp[i][t];
        double ratio = Math.exp(d);
        double a = advantages[i][t];
        double unclippedLoss = -a * ratio;
        double clippedLoss = -a * clip(ratio, 1 - clipRange, 1 + clipRange);
        perToken[i][t] = Math.max(unclippedLoss, clippedLoss);
        clipped[i][t] = clippedLoss > unclippedLoss ? 1 : 0;
        halfSq[i][t] = 0.5 * d * d;
        k3[i][t] = (ratio - 1) - d;
      }
    }
    return new PolicyLoss(
        maskedMean(perToken, mask),
        maskedMean(clipped, mask),
        maskedMean(halfSq, mask),
        maskedMean(k3, mask));
  }

  /**
   * Analytic gradient of the policy loss w.r.t. {@code logp}: {@code -A * ratio * mask / count}
   * where the unclipped term is the larger one (ties included), 0 where the clipped term wins.
   *
   * @return {@code [N][T]}
   */
  public static double[][] policyLossGradLogp(
      double[][] logp,
      double[][] oldLogp,
      double[][] advantages,
      double[][] mask,
      double clipRange) {
    double count = Math.max(maskSum(mask), 1);
    double[][] out = new double[logp.length][];
    for (int i = 0; i < logp.length; i++) {
      out[i] = new double[logp[i].length];
      for (int t = 0; t < logp[i].length; t++) {
        if (mask[i][t] == 0) {
          continue;
        }
        double ratio = Math.exp(logp[i][t] - oldLogp[i][t]);
        double a = advantages[i][t];
        double unclippedLoss = -a * ratio;
        double clippedLoss = -a * clip(ratio, 1 - clipRange, 1 + clipRange);
        if (unclippedLoss >= clippedLoss) {
          out[i][t] = -a * ratio * mask[i][t] / count;
        }
      }
    }
    return out;
  }

  /**
   * Analytic gradient of the policy loss w.r.t. the logits, through {@link #tokenLogProbs}: {@code
   * dL/dlogp[n,t] * (onehot(token) - softmax(logits[n,t]))}.
   *
   * @return {@code [N][T][V]}
   */
  public static double[][][] policyLossGradLogits(
      double[][][] logits,
      int[][] tokens,
      double[][] oldLogp,
      double[][] advantages,
      double[][] mask,
      double clipRange) {
    double[][] logp = tokenLogProbs(logits, tokens, mask);
    double[][] gLogp = policyLossGradLogp(logp, oldLogp, advantages, mask, clipRange);
    double[][][] out = new double[logits.length][][];
    for (int n = 0; n < logits.length; n++) {
      out[n] = new double[logits[n].length][];
      for (int t = 0; t < logits[n].length; t++) {
        int vocab = logits[n][t].length;
        out[n][t] = new double[vocab];
        if (gLogp[n][t] == 0) {
          continue;
        }
        double[] lp = logSoftmax(logits[n][t]);
        for (int v = 0; v < vocab; v++) {
          double oneHot = v == tokens[n][t] ? 1 : 0;
          out[n][t][v] = gLogp[n][t] * (oneHot - Math.exp(lp[v]));
        }
      }
    }
    return out;
  }

  /** The clipped value loss and its clip fraction; see {@link PpoLosses.ValueLoss}. */
  public record ValueLoss(double loss, double clipFraction) {}

  /** {@link PpoLosses#valueLoss} in double. */
  public static ValueLoss valueLoss(
      double[][] values,
      double[][] oldValues,
      double[][] returns,
      double[][] mask,
      double clipRange) {
    int n = values.length;
    double[][] perToken = new double[n][];
    double[][] clipped = new double[n][];
    for (int i = 0; i < n; i++) {
      perToken[i] = new double[values[i].length];
      clipped[i] = new double[values[i].length];
      for (int t = 0; t < values[i].length; t++) {
        if (mask[i][t] == 0) {
          continue;
        }
        double v = values[i][t];
        double vOld = oldValues[i][t];
        double r = returns[i][t];
        double unclippedLoss = (v - r) * (v - r);
        double vc = clip(v, vOld - clipRange, vOld + clipRange);
        double clippedLoss = (vc - r) * (vc - r);
        perToken[i][t] = Math.max(unclippedLoss, clippedLoss);
        clipped[i][t] = clippedLoss > unclippedLoss ? 1 : 0;
      }
    }
    return new ValueLoss(0.5 * maskedMean(perToken, mask), maskedMean(clipped, mask));
  }

  /**
   * Analytic gradient of the value loss w.r.t. {@code values}: {@code (v - R) mask / count} where
   * the unclipped error is the larger one (ties included, which covers every {@code v} inside the
   * clip interval), 0 where the clipped error wins ({@code v} outside the interval, clipped value
   * constant).
   *
   * @return {@code [N][T]}
   */
  public static double[][] valueLossGradValues(
      double[][] values,
      double[][] oldValues,
      double[][] returns,
      double[][] mask,
      double clipRange) {
    double count = Math.max(maskSum(mask), 1);
    double[][] out = new double[values.length][];
    for (int i = 0; i < values.length; i++) {
      out[i] = new double[values[i].length];
      for (int t = 0; t < values[i].length; t++) {
        if (mask[i][t] == 0) {
          continue;
        }
        double v = values[i][t];
        double r = returns[i][t];
        double vc = clip(v, oldValues[i][t] - clipRange, oldValues[i][t] + clipRange);
        if ((v - r) * (v - r) >= (vc - r) * (vc - r)) {
          out[i][t] = (v - r) * mask[i][t] / count;
        }
      }
    }
    return out;
  }

  /** {@code policy + valueCoef * value}. */
  public static double total(double policyLoss, double valueLoss, double valueCoef) {
    return policyLoss + valueCoef * valueLoss;
  }

  private static double maskSum(double[][] mask) {
    double sum = 0;
    for (double[] row : mask) {
      for (double m : row) {
        sum += m;
      }
    }
    return sum;
  }

  private static double clip(double x, double lo, double hi) {
    return Math.min(Math.max(x, lo), hi);
  }
}
