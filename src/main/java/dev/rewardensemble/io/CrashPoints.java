package dev.rewardensemble.io;

/**
 * Named points between the writes that complete a run, where a test can make the process die as a
 * SIGKILL would ({@code -Drme.crashAt=NAME}: {@link Runtime#halt}, no shutdown hooks, no cleanup),
 * so that the kill windows of a run are reproduced exactly. Without the property this does nothing.
 */
public final class CrashPoints {
  /** The system property naming the point to die at. */
  public static final String PROPERTY = "rme.crashAt";

  private CrashPoints() {}

  /** Dies with exit status 137 when {@code -Drme.crashAt} names this point. */
  public static void reached(String name) {
    if (name.equals(System.getProperty(PROPERTY))) {
      Runtime.getRuntime().halt(137);
    }
  }
}
