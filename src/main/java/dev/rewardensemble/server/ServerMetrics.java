package dev.rewardensemble.server;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.function.IntSupplier;

/**
 * The server's Prometheus metrics, in a registry of its own (so that several servers in one JVM
 * keep separate counts): requests by route and status code, request latency by route, sequences per
 * {@code Session.run}, and the number of sequences waiting in the queue.
 */
final class ServerMetrics {
  private final PrometheusRegistry registry = new PrometheusRegistry();
  private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.create();
  private final Counter requests;
  private final Histogram latency;
  private final Histogram batchSize;
  private final Counter sequences;

  ServerMetrics(IntSupplier queueDepth) {
    requests =
        Counter.builder()
            .name("rme_requests_total")
            .help("HTTP requests by route and status code")
            .labelNames("route", "code")
            .register(registry);
    latency =
        Histogram.builder()
            .name("rme_request_duration_seconds")
            .help("Time from a request's arrival to its answer, by route")
            .labelNames("route")
            .classicOnly()
            .classicUpperBounds(
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
            .register(registry);
    batchSize =
        Histogram.builder()
            .name("rme_batch_size")
            .help("Sequences per Session.run of the batcher")
            .classicOnly()
            .classicUpperBounds(1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
            .register(registry);
    sequences =
        Counter.builder().name("rme_sequences_total").help("Sequences scored").register(registry);
    GaugeWithCallback.builder()
        .name("rme_queue_depth")
        .help("Sequences waiting for the batcher")
        .callback(cb -> cb.call(queueDepth.getAsInt()))
        .register(registry);
  }

  void request(String route, int code, long nanos) {
    requests.labelValues(route, Integer.toString(code)).inc();
    latency.labelValues(route).observe(nanos / 1e9);
  }

  void batch(int size) {
    batchSize.observe(size);
    sequences.inc(size);
  }

  String contentType() {
    return writer.getContentType();
  }

  /** Every metric in Prometheus' text exposition format. */
  String text() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      writer.write(out, registry.scrape());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toString(java.nio.charset.StandardCharsets.UTF_8);
  }
}
