package dev.rewardensemble.rl;

/**
 * Hyperparameters of PPO fine-tuning against a (possibly ensembled) reward model, validated on
 * construction. {@link #defaults()} are the paper's PPO settings (Table 4) completed with
 * AlpacaFarm's: rollout batch 64, step batch 32, 2 epochs per rollout, lr 1e-5 with 5 warmup steps,
 * KL coefficient 0.02 (k1 estimator, fixed), gamma 1, lambda 0.95, clip range 0.2 for policy and
 * value, value coefficient 0.1, whitened advantages, sampling at temperature 0.7 / top-p 0.9, 300
 * new tokens. Built by name with {@link #builder()} (from the defaults) or {@link #toBuilder()}.
 *
 * @param rolloutBatch prompts sampled per rollout (one PPO "batch"), {@code >= 1}
 * @param stepBatch sequences per optimizer step, {@code >= 1}, divides {@code rolloutBatch}
 * @param epochsPerRollout optimisation passes over each rollout, {@code >= 1}
 * @param lr peak learning rate, finite and {@code > 0}
 * @param warmupSteps optimizer steps of linear warmup, {@code >= 0}
 * @param klCoef initial (or fixed) coefficient of the per-token KL penalty, finite and {@code >= 0}
 * @param klEstimator per-token KL estimator between policy and reference ({@link
 *     KlPenalty.Estimator#K1} or {@link KlPenalty.Estimator#K3})
 * @param adaptiveKl the adaptive KL controller's target and horizon, or {@code null} for a fixed
 *     coefficient (the default)
 * @param gamma discount, in {@code [0, 1]}
 * @param lambda GAE lambda, in {@code [0, 1]}
 * @param clipRange PPO ratio clip epsilon, finite and {@code > 0}
 * @param valueClipRange value-prediction clip epsilon around the rollout values, finite and {@code
 *     > 0}
 * @param valueCoef weight of the value loss in the total loss, finite and {@code >= 0}
 * @param whitenAdvantages whiten advantages over the rollout's response tokens before the update
 * @param missingEosPenalty subtracted from the score of a response that ended without EOS, finite
 *     and {@code >= 0} (0 = off)
 * @param temperature sampling temperature, finite and {@code > 0}; log-probs are computed from
 *     logits divided by it
 * @param topP nucleus-sampling mass, in {@code (0, 1]}
 * @param maxNewTokens response length limit, {@code >= 1}
 * @param seed sampling and shuffling seed
 */
public record PpoConfig(
    int rolloutBatch,
    int stepBatch,
    int epochsPerRollout,
    double lr,
    int warmupSteps,
    double klCoef,
    KlPenalty.Estimator klEstimator,
    AdaptiveKl adaptiveKl,
    double gamma,
    double lambda,
    double clipRange,
    double valueClipRange,
    double valueCoef,
    boolean whitenAdvantages,
    double missingEosPenalty,
    double temperature,
    double topP,
    int maxNewTokens,
    long seed) {

  /**
   * Settings of the adaptive KL controller (Ziegler et al. 2019).
   *
   * @param target target KL per sequence (nats), finite and {@code > 0}
   * @param horizon controller horizon in samples, {@code >= 1}
   */
  public record AdaptiveKl(double target, int horizon) {
    /** TRL's {@code target=6, horizon=10000}. */
    public static final AdaptiveKl TRL_DEFAULT = new AdaptiveKl(6.0, 10000);

    public AdaptiveKl {
      check(
          Double.isFinite(target) && target > 0,
          "adaptive KL target must be finite and > 0, got " + target);
      check(horizon >= 1, "adaptive KL horizon must be >= 1, got " + horizon);
    }
  }

  public PpoConfig {
    check(rolloutBatch >= 1, "rollout batch must be >= 1, got " + rolloutBatch);
    check(stepBatch >= 1, "step batch must be >= 1, got " + stepBatch);
    check(
        rolloutBatch % stepBatch == 0,
        "step batch " + stepBatch + " must divide rollout batch " + rolloutBatch);
    check(epochsPerRollout >= 1, "epochs per rollout must be >= 1, got " + epochsPerRollout);
    check(Double.isFinite(lr) && lr > 0, "learning rate must be finite and > 0, got " + lr);
    check(warmupSteps >= 0, "warmup steps must be >= 0, got " + warmupSteps);
    check(
        Double.isFinite(klCoef) && klCoef >= 0,
        "KL coefficient must be finite and >= 0, got " + klCoef);
    check(klEstimator != null, "KL estimator must be K1 or K3, got null");
    check(gamma >= 0 && gamma <= 1, "gamma must be in [0, 1], got " + gamma);
    check(lambda >= 0 && lambda <= 1, "lambda must be in [0, 1], got " + lambda);
    check(
        Double.isFinite(clipRange) && clipRange > 0,
        "clip range must be finite and > 0, got " + clipRange);
    check(
        Double.isFinite(valueClipRange) && valueClipRange > 0,
        "value clip range must be finite and > 0, got " + valueClipRange);
    check(
        Double.isFinite(valueCoef) && valueCoef >= 0,
        "value coefficient must be finite and >= 0, got " + valueCoef);
    check(
        Double.isFinite(missingEosPenalty) && missingEosPenalty >= 0,
        "missing-EOS penalty must be finite and >= 0 (0 = off), got " + missingEosPenalty);
    check(
        Double.isFinite(temperature) && temperature > 0,
        "temperature must be finite and > 0, got " + temperature);
    check(topP > 0 && topP <= 1, "top-p must be in (0, 1], got " + topP);
    check(maxNewTokens >= 1, "max new tokens must be >= 1, got " + maxNewTokens);
  }

  private static void check(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }

  /** The paper's PPO settings (Table 4) with AlpacaFarm's for the rest; fixed KL, seed 42. */
  public static PpoConfig defaults() {
    return new PpoConfig(
        64,
        32,
        2,
        1e-5,
        5,
        0.02,
        KlPenalty.Estimator.K1,
        null,
        1.0,
        0.95,
        0.2,
        0.2,
        0.1,
        true,
        0.0,
        0.7,
        0.9,
        300,
        42);
  }

  /** Whether the KL coefficient adapts ({@link #adaptiveKl} is set). */
  public boolean hasAdaptiveKl() {
    return adaptiveKl != null;
  }

  /** A new KL controller starting at {@link #klCoef}: adaptive when configured, fixed otherwise. */
  public KlPenalty.KlController newKlController() {
    return adaptiveKl == null
        ? new KlPenalty.FixedKlController(klCoef)
        : new KlPenalty.AdaptiveKlController(klCoef, adaptiveKl.target(), adaptiveKl.horizon());
  }

  /** Optimizer steps per rollout: {@code epochsPerRollout * rolloutBatch / stepBatch}. */
  public int stepsPerRollout() {
    return epochsPerRollout * (rolloutBatch / stepBatch);
  }

  /** A builder starting from {@link #defaults()}. */
  public static Builder builder() {
    return defaults().toBuilder();
  }

  /** A builder starting from these settings. */
  public Builder toBuilder() {
    return new Builder(this);
  }

  /** The same settings with another seed. */
  public PpoConfig withSeed(long s) {
    return toBuilder().seed(s).build();
  }

  /**
   * The same settings with another KL coefficient, estimator and controller ({@code null} = fixed).
   */
  public PpoConfig withKl(double coef, KlPenalty.Estimator estimator, AdaptiveKl adaptive) {
    return toBuilder().klCoef(coef).klEstimator(estimator).adaptiveKl(adaptive).build();
  }

  /** The same settings with other batch sizes and epochs per rollout. */
  public PpoConfig withBatches(int rollout, int step, int epochs) {
    return toBuilder().rolloutBatch(rollout).stepBatch(step).epochsPerRollout(epochs).build();
  }

  /** The same settings with another response length limit. */
  public PpoConfig withMaxNewTokens(int n) {
    return toBuilder().maxNewTokens(n).build();
  }

  /**
   * Named settings for a {@link PpoConfig}, each starting from the configuration the builder was
   * made from; {@link #build()} validates them (as the constructor does).
   */
  public static final class Builder {
    private int rolloutBatch;
    private int stepBatch;
    private int epochsPerRollout;
    private double lr;
    private int warmupSteps;
    private double klCoef;
    private KlPenalty.Estimator klEstimator;
    private AdaptiveKl adaptiveKl;
    private double gamma;
    private double lambda;
    private double clipRange;
    private double valueClipRange;
    private double valueCoef;
    private boolean whitenAdvantages;
    private double missingEosPenalty;
    private double temperature;
    private double topP;
    private int maxNewTokens;
    private long seed;

    private Builder(PpoConfig c) {
      rolloutBatch = c.rolloutBatch;
      stepBatch = c.stepBatch;
      epochsPerRollout = c.epochsPerRollout;
      lr = c.lr;
      warmupSteps = c.warmupSteps;
      klCoef = c.klCoef;
      klEstimator = c.klEstimator;
      adaptiveKl = c.adaptiveKl;
      gamma = c.gamma;
      lambda = c.lambda;
      clipRange = c.clipRange;
      valueClipRange = c.valueClipRange;
      valueCoef = c.valueCoef;
      whitenAdvantages = c.whitenAdvantages;
      missingEosPenalty = c.missingEosPenalty;
      temperature = c.temperature;
      topP = c.topP;
      maxNewTokens = c.maxNewTokens;
      seed = c.seed;
    }

    public Builder rolloutBatch(int v) {
      rolloutBatch = v;
      return this;
    }

    public Builder stepBatch(int v) {
      stepBatch = v;
      return this;
    }

    public Builder epochsPerRollout(int v) {
      epochsPerRollout = v;
      return this;
    }

    public Builder lr(double v) {
      lr = v;
      return this;
    }

    public Builder warmupSteps(int v) {
      warmupSteps = v;
      return this;
    }

    public Builder klCoef(double v) {
      klCoef = v;
      return this;
    }

    public Builder klEstimator(KlPenalty.Estimator v) {
      klEstimator = v;
      return this;
    }

    public Builder adaptiveKl(AdaptiveKl v) {
      adaptiveKl = v;
      return this;
    }

    public Builder gamma(double v) {
      gamma = v;
      return this;
    }

    public Builder lambda(double v) {
      lambda = v;
      return this;
    }

    public Builder clipRange(double v) {
      clipRange = v;
      return this;
    }

    public Builder valueClipRange(double v) {
      valueClipRange = v;
      return this;
    }

    public Builder valueCoef(double v) {
      valueCoef = v;
      return this;
    }

    public Builder whitenAdvantages(boolean v) {
      whitenAdvantages = v;
      return this;
    }

    public Builder missingEosPenalty(double v) {
      missingEosPenalty = v;
      return this;
    }

    public Builder temperature(double v) {
      temperature = v;
      return this;
    }

    public Builder topP(double v) {
      topP = v;
      return this;
    }

    public Builder maxNewTokens(int v) {
      maxNewTokens = v;
      return this;
    }

    public Builder seed(long v) {
      seed = v;
      return this;
    }

    /** The configuration, validated. */
    public PpoConfig build() {
      return new PpoConfig(
          rolloutBatch,
          stepBatch,
          epochsPerRollout,
          lr,
          warmupSteps,
          klCoef,
          klEstimator,
          adaptiveKl,
          gamma,
          lambda,
          clipRange,
          valueClipRange,
          valueCoef,
          whitenAdvantages,
          missingEosPenalty,
          temperature,
          topP,
          maxNewTokens,
          seed);
    }
  }
}
