package dev.rewardensemble.cli;

import dev.rewardensemble.train.TrainListener;
import java.io.PrintStream;

/**
 * A progress bar with ETA, loss and accuracy on standard error: redrawn in place on a terminal, one
 * line per 10% otherwise (logs stay readable).
 */
final class ProgressBar implements TrainListener {
  private final PrintStream out = System.err;
  private final boolean tty;
  private final String label;
  private final String first;
  private final String second;
  private int lastDecile = -1;
  private double ema = Double.NaN;
  private double emaAcc = Double.NaN;

  ProgressBar(String label) {
    this(label, "loss", "acc");
  }

  /** A bar whose two smoothed metrics are called {@code first} and {@code second}. */
  ProgressBar(String label, String first, String second) {
    this(label, first, second, true);
  }

  /**
   * As {@link #ProgressBar(String, String, String)}; with {@code inPlace} false it prints one line
   * per 10% on a terminal too (several bars advancing at once).
   */
  ProgressBar(String label, String first, String second, boolean inPlace) {
    this.tty = inPlace && System.console() != null;
    this.label = label;
    this.first = first;
    this.second = second;
  }

  @Override
  public void onStep(
      int step,
      int total,
      double loss,
      double accuracy,
      double lr,
      double gradNorm,
      double seconds) {
    ema = Double.isNaN(ema) ? loss : 0.9 * ema + 0.1 * loss;
    emaAcc = Double.isNaN(emaAcc) ? accuracy : 0.9 * emaAcc + 0.1 * accuracy;
    double frac = (double) step / total;
    String line =
        String.format(
            "%s %s %d/%d %s %.4f%s lr %.2e | %s elapsed, ETA %s",
            label,
            bar(frac),
            step,
            total,
            first,
            ema,
            Double.isNaN(accuracy) ? "" : String.format(" %s %.3f", second, emaAcc),
            lr,
            duration(seconds),
            duration(seconds / Math.max(1, step) * (total - step)));
    if (tty) {
      out.print("\r" + line + "\033[K");
      if (step == total) {
        out.println();
      }
    } else {
      int decile = (int) Math.floor(frac * 10);
      if (decile != lastDecile || step == total) {
        out.println(line);
        lastDecile = decile;
      }
    }
    out.flush();
  }

  @Override
  public void onEval(int step, double loss, double accuracy, double margin) {
    if (tty) {
      out.print("\r\033[K");
    }
    out.printf(
        "%s eval @ step %d: loss %.4f accuracy %.4f margin %.4f%n",
        label, step, loss, accuracy, margin);
  }

  @Override
  public void onMessage(String message) {
    if (tty) {
      out.print("\r\033[K");
    }
    out.println(label + " " + message);
  }

  private static String bar(double frac) {
    int width = 24;
    int done = (int) Math.round(frac * width);
    return "[" + "=".repeat(done) + " ".repeat(width - done) + "]";
  }

  static String duration(double seconds) {
    long s = Math.round(seconds);
    return s >= 3600
        ? String.format("%dh%02dm", s / 3600, s % 3600 / 60)
        : s >= 60 ? String.format("%dm%02ds", s / 60, s % 60) : s + "s";
  }
}
