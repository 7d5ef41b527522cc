package dev.rewardensemble.eval;

import com.google.common.base.Throwables;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.rl.GenerationLanes;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.IntUnaryOperator;

/**
 * How the demo spreads its independent units over the CPU: {@code jobs} units at once (worlds, and
 * each PPO run once its world is done: {@link #pipeline}), every session of a unit opened with
 * {@code exec}.
 *
 * <p>Why: the demo's models are small (hidden 64-128), so a training step or a decode step is
 * hundreds of small ops that two intra-op threads do not split well: on the 2-core AMD EPYC one
 * world's phases ran at 1.59 cores busy with two threads, and two worlds at once with one thread
 * each finished in 281 s against 434 s one after the other (1.55x). A unit's numbers depend on its
 * sessions' intra-op threads (a reduction split over two threads rounds differently) but not on
 * what runs beside it, so with one thread per job a run gives the same numbers on a machine of any
 * core count with the same kernels, in any order the units finish.
 *
 * <p>A unit needs thread pools of its own: TensorFlow sizes one process-wide intra-op pool from the
 * first session unless {@value GenerationLanes#OWN_POOLS_ENV} is true when the process starts
 * ({@code ./rme} sets it), and the explicit inter-op count below gives each session an inter-op
 * pool of its own ({@link ExecConfig#newSession}). Without own intra-op pools the automatic choice
 * runs one job with the whole budget, as the demo did before.
 *
 * @param jobs units run at once (>= 1)
 * @param threadsPerJob intra-op threads of a unit's sessions (0: all cores, for one job)
 * @param exec the sessions' configuration of every unit
 */
record DemoParallelism(int jobs, int threadsPerJob, ExecConfig exec) {

  DemoParallelism {
    if (jobs < 1) {
      throw new IllegalArgumentException("demo jobs must be >= 1, got " + jobs);
    }
  }

  /** A unit's work. */
  interface Work<T> {
    T run(int index) throws IOException;
  }

  /** The parallelism of {@code s} on this machine and process. */
  static DemoParallelism of(DemoSettings s) {
    return of(
        s.threads(),
        s.jobs(),
        Runtime.getRuntime().availableProcessors(),
        GenerationLanes.sessionsOwnPools());
  }

  /**
   * The rule: the thread budget is {@code threads} ({@code cores} when 0); {@code jobs} 0 is one
   * job per thread of the budget when sessions have intra-op pools of their own, else one; each of
   * several jobs gets an equal share of the budget (at least one thread) and one inter-op thread;
   * one job keeps the configuration the demo always had ({@code threads}, TensorFlow's inter-op
   * default).
   */
  static DemoParallelism of(int threads, int jobs, int cores, boolean ownPools) {
    int budget = threads > 0 ? threads : Math.max(1, cores);
    int j = jobs > 0 ? jobs : (ownPools ? budget : 1);
    if (j == 1) {
      return new DemoParallelism(1, threads, new ExecConfig(threads, 0, false));
    }
    int each = Math.max(1, budget / j);
    return new DemoParallelism(j, each, new ExecConfig(each, 1, false));
  }

  /** A follow-up unit's work, given the result of the unit it depends on. */
  interface FollowUp<W, T> {
    T run(int index, W dependency) throws IOException;
  }

  /** What {@link #pipeline} returns: each stage's results in index order. */
  record Stages<W, T>(List<W> first, List<T> second) {}

  /**
   * Runs {@code first} for indices {@code 0..n-1} and {@code second} for indices {@code 0..m-1},
   * where follow-up {@code i} needs the result of first-stage unit {@code dependsOn(i)}: {@link
   * #jobs} units at once, every first-stage unit queued before any follow-up, and each follow-up
   * queued as soon as its dependency is done, so that the follow-ups of finished worlds fill the
   * cores while the last worlds still run (with 5 worlds and 2 jobs the fifth world would otherwise
   * run alone, one core idle). One job runs the first stage, then the second, each in index order.
   * A unit's numbers do not depend on what runs beside it (class comment), so the results are those
   * of the two stages run one after the other.
   *
   * <p>After a unit fails no further unit starts; the running ones finish (a TensorFlow call cannot
   * be interrupted), then the failure of the lowest first-stage index, else of the lowest follow-up
   * index, is thrown as it was.
   */
  <W, T> Stages<W, T> pipeline(
      int n, Work<W> first, int m, IntUnaryOperator dependsOn, FollowUp<W, T> second)
      throws IOException {
    int[] dep = new int[m];
    List<List<Integer>> followers = new ArrayList<>();
    for (int w = 0; w < n; w++) {
      followers.add(new ArrayList<>());
    }
    for (int i = 0; i < m; i++) {
      dep[i] = dependsOn.applyAsInt(i);
      if (dep[i] < 0 || dep[i] >= n) { // also m > 0 with n == 0
        throw new IllegalArgumentException(
            "follow-up " + i + " depends on unit " + dep[i] + " of " + n);
      }
      followers.get(dep[i]).add(i);
    }
    if (jobs == 1 || n + m <= 1) {
      List<W> a = new ArrayList<>(n);
      for (int w = 0; w < n; w++) {
        a.add(first.run(w));
      }
      List<T> b = new ArrayList<>(m);
      for (int i = 0; i < m; i++) {
        b.add(second.run(i, a.get(dep[i])));
      }
      return new Stages<>(a, b);
    }
    AtomicBoolean failed = new AtomicBoolean();
    ExecutorService pool =
        Executors.newFixedThreadPool(
            Math.min(jobs, n + m),
            r -> {
              Thread t = new Thread(r, "demo-job");
              t.setDaemon(true);
              return t;
            });
    try {
      List<CompletableFuture<W>> firsts = new ArrayList<>(n);
      List<CompletableFuture<T>> seconds = new ArrayList<>(m);
      for (int i = 0; i < m; i++) {
        seconds.add(new CompletableFuture<>());
      }
      for (int w = 0; w < n; w++) {
        firsts.add(new CompletableFuture<>());
      }
      // Queued in this order on the pool's FIFO queue: every world before any follow-up; a world's
      // follow-ups go to the back of the queue when it completes.
      for (int w = 0; w < n; w++) {
        int index = w;
        pool.execute(
            () -> {
              W r;
              try {
                r = runUnit(failed, () -> first.run(index));
              } catch (Throwable e) {
                firsts.get(index).completeExceptionally(e);
                for (int f : followers.get(index)) {
                  seconds.get(f).cancel(false);
                }
                return;
              }
              firsts.get(index).complete(r);
              for (int f : followers.get(index)) {
                pool.execute(
                    () -> {
                      try {
                        seconds.get(f).complete(runUnit(failed, () -> second.run(f, r)));
                      } catch (Throwable e) {
                        seconds.get(f).completeExceptionally(e);
                      }
                    });
              }
            });
      }
      List<W> a = collect(firsts, failed);
      List<T> b = collect(seconds, failed);
      Throwable firstFailure = firstFailure(firsts);
      if (firstFailure == null) {
        firstFailure = firstFailure(seconds);
      }
      if (firstFailure != null) {
        Throwables.throwIfInstanceOf(firstFailure, IOException.class);
        Throwables.throwIfUnchecked(firstFailure);
        throw new AssertionError("a unit threw neither IOException nor unchecked", firstFailure);
      }
      return new Stages<>(a, b);
    } finally {
      pool.shutdown();
    }
  }

  private interface Unit<R> {
    R run() throws IOException;
  }

  /** A unit that does not start after a failure (its result is then null). */
  private static <R> R runUnit(AtomicBoolean failed, Unit<R> unit) throws IOException {
    if (failed.get()) {
      return null;
    }
    try {
      return unit.run();
    } catch (IOException | RuntimeException | Error e) {
      failed.set(true);
      throw e;
    }
  }

  /** Waits for every future; the results of failed or cancelled ones are null. */
  private static <R> List<R> collect(List<CompletableFuture<R>> futures, AtomicBoolean failed)
      throws IOException {
    List<R> out = new ArrayList<>(futures.size());
    for (CompletableFuture<R> f : futures) {
      try {
        out.add(f.get());
      } catch (ExecutionException | CancellationException e) {
        out.add(null);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        failed.set(true);
        throw new IOException("demo interrupted", e);
      }
    }
    return out;
  }

  private static Throwable firstFailure(List<? extends Future<?>> futures) {
    for (Future<?> f : futures) {
      if (f.isCancelled()) {
        continue;
      }
      try {
        f.get();
      } catch (ExecutionException e) {
        return e.getCause();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return e;
      }
    }
    return null;
  }

  /** For the report: how the units ran. */
  String describe() {
    return jobs == 1
        ? "one unit at a time, "
            + (threadsPerJob > 0
                ? threadsPerJob + " intra-op thread(s)"
                : "one intra-op thread per core")
        : jobs + " units at once, " + threadsPerJob + " intra-op thread(s) each";
  }
}
