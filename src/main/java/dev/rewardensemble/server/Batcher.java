package dev.rewardensemble.server;

import dev.rewardensemble.api.RewardModel;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Dynamic batching: requests from any number of threads are queued, and one batcher thread takes
 * them together — up to {@code maxBatch} sequences, or whatever has arrived {@code maxWait} after
 * the oldest waiting request — sorts their sequences by length, runs them in batches of at most
 * {@code maxBatch} (one {@code Session.run} each, padded on the right to the batch's longest) and
 * hands every request its own rows back.
 *
 * <p>The queue holds at most {@code maxQueue} sequences: a request that does not fit is refused at
 * once ({@link RequestError} 503), so memory stays bounded under any load. A batch that fails is
 * run again request by request, so a request that breaks the model fails alone. {@link #close()}
 * refuses new requests, scores everything already queued, and stops the thread.
 */
public final class Batcher implements AutoCloseable {
  /**
   * One sequence: its ids and, when the client sent one, its attention mask (same length; null:
   * every token attended).
   */
  public record Row(int[] ids, int[] mask) {}

  /** Raw member rewards {@code [B][K]} of a padded batch (row-major ids and mask, [B, T]). */
  @FunctionalInterface
  interface Scorer {
    float[][] run(int[] ids, int[] mask, int b, int t);
  }

  private record Job(List<Row> rows, CompletableFuture<float[][]> result, long enqueued) {}

  private final Scorer model;
  private final int maxBatch;
  private final long maxWaitNanos;
  private final int maxQueue;
  private final ServerMetrics metrics;
  private final int pad;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private final ArrayDeque<Job> queue = new ArrayDeque<>();
  private final Thread thread;
  private int queued; // sequences in the queue
  private boolean closing;

  Batcher(
      RewardModel model, int maxBatch, long maxWaitMillis, int maxQueue, ServerMetrics metrics) {
    this(model::run, model.config().padTokenId(), maxBatch, maxWaitMillis, maxQueue, metrics);
  }

  /**
   * @param model scores one padded batch (a test may stand in for the model)
   * @param pad the id padding fills with
   */
  Batcher(
      Scorer model,
      int pad,
      int maxBatch,
      long maxWaitMillis,
      int maxQueue,
      ServerMetrics metrics) {
    this.model = model;
    this.maxBatch = maxBatch;
    this.maxWaitNanos = TimeUnit.MILLISECONDS.toNanos(maxWaitMillis);
    this.maxQueue = maxQueue;
    this.metrics = metrics;
    this.pad = pad;
    thread = new Thread(this::loop, "rme-batcher");
    thread.setDaemon(true);
    thread.start();
  }

  /** Sequences waiting to be scored. */
  int depth() {
    lock.lock();
    try {
      return queued;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Queues {@code rows} (already validated against the model) and returns their raw member rewards
   * {@code [N][K]} when scored.
   *
   * @throws RequestError 413 when the request alone is larger than the queue, 503 when the queue is
   *     full or the server is shutting down
   */
  CompletableFuture<float[][]> submit(List<Row> rows) {
    if (rows.size() > maxQueue) {
      throw new RequestError(
          413,
          "the request has "
              + rows.size()
              + " sequences, more than the server's queue holds (--max-queue "
              + maxQueue
              + ")");
    }
    Job job = new Job(rows, new CompletableFuture<>(), System.nanoTime());
    lock.lock();
    try {
      if (closing) {
        throw new RequestError(503, "the server is shutting down");
      }
      if (queued + rows.size() > maxQueue) {
        throw new RequestError(
            503,
            "overloaded: "
                + queued
                + " sequences are waiting (--max-queue "
                + maxQueue
                + "); retry later");
      }
      queue.add(job);
      queued += rows.size();
      changed.signalAll();
    } finally {
      lock.unlock();
    }
    return job.result;
  }

  private void loop() {
    while (true) {
      List<Job> jobs = take();
      if (jobs == null) {
        return;
      }
      run(jobs);
    }
  }

  /** The next jobs to run together, or null once closed and drained. */
  private List<Job> take() {
    lock.lock();
    try {
      while (queue.isEmpty()) {
        if (closing) {
          return null;
        }
        changed.awaitUninterruptibly();
      }
      long deadline = queue.peek().enqueued + maxWaitNanos;
      while (queued < maxBatch && !closing) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          break;
        }
        try {
          changed.awaitNanos(left);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
      }
      List<Job> jobs = new ArrayList<>();
      int n = 0;
      while (!queue.isEmpty() && (jobs.isEmpty() || n + queue.peek().rows.size() <= maxBatch)) {
        Job j = queue.poll();
        jobs.add(j);
        n += j.rows.size();
        queued -= j.rows.size();
      }
      return jobs;
    } finally {
      lock.unlock();
    }
  }

  private void run(List<Job> jobs) {
    try {
      List<float[][]> results = score(jobs);
      for (int i = 0; i < jobs.size(); i++) {
        jobs.get(i).result.complete(results.get(i));
      }
    } catch (RuntimeException | Error e) {
      if (jobs.size() == 1) {
        jobs.get(0).result.completeExceptionally(e);
        return;
      }
      for (Job j : jobs) { // isolate the request that broke the batch
        try {
          j.result.complete(score(List.of(j)).get(0));
        } catch (RuntimeException | Error e1) {
          j.result.completeExceptionally(e1);
        }
      }
    }
  }

  /** Every job's rewards, from batches of at most {@code maxBatch} sequences sorted by length. */
  private List<float[][]> score(List<Job> jobs) {
    List<int[]> where = new ArrayList<>(); // {job, row}
    for (int j = 0; j < jobs.size(); j++) {
      for (int r = 0; r < jobs.get(j).rows.size(); r++) {
        where.add(new int[] {j, r});
      }
    }
    where.sort(Comparator.comparingInt(w -> jobs.get(w[0]).rows.get(w[1]).ids().length));
    List<float[][]> out = new ArrayList<>();
    for (Job j : jobs) {
      out.add(new float[j.rows.size()][]);
    }
    for (int start = 0; start < where.size(); start += maxBatch) {
      int end = Math.min(where.size(), start + maxBatch);
      int b = end - start;
      int t = 0;
      for (int i = start; i < end; i++) {
        t = Math.max(t, jobs.get(where.get(i)[0]).rows.get(where.get(i)[1]).ids().length);
      }
      int[] ids = new int[b * t];
      int[] mask = new int[b * t];
      Arrays.fill(ids, pad);
      for (int i = 0; i < b; i++) {
        Row row = jobs.get(where.get(start + i)[0]).rows.get(where.get(start + i)[1]);
        System.arraycopy(row.ids(), 0, ids, i * t, row.ids().length);
        if (row.mask() == null) {
          Arrays.fill(mask, i * t, i * t + row.ids().length, 1);
        } else {
          System.arraycopy(row.mask(), 0, mask, i * t, row.mask().length);
        }
      }
      float[][] r = model.run(ids, mask, b, t);
      metrics.batch(b);
      for (int i = 0; i < b; i++) {
        int[] w = where.get(start + i);
        out.get(w[0])[w[1]] = r[i];
      }
    }
    return out;
  }

  /**
   * Refuses new requests, scores every queued one, and waits (up to {@code timeoutMillis}) for the
   * batcher thread to finish.
   */
  public void close(long timeoutMillis) {
    lock.lock();
    try {
      closing = true;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
    try {
      thread.join(timeoutMillis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    close(60_000);
  }
}
