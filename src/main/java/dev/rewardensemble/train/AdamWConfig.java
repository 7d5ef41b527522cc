package dev.rewardensemble.train;

/**
 * Hyper-parameters of {@link AdamW} other than the learning rate (which is fed every step).
 *
 * @param beta1 decay of the first moment, in {@code [0, 1)}
 * @param beta2 decay of the second moment, in {@code [0, 1)}
 * @param eps added to the bias-corrected root second moment, finite and {@code > 0}
 * @param weightDecay decoupled weight decay (multiplied by the learning rate), finite and {@code >=
 *     0}
 */
public record AdamWConfig(double beta1, double beta2, double eps, double weightDecay) {

  /** {@code torch.optim.AdamW}'s betas and eps, without weight decay: 0.9 / 0.999 / 1e-8 / 0. */
  public static final AdamWConfig DEFAULT = new AdamWConfig(0.9, 0.999, 1e-8, 0.0);

  public AdamWConfig {
    if (!(beta1 >= 0 && beta1 < 1)) {
      throw new IllegalArgumentException("beta1 must be in [0, 1), got " + beta1);
    }
    if (!(beta2 >= 0 && beta2 < 1)) {
      throw new IllegalArgumentException("beta2 must be in [0, 1), got " + beta2);
    }
    if (!(Double.isFinite(eps) && eps > 0)) {
      throw new IllegalArgumentException("eps must be finite and > 0, got " + eps);
    }
    if (!(Double.isFinite(weightDecay) && weightDecay >= 0)) {
      throw new IllegalArgumentException("weightDecay must be finite and >= 0, got " + weightDecay);
    }
  }

  /** The defaults with the given weight decay. */
  public static AdamWConfig withWeightDecay(double weightDecay) {
    return new AdamWConfig(DEFAULT.beta1, DEFAULT.beta2, DEFAULT.eps, weightDecay);
  }
}
