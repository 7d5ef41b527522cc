package dev.rewardensemble.eval;

import java.io.IOException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Logs the demo's phases and sums their wall time by name; phases of units running at once ({@link
 * DemoParallelism}) may call it from several threads.
 */
final class PhaseTimer {
  /** A phase's work. */
  interface Work<T> {
    T run() throws IOException;
  }

  private final Map<String, Double> seconds = new LinkedHashMap<>();
  private final Consumer<String> log;
  private final DemoCost cost = new DemoCost();

  PhaseTimer(Consumer<String> log) {
    this.log = log;
  }

  /** The methods' measured costs (training, scoring, inference memory), filled by the phases. */
  DemoCost cost() {
    return cost;
  }

  void log(String message) {
    log.accept(message);
  }

  Consumer<String> log() {
    return log;
  }

  /**
   * Runs {@code work} as the phase {@code name}: logged when it starts and ends, its time added to
   * the name's.
   */
  <T> T time(String name, Work<T> work) throws IOException {
    long start = System.nanoTime();
    log.accept("[demo] " + name + " ...");
    T result = work.run();
    double s = (System.nanoTime() - start) / 1e9;
    synchronized (seconds) {
      seconds.merge(name, s, Double::sum);
    }
    log.accept(String.format(Locale.ROOT, "[demo] %s done in %.1f s", name, s));
    return result;
  }

  /** Seconds per phase name, in the order the phases first ended. */
  Map<String, Double> seconds() {
    synchronized (seconds) {
      return Collections.unmodifiableMap(new LinkedHashMap<>(seconds));
    }
  }
}
