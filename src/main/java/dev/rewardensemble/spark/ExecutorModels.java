package dev.rewardensemble.spark;

import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The models of one executor JVM, loaded lazily by the first task that needs them and kept for the
 * JVM's later tasks (Spark runs many tasks, of many stages, in one executor JVM).
 *
 * <p>{@link SparkScoreSpec.Sessions#SHARED}: one {@link RewardModel} per JVM, used by all its
 * concurrent tasks at once (its {@code score} is thread-safe: one TensorFlow session, concurrent
 * {@code Session.run}s), with the executor's cores as intra-op threads. {@link
 * SparkScoreSpec.Sessions#PER_SLOT}: up to one model per task slot, each with the cores divided
 * among the slots; a task takes one for its duration and gives it back. The weights then exist once
 * per slot.
 */
final class ExecutorModels {
  /** A model with its tokenizer (null when the model has none and none was given). */
  record Loaded(RewardModel model, Tokenizer tokenizer) {
    void close() {
      if (tokenizer != null) {
        tokenizer.close();
      }
      model.close();
    }
  }

  /** A model on loan to one task; {@link #release} when the task ends. */
  interface Lease {
    Loaded loaded();

    void release();
  }

  private static final Map<String, Pool> POOLS = new ConcurrentHashMap<>();

  private ExecutorModels() {}

  /**
   * A model for a task of an executor with {@code cores} cores and {@code slots} task slots; blocks
   * while every per-slot model is in use.
   */
  static Lease acquire(SparkScoreSpec spec, int cores, int slots) {
    Pool p =
        POOLS.computeIfAbsent(
            spec.modelKey(),
            k -> new Pool(spec, spec.sessions() == SparkScoreSpec.Sessions.SHARED ? 1 : slots));
    return p.acquire(spec.sessions() == SparkScoreSpec.Sessions.SHARED, cores);
  }

  /** How many models this JVM has loaded (for tests and the benchmark). */
  static int loadedCount() {
    return POOLS.values().stream().mapToInt(p -> p.all.size()).sum();
  }

  /**
   * Closes every model of this JVM. The driver calls it after a job in local mode, where it is the
   * executor; a cluster's executor JVMs free theirs when they exit.
   */
  static synchronized void closeAll() {
    for (Pool p : POOLS.values()) {
      p.close();
    }
    POOLS.clear();
  }

  private static final class Pool {
    private final SparkScoreSpec spec;
    private final int size;
    private final BlockingQueue<Loaded> idle;
    private final List<Loaded> all = new ArrayList<>();

    Pool(SparkScoreSpec spec, int size) {
      this.spec = spec;
      this.size = Math.max(1, size);
      this.idle = new ArrayBlockingQueue<>(this.size);
    }

    Lease acquire(boolean shared, int cores) {
      if (shared) {
        Loaded l;
        synchronized (this) {
          if (all.isEmpty()) {
            all.add(load(cores));
          }
          l = all.get(0);
        }
        return lease(l, () -> {});
      }
      Loaded l = idle.poll();
      if (l == null) {
        synchronized (this) {
          if (all.size() < size) {
            l = load(Math.max(1, cores / size));
            all.add(l);
          }
        }
      }
      if (l == null) {
        try {
          l = idle.take();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException("interrupted while waiting for a model", e);
        }
      }
      Loaded taken = l;
      return lease(taken, () -> idle.offer(taken));
    }

    private static Lease lease(Loaded l, Runnable release) {
      return new Lease() {
        private boolean released;

        @Override
        public Loaded loaded() {
          return l;
        }

        @Override
        public synchronized void release() {
          if (!released) {
            released = true;
            release.run();
          }
        }
      };
    }

    private Loaded load(int intraThreads) {
      ExecConfig exec = spec.exec().config(intraThreads, 0);
      List<Path> adapters = spec.lora().stream().map(Path::of).toList();
      try {
        RewardModel rm =
            RewardModel.load(
                Path.of(spec.model()), adapters, exec, Optional.ofNullable(spec.rewardToken()));
        Path tok =
            spec.tokenizer() != null ? Path.of(spec.tokenizer()) : rm.tokenizer().orElse(null);
        try {
          return new Loaded(rm, tok == null ? null : Tokenizer.load(tok));
        } catch (RuntimeException e) {
          rm.close();
          throw e;
        }
      } catch (IOException e) {
        throw new UncheckedIOException(spec.model() + ": " + e.getMessage(), e);
      }
    }

    synchronized void close() {
      for (Loaded l : all) {
        l.close();
      }
      all.clear();
      idle.clear();
    }
  }
}
