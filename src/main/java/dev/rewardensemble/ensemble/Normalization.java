package dev.rewardensemble.ensemble;

import java.util.List;

/**
 * Per-member standardisation: member k's reward becomes {@code (r - mean[k]) / std[k]}, with mean
 * and std measured on a reference set (by default the training responses). Without it a member with
 * a larger scale dominates the ensemble's mean and std.
 */
public record Normalization(float[] mean, float[] std, int referenceSize) {
  public Normalization {
    if (mean.length != std.length) {
      throw new IllegalArgumentException(
          "normalization: " + mean.length + " means but " + std.length + " stds");
    }
    for (int k = 0; k < std.length; k++) {
      if (!(std[k] > 0) || !Float.isFinite(mean[k])) {
        throw new IllegalArgumentException(
            "normalization of member "
                + k
                + ": std must be > 0 and mean finite, got mean "
                + mean[k]
                + ", std "
                + std[k]);
      }
    }
  }

  /** Mean and population std of each member's rewards {@code [N][K]}. */
  public static Normalization fit(List<float[]> rewards) {
    if (rewards.isEmpty()) {
      throw new IllegalArgumentException("normalization needs at least one reference sequence");
    }
    int k = rewards.get(0).length;
    double[] sum = new double[k];
    double[] sq = new double[k];
    for (float[] r : rewards) {
      for (int m = 0; m < k; m++) {
        sum[m] += r[m];
        sq[m] += (double) r[m] * r[m];
      }
    }
    float[] mean = new float[k];
    float[] std = new float[k];
    int n = rewards.size();
    for (int m = 0; m < k; m++) {
      double mu = sum[m] / n;
      mean[m] = (float) mu;
      std[m] = (float) Math.max(Math.sqrt(Math.max(sq[m] / n - mu * mu, 0)), 1e-6);
    }
    return new Normalization(mean, std, n);
  }

  public float[] apply(float[] members) {
    if (members.length != mean.length) {
      throw new IllegalArgumentException(
          "normalization is for " + mean.length + " members, got " + members.length);
    }
    float[] out = new float[members.length];
    for (int k = 0; k < out.length; k++) {
      out[k] = (members[k] - mean[k]) / std[k];
    }
    return out;
  }
}
