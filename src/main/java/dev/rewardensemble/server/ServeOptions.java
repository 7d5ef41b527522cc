package dev.rewardensemble.server;

import dev.rewardensemble.ensemble.AggregationConfig;
import java.util.Objects;
import java.util.Optional;

/**
 * How {@code rme serve} runs, validated.
 *
 * @param name the model's name in TF Serving's paths ({@code /v1/models/NAME})
 * @param version the version TF Serving's paths and status report ({@code /versions/V})
 * @param host the address to bind (loopback by default)
 * @param port the port to bind; 0 picks a free one ({@link RewardServer#port()} tells which)
 * @param maxBatch most sequences per {@code Session.run}
 * @param maxWaitMillis how long the batcher waits for more requests after the oldest waiting one
 * @param maxQueue most sequences waiting; more is answered 503 at once
 * @param maxRequestBytes largest request body; larger is answered 413
 * @param token when present, every request needs {@code Authorization: Bearer <token>}
 * @param aggregation how members are combined into {@code reward}
 * @param normalize standardise members with the ensemble's stored normalisation first
 * @param httpThreads most threads serving HTTP requests (a request waiting for the batcher holds
 *     none)
 * @param stopTimeoutMillis how long a graceful stop waits for requests in flight
 */
public record ServeOptions(
    String name,
    long version,
    String host,
    int port,
    int maxBatch,
    long maxWaitMillis,
    int maxQueue,
    long maxRequestBytes,
    Optional<String> token,
    AggregationConfig aggregation,
    boolean normalize,
    int httpThreads,
    long stopTimeoutMillis) {

  public ServeOptions {
    Objects.requireNonNull(aggregation, "aggregation");
    token = token == null ? Optional.empty() : token;
    if (name == null || !name.matches("[A-Za-z0-9][A-Za-z0-9._-]*")) {
      throw new IllegalArgumentException(
          "--name must be letters, digits, '.', '_' or '-' (not first), got '" + name + "'");
    }
    if (version < 1) {
      throw new IllegalArgumentException("the model version must be >= 1, got " + version);
    }
    if (host == null || host.isBlank()) {
      throw new IllegalArgumentException("--host must not be empty");
    }
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("--port must be in [0, 65535], got " + port);
    }
    if (maxBatch < 1 || maxBatch > 4096) {
      throw new IllegalArgumentException("--max-batch must be in [1, 4096], got " + maxBatch);
    }
    if (maxWaitMillis < 0 || maxWaitMillis > 60_000) {
      throw new IllegalArgumentException(
          "--max-wait-ms must be in [0, 60000], got " + maxWaitMillis);
    }
    if (maxQueue < 1) {
      throw new IllegalArgumentException("--max-queue must be >= 1, got " + maxQueue);
    }
    if (maxRequestBytes < 1 || maxRequestBytes > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          "--max-request-bytes must be in [1, "
              + (Integer.MAX_VALUE - 8)
              + "], got "
              + maxRequestBytes);
    }
    if (token.isPresent() && token.get().isEmpty()) {
      throw new IllegalArgumentException("the bearer token is empty");
    }
    if (httpThreads < 4 || httpThreads > 10_000) {
      throw new IllegalArgumentException(
          "--http-threads must be in [4, 10000], got " + httpThreads);
    }
    if (stopTimeoutMillis < 0) {
      throw new IllegalArgumentException("the stop timeout must be >= 0, got " + stopTimeoutMillis);
    }
  }

  /** Defaults of {@code rme serve} for a model named {@code name}, with its aggregation. */
  public static ServeOptions defaults(String name, AggregationConfig aggregation) {
    return new ServeOptions(
        name,
        1,
        "127.0.0.1",
        8501,
        32,
        5,
        1024,
        16L << 20,
        Optional.empty(),
        aggregation,
        true,
        64,
        30_000);
  }

  public ServeOptions withPort(int p) {
    return new ServeOptions(
        name,
        version,
        host,
        p,
        maxBatch,
        maxWaitMillis,
        maxQueue,
        maxRequestBytes,
        token,
        aggregation,
        normalize,
        httpThreads,
        stopTimeoutMillis);
  }

  public ServeOptions withBatching(int batch, long waitMillis, int queue) {
    return new ServeOptions(
        name,
        version,
        host,
        port,
        batch,
        waitMillis,
        queue,
        maxRequestBytes,
        token,
        aggregation,
        normalize,
        httpThreads,
        stopTimeoutMillis);
  }

  public ServeOptions withMaxRequestBytes(long bytes) {
    return new ServeOptions(
        name,
        version,
        host,
        port,
        maxBatch,
        maxWaitMillis,
        maxQueue,
        bytes,
        token,
        aggregation,
        normalize,
        httpThreads,
        stopTimeoutMillis);
  }

  public ServeOptions withAggregation(AggregationConfig agg) {
    return new ServeOptions(
        name,
        version,
        host,
        port,
        maxBatch,
        maxWaitMillis,
        maxQueue,
        maxRequestBytes,
        token,
        agg,
        normalize,
        httpThreads,
        stopTimeoutMillis);
  }

  public ServeOptions withToken(String t) {
    return new ServeOptions(
        name,
        version,
        host,
        port,
        maxBatch,
        maxWaitMillis,
        maxQueue,
        maxRequestBytes,
        Optional.ofNullable(t),
        aggregation,
        normalize,
        httpThreads,
        stopTimeoutMillis);
  }
}
