package dev.rewardensemble.model;

import dev.rewardensemble.config.ExecConfig;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Function;
import org.tensorflow.Graph;
import org.tensorflow.Session;

/**
 * The one owner of a {@link Graph} and the {@link Session} over it: closes the session before the
 * graph (TensorFlow Java's {@code Graph.close()} waits for every open session of the graph, so the
 * other order — or a forgotten session on a failure path — hangs instead of failing).
 *
 * <p>Usage: build into {@link #graph()}, then {@link #open}; on any failure while constructing the
 * holder, {@link #close()} this owner and rethrow.
 *
 * <p>Closed guard: {@link #session()} and {@link #run} after {@link #close()} throw {@code
 * IllegalStateException("closed")}. {@link #run} holds a read lock for the duration of the call, so
 * concurrent runs proceed together while {@link #close()} (write lock) waits for every in-flight
 * run to finish before freeing native memory.
 */
public final class GraphSession implements AutoCloseable {
  private final Graph graph = new Graph();
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private Session session;
  private volatile boolean closed;

  public Graph graph() {
    check();
    return graph;
  }

  /** Opens the session over the (built) graph with {@code exec}'s threads and options. */
  public Session open(ExecConfig exec) {
    return open(exec, false);
  }

  /**
   * {@link #open}, on an inter-op thread pool of the session's own with {@code ownInterOpPool}
   * ({@link ExecConfig#newSession(Graph, boolean)}).
   */
  public Session open(ExecConfig exec, boolean ownInterOpPool) {
    lock.writeLock().lock();
    try {
      check();
      if (session != null) {
        throw new IllegalStateException("session already open");
      }
      session = exec.newSession(graph, ownInterOpPool);
      return session;
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * The open session, for single-threaded owners (trainers); concurrent users should go through
   * {@link #run} so that close waits for them.
   */
  public Session session() {
    check();
    if (session == null) {
      throw new IllegalStateException("session not open");
    }
    return session;
  }

  /** Runs {@code f} on the session; {@link #close()} waits until it returns. */
  public <T> T run(Function<Session, T> f) {
    lock.readLock().lock();
    try {
      return f.apply(session());
    } finally {
      lock.readLock().unlock();
    }
  }

  public boolean isClosed() {
    return closed;
  }

  private void check() {
    if (closed) {
      throw new IllegalStateException("closed");
    }
  }

  /** Session first, then the graph; idempotent; waits for in-flight {@link #run}s. */
  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      try {
        if (session != null) {
          session.close();
        }
      } finally {
        graph.close();
      }
    } finally {
      lock.writeLock().unlock();
    }
  }
}
