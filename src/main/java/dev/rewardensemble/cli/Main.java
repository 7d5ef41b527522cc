package dev.rewardensemble.cli;

/** Entry point of the {@code rme} command line. */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    System.out.println(org.tensorflow.TensorFlow.version());
  }
}
