package dev.rewardensemble.bench;

import java.util.Arrays;

/** Wall-clock timing: warm-up runs excluded, the median of the measured repetitions. */
public final class Timing {
  private Timing() {}

  /** A measured action. */
  @FunctionalInterface
  public interface Action {
    void run() throws Exception;
  }

  /**
   * Seconds per run: median, min and max of {@code reps} runs after {@code warmup} unmeasured ones.
   */
  public record Result(double median, double min, double max, int reps) {}

  public static Result measure(int warmup, int reps, Action a) throws Exception {
    for (int i = 0; i < warmup; i++) {
      a.run();
    }
    double[] s = new double[reps];
    for (int i = 0; i < reps; i++) {
      long t0 = System.nanoTime();
      a.run();
      s[i] = (System.nanoTime() - t0) / 1e9;
    }
    return new Result(
        median(s), Arrays.stream(s).min().orElse(0), Arrays.stream(s).max().orElse(0), reps);
  }

  public static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    int n = s.length;
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  }
}
