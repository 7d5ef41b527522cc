package dev.rewardensemble.train;

/**
 * Hyperparameters of Bradley-Terry reward-model training, validated on construction. Defaults are
 * the paper's reward-model settings (Table 2): lr 3e-6, 1 epoch, gradient accumulation 2, warmup
 * ratio 0.03, cosine, weight decay 0, AdamW; {@link #loraDefaults()} are Table 3's (lr 5e-5,
 * constant). Built by name with {@link #builder()} (from the defaults) or {@link #toBuilder()}.
 *
 * @param epochs passes over the training split (used when {@code steps} is 0)
 * @param steps optimizer steps; 0 = {@code epochs * ceil(train pairs / (batchSize * gradAccum))}
 * @param batchSize preference pairs per micro-batch (one forward/backward)
 * @param gradAccum micro-batches per optimizer step
 * @param maxGradNorm global-norm clipping threshold; 0 = off
 * @param evalFraction held-out fraction of the data; 0 = no evaluation split
 * @param evalEvery evaluate every N optimizer steps (0 = only at the end)
 * @param saveEvery checkpoint every N optimizer steps (0 = only at the end)
 * @param keepCheckpoints how many of the newest checkpoints to keep (>= 1)
 * @param centeringCoef coefficient of the reward-centering term {@code mean((r_c + r_r)^2)}
 * @param swa stochastic weight averaging (Izmailov et al. 2018; {@code rme train-rm --swa}): the
 *     fraction of the run's last optimizer steps whose weights are averaged into the saved model,
 *     in {@code [0, 1]}; 0 = off. From the window's first step the learning rate stays at the
 *     schedule's value there ({@link #lr}). Omitted from JSON when 0, so that the fingerprints of
 *     runs made before it still match.
 */
public record TrainConfig(
    int epochs,
    int steps,
    int batchSize,
    int gradAccum,
    double lr,
    double weightDecay,
    Schedule.Kind schedule,
    double warmupRatio,
    double maxGradNorm,
    double evalFraction,
    long seed,
    int evalEvery,
    int saveEvery,
    int keepCheckpoints,
    double centeringCoef,
    @com.fasterxml.jackson.annotation.JsonInclude(
            com.fasterxml.jackson.annotation.JsonInclude.Include.NON_DEFAULT)
        double swa) {

  public TrainConfig {
    check(epochs >= 1, "epochs must be >= 1, got " + epochs);
    check(steps >= 0, "steps must be >= 0, got " + steps);
    check(batchSize >= 1, "batch size must be >= 1, got " + batchSize);
    check(gradAccum >= 1, "grad accumulation must be >= 1, got " + gradAccum);
    check(Double.isFinite(lr) && lr > 0, "learning rate must be > 0, got " + lr);
    check(
        weightDecay >= 0 && weightDecay < 1, "weight decay must be in [0, 1), got " + weightDecay);
    check(schedule != null, "schedule must be cosine or constant");
    check(
        warmupRatio >= 0 && warmupRatio < 1, "warmup ratio must be in [0, 1), got " + warmupRatio);
    check(
        maxGradNorm >= 0 && Double.isFinite(maxGradNorm),
        "max grad norm must be >= 0 (0 = off), got " + maxGradNorm);
    check(
        evalFraction >= 0 && evalFraction < 1,
        "eval fraction must be in [0, 1), got " + evalFraction);
    check(evalEvery >= 0, "eval-every must be >= 0, got " + evalEvery);
    check(saveEvery >= 0, "save-every must be >= 0, got " + saveEvery);
    check(keepCheckpoints >= 1, "keep-checkpoints must be >= 1, got " + keepCheckpoints);
    check(
        centeringCoef >= 0 && Double.isFinite(centeringCoef),
        "centering coefficient must be >= 0, got " + centeringCoef);
    check(swa >= 0 && swa <= 1, "swa must be a fraction of the steps in [0, 1], got " + swa);
  }

  private static void check(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }

  /** The paper's reward-model settings (Table 2), batch size 8, 10% held out. */
  public static TrainConfig defaults() {
    return new TrainConfig(
        1, 0, 8, 2, 3e-6, 0.0, Schedule.Kind.COSINE, 0.03, 1.0, 0.1, 42, 0, 0, 2, 0.0, 0.0);
  }

  /** The paper's LoRA reward-model settings (Table 3). */
  public static TrainConfig loraDefaults() {
    return defaults().toBuilder().lr(5e-5).schedule(Schedule.Kind.CONSTANT).build();
  }

  /** A builder starting from {@link #defaults()}. */
  public static Builder builder() {
    return defaults().toBuilder();
  }

  /** A builder starting from these settings. */
  public Builder toBuilder() {
    return new Builder(this);
  }

  /** The same settings with another seed (data order, head initialisation). */
  public TrainConfig withSeed(long s) {
    return toBuilder().seed(s).build();
  }

  /** The same settings with another learning rate and schedule. */
  public TrainConfig withLr(double newLr, Schedule.Kind newSchedule) {
    return toBuilder().lr(newLr).schedule(newSchedule).build();
  }

  /**
   * Named settings for a {@link TrainConfig}, each starting from the configuration the builder was
   * made from; {@link #build()} validates them (as the constructor does).
   */
  public static final class Builder {
    private int epochs;
    private int steps;
    private int batchSize;
    private int gradAccum;
    private double lr;
    private double weightDecay;
    private Schedule.Kind schedule;
    private double warmupRatio;
    private double maxGradNorm;
    private double evalFraction;
    private long seed;
    private int evalEvery;
    private int saveEvery;
    private int keepCheckpoints;
    private double centeringCoef;
    private double swa;

    private Builder(TrainConfig c) {
      epochs = c.epochs;
      steps = c.steps;
      batchSize = c.batchSize;
      gradAccum = c.gradAccum;
      lr = c.lr;
      weightDecay = c.weightDecay;
      schedule = c.schedule;
      warmupRatio = c.warmupRatio;
      maxGradNorm = c.maxGradNorm;
      evalFraction = c.evalFraction;
      seed = c.seed;
      evalEvery = c.evalEvery;
      saveEvery = c.saveEvery;
      keepCheckpoints = c.keepCheckpoints;
      centeringCoef = c.centeringCoef;
      swa = c.swa;
    }

    public Builder epochs(int v) {
      epochs = v;
      return this;
    }

    public Builder steps(int v) {
      steps = v;
      return this;
    }

    public Builder batchSize(int v) {
      batchSize = v;
      return this;
    }

    public Builder gradAccum(int v) {
      gradAccum = v;
      return this;
    }

    public Builder lr(double v) {
      lr = v;
      return this;
    }

    public Builder weightDecay(double v) {
      weightDecay = v;
      return this;
    }

    public Builder schedule(Schedule.Kind v) {
      schedule = v;
      return this;
    }

    public Builder warmupRatio(double v) {
      warmupRatio = v;
      return this;
    }

    public Builder maxGradNorm(double v) {
      maxGradNorm = v;
      return this;
    }

    public Builder evalFraction(double v) {
      evalFraction = v;
      return this;
    }

    public Builder seed(long v) {
      seed = v;
      return this;
    }

    public Builder evalEvery(int v) {
      evalEvery = v;
      return this;
    }

    public Builder saveEvery(int v) {
      saveEvery = v;
      return this;
    }

    public Builder keepCheckpoints(int v) {
      keepCheckpoints = v;
      return this;
    }

    public Builder centeringCoef(double v) {
      centeringCoef = v;
      return this;
    }

    public Builder swa(double v) {
      swa = v;
      return this;
    }

    /** The configuration, validated. */
    public TrainConfig build() {
      return new TrainConfig(
          epochs,
          steps,
          batchSize,
          gradAccum,
          lr,
          weightDecay,
          schedule,
          warmupRatio,
          maxGradNorm,
          evalFraction,
          seed,
          evalEvery,
          saveEvery,
          keepCheckpoints,
          centeringCoef,
          swa);
    }
  }

  /** Pairs consumed by one optimizer step. */
  public int pairsPerStep() {
    return batchSize * gradAccum;
  }

  /** Optimizer steps of the run for a training split of {@code trainPairs}. */
  public int totalSteps(int trainPairs) {
    if (steps > 0) {
      return steps;
    }
    return epochs * Math.max(1, (trainPairs + pairsPerStep() - 1) / pairsPerStep());
  }

  /** The learning-rate schedule of a run of {@code totalSteps}. */
  public Schedule scheduleFor(int totalSteps) {
    return new Schedule(schedule, lr, warmupRatio, totalSteps);
  }

  /**
   * The first 0-based optimizer step whose weights {@link #swa} averages in a run of {@code
   * totalSteps}: {@code totalSteps - ceil(swa * totalSteps)} (at least one step when on), or {@code
   * totalSteps} when off.
   */
  public int averageFrom(int totalSteps) {
    if (swa == 0) {
      return totalSteps;
    }
    int window = Math.max(1, (int) Math.ceil(swa * totalSteps - 1e-9));
    return totalSteps - Math.min(totalSteps, window);
  }

  /**
   * The learning rate of 0-based optimizer step {@code step} of a run of {@code schedule}: the
   * schedule's, except inside the weight-averaging window, where it stays at the schedule's value
   * at the window's first step (SWA's constant learning rate; at the peak when the window begins
   * during warmup).
   */
  public double lr(Schedule schedule, int step) {
    int from = averageFrom(schedule.totalSteps());
    if (step < from) {
      return schedule.lr(step);
    }
    return schedule.lr(Math.max(from, Math.min(schedule.warmupSteps(), schedule.totalSteps())));
  }
}
