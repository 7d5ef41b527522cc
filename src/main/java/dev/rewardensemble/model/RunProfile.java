package dev.rewardensemble.model;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.proto.DeviceStepStats;
import org.tensorflow.proto.NodeExecStats;
import org.tensorflow.proto.RunMetadata;
import org.tensorflow.proto.RunOptions;

/**
 * Where the time of the hot {@code Session.run}s goes, by op type ({@code rme bench --profile}):
 * while started, {@link #run} asks TensorFlow for a full trace of each run ({@code FULL_TRACE} step
 * stats) and adds every executed node's op time to its op type's total. Off by default, and then
 * {@link #run} is just {@code runner.run()}. Tracing slows the runs it profiles, so profiled
 * timings are not comparable with unprofiled ones; the shares are what it is for.
 *
 * <p>Process-wide (one profile at a time), thread-safe. Used by the runs that do the work of
 * scoring ({@code RewardModel}), training ({@code RewardTrainer}) and generation ({@code Sampler}).
 */
public final class RunProfile {
  private static volatile boolean on;
  private static final Map<String, long[]> BY_OP = new ConcurrentHashMap<>();
  private static final AtomicLong RUNS = new AtomicLong();

  private RunProfile() {}

  /** One op type's total: executed nodes, their summed op time, its share of all op time. */
  public record OpTime(String op, long nodes, long micros, double share) {}

  /** Clears the totals and profiles from now on. */
  public static void start() {
    BY_OP.clear();
    RUNS.set(0);
    on = true;
  }

  /** Stops profiling (the totals stay readable). */
  public static void stop() {
    on = false;
  }

  /** Runs profiled since {@link #start}. */
  public static long runs() {
    return RUNS.get();
  }

  /** {@code runner.run()}, traced while a profile is on. */
  public static Result run(Session.Runner runner) {
    if (!on) {
      return runner.run();
    }
    Result r =
        runner
            .setOptions(
                RunOptions.newBuilder().setTraceLevel(RunOptions.TraceLevel.FULL_TRACE).build())
            .runAndFetchMetadata();
    r.getMetadata().ifPresent(RunProfile::add);
    RUNS.incrementAndGet();
    return r;
  }

  private static void add(RunMetadata md) {
    for (DeviceStepStats dev : md.getStepStats().getDevStatsList()) {
      for (NodeExecStats n : dev.getNodeStatsList()) {
        long micros = Math.max(0, n.getOpEndRelMicros() - n.getOpStartRelMicros());
        long[] t = BY_OP.computeIfAbsent(opType(n), k -> new long[2]);
        synchronized (t) {
          t[0]++;
          t[1] += micros;
        }
      }
    }
  }

  /**
   * The op type of a traced node: its timeline label reads {@code "name = Op(inputs)"}; nodes
   * without one (the executor's own bookkeeping) count under their name.
   */
  static String opType(NodeExecStats n) {
    String label = n.getTimelineLabel();
    int eq = label.indexOf(" = ");
    if (eq < 0) {
      return n.getNodeName().startsWith("_") ? n.getNodeName() : "(unlabelled)";
    }
    int paren = label.indexOf('(', eq);
    return label.substring(eq + 3, paren < 0 ? label.length() : paren).trim();
  }

  /** The op types by total op time, largest first, at most {@code limit}. */
  public static List<OpTime> top(int limit) {
    long all = 0;
    List<OpTime> out = new ArrayList<>();
    for (long[] t : BY_OP.values()) {
      all += t[1];
    }
    for (Map.Entry<String, long[]> e : BY_OP.entrySet()) {
      long[] t = e.getValue();
      out.add(new OpTime(e.getKey(), t[0], t[1], all == 0 ? 0 : (double) t[1] / all));
    }
    out.sort(Comparator.comparingLong(OpTime::micros).reversed());
    return out.subList(0, Math.min(limit, out.size()));
  }
}
