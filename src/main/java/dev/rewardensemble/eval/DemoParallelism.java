package dev.rewardensemble.eval;

import com.google.common.base.Throwables;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.rl.GenerationLanes;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * How the demo spreads its independent units over the CPU: {@code jobs} units at once (worlds, then
 * PPO runs), every session of a unit opened with {@code exec}.
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

  /**
   * Runs {@code work} for indices {@code 0..n-1}, {@link #jobs} at once, and returns the results in
   * index order. After a unit fails no further unit starts; the running ones finish (a TensorFlow
   * call cannot be interrupted), then the failure of the lowest index is thrown as it was.
   */
  <T> List<T> map(int n, Work<T> work) throws IOException {
    List<T> out = new ArrayList<>(n);
    if (jobs == 1 || n <= 1) {
      for (int i = 0; i < n; i++) {
        out.add(work.run(i));
      }
      return out;
    }
    AtomicBoolean failed = new AtomicBoolean();
    ExecutorService pool =
        Executors.newFixedThreadPool(
            Math.min(jobs, n),
            r -> {
              Thread t = new Thread(r, "demo-job");
              t.setDaemon(true);
              return t;
            });
    try {
      List<Future<T>> futures = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        int index = i;
        futures.add(
            pool.submit(
                () -> {
                  if (failed.get()) {
                    return null;
                  }
                  try {
                    return work.run(index);
                  } catch (IOException | RuntimeException | Error e) {
                    failed.set(true);
                    throw e;
                  }
                }));
      }
      Throwable first = null;
      for (Future<T> f : futures) {
        try {
          T r = f.get();
          out.add(r);
        } catch (ExecutionException e) {
          if (first == null) {
            first = e.getCause();
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          failed.set(true);
          throw new IOException("demo interrupted", e);
        }
      }
      if (first != null) {
        Throwables.throwIfInstanceOf(first, IOException.class);
        Throwables.throwIfUnchecked(first);
        throw new AssertionError("a unit threw neither IOException nor unchecked", first);
      }
      return out;
    } finally {
      pool.shutdown();
    }
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
