package dev.rewardensemble.cli;

/** A problem with the user's input or environment: printed as one line, exit code 2. */
public final class UserError extends RuntimeException {
  public UserError(String message) {
    super(message);
  }
}
