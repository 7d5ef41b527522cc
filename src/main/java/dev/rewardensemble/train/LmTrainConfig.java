package dev.rewardensemble.train;

/**
 * Hyperparameters of causal-LM training (supervised fine-tuning), validated on construction.
 *
 * @param batchSize sequences per optimizer step
 * @param steps optimizer steps of the run (the schedule's length)
 * @param lr peak learning rate
 * @param weightDecay AdamW's decoupled weight decay
 * @param schedule shape after warmup
 * @param warmupRatio fraction of {@code steps} warming up linearly
 * @param maxGradNorm global-norm clipping threshold, 0 = off
 * @param leftPad pad batches on the left (as for generation) instead of the right
 * @param seed data order and initialisation
 */
public record LmTrainConfig(
    int batchSize,
    int steps,
    double lr,
    double weightDecay,
    Schedule.Kind schedule,
    double warmupRatio,
    double maxGradNorm,
    boolean leftPad,
    long seed) {

  public LmTrainConfig {
    check(batchSize >= 1, "batch size must be >= 1, got " + batchSize);
    check(steps >= 1, "steps must be >= 1, got " + steps);
    check(Double.isFinite(lr) && lr > 0, "learning rate must be > 0, got " + lr);
    check(
        weightDecay >= 0 && weightDecay < 1, "weight decay must be in [0, 1), got " + weightDecay);
    check(schedule != null, "schedule must be cosine or constant");
    check(
        warmupRatio >= 0 && warmupRatio < 1, "warmup ratio must be in [0, 1), got " + warmupRatio);
    check(
        Double.isFinite(maxGradNorm) && maxGradNorm >= 0,
        "max grad norm must be >= 0 (0 = off), got " + maxGradNorm);
  }

  private static void check(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }

  /**
   * Small-model SFT from scratch: batch 32, lr 3e-3 cosine, 5% warmup, weight decay 0.01, clip 1.
   */
  public static LmTrainConfig defaults(int steps) {
    return new LmTrainConfig(32, steps, 3e-3, 0.01, Schedule.Kind.COSINE, 0.05, 1.0, false, 42);
  }

  public LmTrainConfig withSteps(int s) {
    return new LmTrainConfig(
        batchSize, s, lr, weightDecay, schedule, warmupRatio, maxGradNorm, leftPad, seed);
  }

  public LmTrainConfig withLr(double newLr) {
    return new LmTrainConfig(
        batchSize, steps, newLr, weightDecay, schedule, warmupRatio, maxGradNorm, leftPad, seed);
  }

  public LmTrainConfig withLeftPad(boolean left) {
    return new LmTrainConfig(
        batchSize, steps, lr, weightDecay, schedule, warmupRatio, maxGradNorm, left, seed);
  }

  /** The learning-rate schedule of the run. */
  public Schedule toSchedule() {
    return new Schedule(schedule, lr, warmupRatio, steps);
  }
}
