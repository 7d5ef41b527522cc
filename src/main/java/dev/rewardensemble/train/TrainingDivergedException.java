package dev.rewardensemble.train;

/** Training produced a NaN or Inf loss or gradient. The message says what to try. */
public final class TrainingDivergedException extends RuntimeException {
  public TrainingDivergedException(String message) {
    super(message);
  }
}
