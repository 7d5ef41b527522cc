package dev.rewardensemble.rl;

/**
 * The KL penalty that keeps the policy near the reference (SFT) model, computed on the host after a
 * rollout, as in TRL's {@code PPOTrainer.compute_rewards}:
 *
 * <pre>
 *   k1[t]       = logp[t] - logpRef[t]
 *   k3[t]       = (exp(logpRef[t] - logp[t]) - 1) - (logpRef[t] - logp[t])        (always &gt;= 0)
 *   reward[t]   = -klCoef * kl[t]                  for every response token (mask 1)
 *   reward[last] += score                          at the last response token of the row
 *   score       = rewardModelScore - missingEosPenalty   when the response did not end with EOS
 * </pre>
 *
 * Shapes: {@code [N][T]} with {@code N} sequences and {@code T} response positions; {@code mask} is
 * 1 on response tokens and 0 on padding, and every row holds at least one response token. Masked
 * positions of the outputs are 0.
 *
 * <p>The coefficient comes from a {@link KlController}: {@link FixedKlController} or Ziegler et
 * al.'s {@link AdaptiveKlController}, updated once per rollout with the mean sequence KL.
 */
public final class KlPenalty {
  private KlPenalty() {}

  /** Per-token KL estimators (Schulman, "Approximating KL divergence"). */
  public enum Estimator {
    /** {@code logp - logpRef}: unbiased, can be negative per token. */
    K1,
    /**
     * {@code (r - 1) - log r} with {@code r = exp(logpRef - logp)}: unbiased and never negative.
     */
    K3;

    /** The estimate for one token. */
    public double of(double logp, double logpRef) {
      return this == K1 ? k1(logp, logpRef) : k3(logp, logpRef);
    }
  }

  /** {@code logp - logpRef}. */
  public static double k1(double logp, double logpRef) {
    return logp - logpRef;
  }

  /**
   * {@code (exp(logpRef - logp) - 1) - (logpRef - logp)}, computed with {@code expm1} for accuracy
   * near 0.
   */
  public static double k3(double logp, double logpRef) {
    double d = logpRef - logp;
    return Math.expm1(d) - d;
  }

  /**
   * Per-token KL on response tokens.
   *
   * @param logp policy log-probs of the sampled tokens, {@code [N][T]}
   * @param logpRef reference-model log-probs of the same tokens, {@code [N][T]}
   * @param mask response mask, {@code [N][T]}
   * @return {@code [N][T]}, 0 where {@code mask} is 0
   */
  public static double[][] perTokenKl(
      double[][] logp, double[][] logpRef, double[][] mask, Estimator estimator) {
    checkSameShape("logpRef", logpRef, logp);
    checkSameShape("mask", mask, logp);
    if (estimator == null) {
      throw new IllegalArgumentException("estimator must be K1 or K3, got null");
    }
    double[][] out = new double[logp.length][];
    for (int n = 0; n < logp.length; n++) {
      out[n] = new double[logp[n].length];
      for (int t = 0; t < logp[n].length; t++) {
        out[n][t] = mask[n][t] == 0 ? 0 : estimator.of(logp[n][t], logpRef[n][t]);
      }
    }
    return out;
  }

  /**
   * Per-token rewards and the KL they were built from.
   *
   * @param rewards {@code -klCoef * kl[t]}, plus the row's score at its last response token, {@code
   *     [N][T]}
   * @param kl per-token KL, {@code [N][T]}
   */
  public record Rewards(double[][] rewards, double[][] kl) {}

  /**
   * Builds per-token rewards: the KL penalty on every response token and the sequence score on the
   * last one.
   *
   * @param logp {@code [N][T]}
   * @param logpRef {@code [N][T]}
   * @param mask {@code [N][T]}; each row needs at least one 1
   * @param scores sequence scores (reward-model output after any missing-EOS penalty), {@code [N]}
   * @param klCoef finite, {@code >= 0}
   * @throws IllegalArgumentException on a shape mismatch, a row without response tokens, or a bad
   *     coefficient
   */
  public static Rewards rewards(
      double[][] logp,
      double[][] logpRef,
      double[][] mask,
      double[] scores,
      double klCoef,
      Estimator estimator) {
    if (!(Double.isFinite(klCoef) && klCoef >= 0)) {
      throw new IllegalArgumentException("klCoef must be finite and >= 0, got " + klCoef);
    }
    if (scores.length != logp.length) {
      throw new IllegalArgumentException(
          "scores has " + scores.length + " rows, logp has " + logp.length);
    }
    double[][] kl = perTokenKl(logp, logpRef, mask, estimator);
    double[][] rewards = new double[kl.length][];
    for (int n = 0; n < kl.length; n++) {
      rewards[n] = new double[kl[n].length];
      for (int t = 0; t < kl[n].length; t++) {
        rewards[n][t] = mask[n][t] == 0 ? 0 : -klCoef * kl[n][t];
      }
      rewards[n][lastResponseToken(mask[n], n)] += scores[n];
    }
    return new Rewards(rewards, kl);
  }

  /** Index of the last position with a non-zero mask in row {@code n}. */
  public static int lastResponseToken(double[] mask, int n) {
    for (int t = mask.length - 1; t >= 0; t--) {
      if (mask[t] != 0) {
        return t;
      }
    }
    throw new IllegalArgumentException("row " + n + " has no response token (mask is all 0)");
  }

  /**
   * TRL's {@code missing_eos_penalty}: subtracts {@code penalty} from the score of each response
   * that did not end with EOS.
   *
   * @param scores {@code [N]}
   * @param endedWithEos {@code [N]}
   * @param penalty finite, {@code >= 0}; 0 returns a copy of {@code scores}
   * @return new scores, {@code [N]}
   */
  public static double[] applyMissingEosPenalty(
      double[] scores, boolean[] endedWithEos, double penalty) {
    if (!(Double.isFinite(penalty) && penalty >= 0)) {
      throw new IllegalArgumentException(
          "missing-EOS penalty must be finite and >= 0, got " + penalty);
    }
    if (endedWithEos.length != scores.length) {
      throw new IllegalArgumentException(
          "endedWithEos has " + endedWithEos.length + " entries, scores has " + scores.length);
    }
    double[] out = scores.clone();
    for (int n = 0; n < out.length; n++) {
      if (!endedWithEos[n]) {
        out[n] -= penalty;
      }
    }
    return out;
  }

  /**
   * KL of each sequence: the sum of its per-token KL.
   *
   * @param kl {@code [N][T]} (masked positions already 0)
   * @return {@code [N]}
   */
  public static double[] sequenceKl(double[][] kl) {
    double[] out = new double[kl.length];
    for (int n = 0; n < kl.length; n++) {
      for (double x : kl[n]) {
        out[n] += x;
      }
    }
    return out;
  }

  /** Mean over sequences of {@link #sequenceKl}: the value to feed {@link KlController#update}. */
  public static double meanSequenceKl(double[][] kl) {
    if (kl.length == 0) {
      throw new IllegalArgumentException("kl has no rows");
    }
    double sum = 0;
    for (double x : sequenceKl(kl)) {
      sum += x;
    }
    return sum / kl.length;
  }

  /** Source of the KL coefficient, updated once per rollout. Not thread-safe. */
  public sealed interface KlController permits FixedKlController, AdaptiveKlController {
    /** The coefficient to use for the next rollout. */
    double coef();

    /**
     * Reports the rollout's mean sequence KL.
     *
     * @param currentKl mean KL per sequence of the rollout (nats), finite
     * @param nSteps samples in the rollout (TRL passes its batch size)
     */
    void update(double currentKl, int nSteps);

    /** Sets the coefficient from a checkpoint (a fixed controller checks it is unchanged). */
    void restore(double coef);
  }

  /** A constant coefficient; {@link #update} does nothing. */
  public static final class FixedKlController implements KlController {
    private final double coef;

    public FixedKlController(double coef) {
      if (!(Double.isFinite(coef) && coef >= 0)) {
        throw new IllegalArgumentException("KL coefficient must be finite and >= 0, got " + coef);
      }
      this.coef = coef;
    }

    @Override
    public double coef() {
      return coef;
    }

    @Override
    public void restore(double c) {
      if (c != coef) {
        throw new IllegalArgumentException(
            "checkpoint KL coefficient " + c + " differs from the fixed " + coef);
      }
    }

    @Override
    public void update(double currentKl, int nSteps) {}
  }

  /**
   * Ziegler et al. (2019)'s adaptive coefficient, as TRL's {@code AdaptiveKLController}:
   *
   * <pre>
   *   error = clip(currentKl / target - 1, -0.2, 0.2)
   *   coef *= 1 + error * nSteps / horizon
   * </pre>
   *
   * The coefficient moves by at most 20% per {@code horizon} samples; keep {@code nSteps} well
   * below {@code horizon} (TRL: 10000 against batches of 64-512).
   */
  public static final class AdaptiveKlController implements KlController {
    /** Bound of the proportional error. */
    public static final double MAX_ERROR = 0.2;

    private final double target;
    private final int horizon;
    private double coef;

    public AdaptiveKlController(double initCoef, double target, int horizon) {
      if (!(Double.isFinite(initCoef) && initCoef >= 0)) {
        throw new IllegalArgumentException(
            "initial KL coefficient must be finite and >= 0, got " + initCoef);
      }
      if (!(Double.isFinite(target) && target > 0)) {
        throw new IllegalArgumentException("KL target must be finite and > 0, got " + target);
      }
      if (horizon < 1) {
        throw new IllegalArgumentException("KL horizon must be >= 1, got " + horizon);
      }
      this.coef = initCoef;
      this.target = target;
      this.horizon = horizon;
    }

    @Override
    public double coef() {
      return coef;
    }

    @Override
    public void restore(double c) {
      if (!(Double.isFinite(c) && c >= 0)) {
        throw new IllegalArgumentException(
            "checkpoint KL coefficient must be finite and >= 0, got " + c);
      }
      coef = c;
    }

    /** The clipped proportional error for {@code currentKl}. */
    public double error(double currentKl) {
      return Math.max(-MAX_ERROR, Math.min(MAX_ERROR, currentKl / target - 1));
    }

    @Override
    public void update(double currentKl, int nSteps) {
      if (!Double.isFinite(currentKl)) {
        throw new IllegalArgumentException("current KL must be finite, got " + currentKl);
      }
      if (nSteps < 0) {
        throw new IllegalArgumentException("nSteps must be >= 0, got " + nSteps);
      }
      coef *= 1 + error(currentKl) * nSteps / horizon;
    }

    public double target() {
      return target;
    }

    public int horizon() {
      return horizon;
    }
  }

  private static void checkSameShape(String name, double[][] x, double[][] like) {
    if (x.length != like.length) {
      throw new IllegalArgumentException(
          name + " has " + x.length + " rows, logp has " + like.length);
    }
    for (int n = 0; n < x.length; n++) {
      if (x[n].length != like[n].length) {
        throw new IllegalArgumentException(
            name + " row " + n + " has length " + x[n].length + ", logp row has " + like[n].length);
      }
    }
  }
}
