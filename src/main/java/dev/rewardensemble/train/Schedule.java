package dev.rewardensemble.train;

/**
 * A learning-rate schedule evaluated on the Java side and fed to the graph each optimizer step (see
 * {@link AdamW#lr()}).
 *
 * <p>Reproduces the Hugging Face {@code transformers} schedules {@code
 * get_constant_schedule_with_warmup} and {@code get_cosine_schedule_with_warmup} (with the default
 * {@code num_cycles = 0.5}), combined with the Trainer's {@code warmup_steps =
 * ceil(num_training_steps * warmup_ratio)}. With {@code w} warmup steps and {@code N} total steps,
 * the multiplier of {@link #baseLr()} at the 0-based optimizer step {@code s} is
 *
 * <pre>
 *   s &lt; w            : s / max(1, w)                       (linear ramp from 0; the very first step has lr 0)
 *   CONSTANT, s &gt;= w : 1
 *   COSINE,   s &gt;= w : max(0, 0.5 * (1 + cos(pi * p))),    p = (s - w) / max(1, N - w)
 * </pre>
 *
 * All arithmetic is in {@code double}, in the same order as the Python code, so values agree bit
 * for bit (including {@code ceil(100 * 0.07) == 8}).
 *
 * @param kind the shape after warmup
 * @param baseLr the peak learning rate, finite and {@code > 0}
 * @param warmupRatio fraction of {@code totalSteps} spent warming up, in {@code [0, 1)}
 * @param totalSteps number of optimizer steps of the whole run, {@code > 0}
 */
public record Schedule(Kind kind, double baseLr, double warmupRatio, int totalSteps) {

  /** Shape of the schedule after warmup. */
  public enum Kind {
    /** Constant {@code baseLr} after warmup. */
    CONSTANT,
    /** Half-cosine decay from {@code baseLr} to 0 at {@code totalSteps}. */
    COSINE
  }

  public Schedule {
    if (kind == null) {
      throw new IllegalArgumentException("schedule kind must not be null");
    }
    if (!Double.isFinite(baseLr) || baseLr <= 0) {
      throw new IllegalArgumentException("baseLr must be finite and > 0, got " + baseLr);
    }
    if (!(warmupRatio >= 0 && warmupRatio < 1)) { // also rejects NaN
      throw new IllegalArgumentException("warmupRatio must be in [0, 1), got " + warmupRatio);
    }
    if (totalSteps <= 0) {
      throw new IllegalArgumentException("totalSteps must be > 0, got " + totalSteps);
    }
  }

  /** A constant schedule with linear warmup. */
  public static Schedule constant(double baseLr, double warmupRatio, int totalSteps) {
    return new Schedule(Kind.CONSTANT, baseLr, warmupRatio, totalSteps);
  }

  /** A cosine schedule with linear warmup. */
  public static Schedule cosine(double baseLr, double warmupRatio, int totalSteps) {
    return new Schedule(Kind.COSINE, baseLr, warmupRatio, totalSteps);
  }

  /** {@code ceil(totalSteps * warmupRatio)}, as the Hugging Face Trainer computes it. */
  public int warmupSteps() {
    return (int) Math.ceil(totalSteps * warmupRatio);
  }

  /**
   * The learning rate of 0-based optimizer step {@code step}.
   *
   * @param step in {@code [0, totalSteps]} ({@code totalSteps} itself, the value after the last
   *     step, is 0 for the cosine schedule)
   * @throws IllegalArgumentException if {@code step} is outside {@code [0, totalSteps]}
   */
  public double lr(int step) {
    return baseLr * multiplier(step);
  }

  /** The factor applied to {@link #baseLr()} at {@code step}; see {@link #lr(int)}. */
  public double multiplier(int step) {
    if (step < 0 || step > totalSteps) {
      throw new IllegalArgumentException("step must be in [0, " + totalSteps + "], got " + step);
    }
    int warmup = warmupSteps();
    if (step < warmup) {
      return (double) step / (double) Math.max(1, warmup);
    }
    return switch (kind) {
      case CONSTANT -> 1.0;
      case COSINE -> {
        double progress = (double) (step - warmup) / (double) Math.max(1, totalSteps - warmup);
        yield Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * progress)));
      }
    };
  }
}
