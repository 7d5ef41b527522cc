package dev.rewardensemble.bench;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.server.RewardServer;
import dev.rewardensemble.server.ServeOptions;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * {@code rme bench --workloads serve}: {@code rme serve}'s throughput and latency against scoring
 * the same rows in one process. One reward model of the preset (random weights), {@code requests}
 * single-row TF Serving predict requests of {@code seq/2 .. seq} random tokens, sent over loopback
 * HTTP by 1, 4 and 16 concurrent clients (each sends its next request when the last is answered)
 * with dynamic batching ({@code --max-batch = batch}, {@code --max-wait-ms 5}), and by 16 clients
 * with {@code --max-batch 1}; the baselines are {@code RewardModel.score} of all rows in batches of
 * {@code batch} (the work {@code rme score} does) and of 1. Clients and server share the machine's
 * cores, as they do on one host.
 */
public final class ServeBench {
  /** Wait of the batcher for more requests (rme serve's default). */
  public static final int MAX_WAIT_MS = 5;

  /**
   * One measured setting.
   *
   * @param clients concurrent clients (0: the in-process baseline)
   * @param maxBatch the server's {@code --max-batch} (the baseline's batch size)
   * @param p50Ms median request latency (NaN for the baseline)
   */
  public record Result(
      String preset,
      String mode,
      int clients,
      int maxBatch,
      int requests,
      double seqPerSec,
      double p50Ms,
      double p99Ms,
      double meanBatch) {}

  private ServeBench() {}

  public static List<Result> run(
      Path presetFile, BenchOptions o, int requests, Consumer<String> log) throws Exception {
    String preset = presetFile.getFileName().toString().replaceFirst("\\.json$", "");
    ModelConfig c = BenchModels.config(BenchModels.presetJson(presetFile), presetFile.toString());
    List<int[]> rows = rows(c, o, requests);
    List<Result> out = new ArrayList<>();
    try (RewardModel rm =
        RewardModel.fromWeights(
            c,
            1,
            BenchModels.weights(c, 1, o.seed()),
            RewardToken.LAST_NON_PAD,
            o.exec(),
            presetFile,
            Optional.empty())) {
      for (int batch : o.batch() == 1 ? new int[] {1} : new int[] {o.batch(), 1}) {
        out.add(log(log, inProcess(preset, rm, rows, batch, o)));
      }
      for (int[] setting : new int[][] {{o.batch(), 1}, {o.batch(), 4}, {o.batch(), 16}, {1, 16}}) {
        out.add(log(log, serve(preset, rm, rows, setting[0], setting[1])));
      }
    }
    return out;
  }

  /** {@code RewardModel.score} of every row in batches of {@code batch}: median of the reps. */
  private static Result inProcess(
      String preset, RewardModel rm, List<int[]> rows, int batch, BenchOptions o) {
    for (int i = 0; i < o.warmup(); i++) {
      rm.score(rows, batch);
    }
    double[] secs = new double[o.reps()];
    for (int i = 0; i < secs.length; i++) {
      long t0 = System.nanoTime();
      rm.score(rows, batch);
      secs[i] = (System.nanoTime() - t0) / 1e9;
    }
    Arrays.sort(secs);
    return new Result(
        preset,
        "in-process RewardModel.score",
        0,
        batch,
        rows.size(),
        rows.size() / secs[secs.length / 2],
        Double.NaN,
        Double.NaN,
        batch);
  }

  private static Result log(Consumer<String> log, Result r) {
    log.accept(
        String.format(
            "serve %s: %s, %d clients, max batch %d: %.1f seq/s, p50 %.1f ms, p99 %.1f ms",
            r.preset(), r.mode(), r.clients(), r.maxBatch(), r.seqPerSec(), r.p50Ms(), r.p99Ms()));
    return r;
  }

  /** Rows of {@code seq/2 .. seq} random ids (never the pad id), seeded. */
  static List<int[]> rows(ModelConfig c, BenchOptions o, int n) {
    Random r = new Random(o.seed());
    List<int[]> rows = new ArrayList<>(n);
    int lo = Math.max(1, o.seq() / 2);
    for (int i = 0; i < n; i++) {
      int[] ids = new int[lo + r.nextInt(o.seq() - lo + 1)];
      for (int j = 0; j < ids.length; j++) {
        ids[j] = 1 + r.nextInt(c.vocabSize() - 1);
        if (ids[j] == c.padTokenId()) {
          ids[j] = (ids[j] + 1) % c.vocabSize();
        }
      }
      rows.add(ids);
    }
    return rows;
  }

  private static Result serve(
      String preset, RewardModel rm, List<int[]> rows, int maxBatch, int clients) throws Exception {
    ServeOptions opts =
        ServeOptions.defaults("bench", rm.aggregation())
            .withPort(0)
            .withBatching(maxBatch, MAX_WAIT_MS, Math.max(1024, rows.size()));
    Encoder enc =
        new Encoder(null, PromptTemplate.RAW, rm.config().maxPositions(), OptionalInt.empty());
    List<String> bodies = new ArrayList<>(rows.size());
    for (int[] ids : rows) {
      bodies.add("{\"instances\": [{\"input_ids\": " + Arrays.toString(ids) + "}]}");
    }
    HttpClient http =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10))
            .build();
    ExecutorService pool = Executors.newFixedThreadPool(clients);
    try (RewardServer s = RewardServer.start(rm, enc, opts)) {
      URI uri = URI.create(s.address() + "/v1/models/bench:predict");
      // warm-up: every client's connection, and the batch shapes
      runClients(pool, http, uri, bodies.subList(0, Math.min(bodies.size(), 2 * clients)), clients);
      double batches0 = metric(http, s, "rme_batch_size_count");
      long t0 = System.nanoTime();
      double[] lat = runClients(pool, http, uri, bodies, clients);
      double wall = (System.nanoTime() - t0) / 1e9;
      double batches = metric(http, s, "rme_batch_size_count") - batches0;
      Arrays.sort(lat);
      return new Result(
          preset,
          maxBatch == 1 ? "rme serve, --max-batch 1" : "rme serve, dynamic batching",
          clients,
          maxBatch,
          rows.size(),
          rows.size() / wall,
          lat[lat.length / 2] * 1e3,
          lat[Math.min(lat.length - 1, (int) Math.ceil(lat.length * 0.99) - 1)] * 1e3,
          rows.size() / batches);
    } finally {
      pool.shutdownNow();
    }
  }

  /** Sends every body once from {@code clients} threads; each request's latency in seconds. */
  private static double[] runClients(
      ExecutorService pool, HttpClient http, URI uri, List<String> bodies, int clients)
      throws Exception {
    AtomicInteger next = new AtomicInteger();
    double[] lat = new double[bodies.size()];
    List<Future<?>> fs = new ArrayList<>();
    for (int i = 0; i < clients; i++) {
      fs.add(
          pool.submit(
              () -> {
                int j;
                while ((j = next.getAndIncrement()) < bodies.size()) {
                  long t0 = System.nanoTime();
                  HttpResponse<String> r =
                      http.send(
                          HttpRequest.newBuilder(uri)
                              .POST(HttpRequest.BodyPublishers.ofString(bodies.get(j)))
                              .build(),
                          HttpResponse.BodyHandlers.ofString());
                  lat[j] = (System.nanoTime() - t0) / 1e9;
                  if (r.statusCode() != 200) {
                    throw new IllegalStateException(
                        "rme serve answered " + r.statusCode() + ": " + r.body());
                  }
                }
                return null;
              }));
    }
    for (Future<?> f : fs) {
      f.get();
    }
    return lat;
  }

  private static double metric(HttpClient http, RewardServer s, String name) throws Exception {
    String text =
        http.send(
                HttpRequest.newBuilder(URI.create(s.address() + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString())
            .body();
    for (String l : text.split("\n")) {
      if (l.startsWith(name + " ")) {
        return Double.parseDouble(l.substring(name.length() + 1).trim());
      }
    }
    return Double.NaN;
  }

  /** The table, with ratios to the in-process baseline and of batching over batch size 1. */
  public static void print(List<Result> results, PrintStream out) {
    String preset = null;
    Result base = null;
    Result dyn16 = null;
    for (Result r : results) {
      if (!r.preset().equals(preset)) {
        preset = r.preset();
        out.printf(
            "%nrme serve (%s, %d single-row requests, --max-wait-ms %d)%n",
            preset, r.requests(), MAX_WAIT_MS);
        out.printf(
            "%-30s %7s %9s %7s %9s %9s %10s%n",
            "mode", "clients", "max batch", "seq/s", "p50 ms", "p99 ms", "mean batch");
        base = null;
        dyn16 = null;
      }
      if (r.clients() == 0 && base == null) {
        base = r;
      }
      if (r.clients() == 16 && r.maxBatch() > 1) {
        dyn16 = r;
      }
      out.printf(
          "%-30s %7s %9d %7.1f %9s %9s %10.1f%s%n",
          r.mode(),
          r.clients() == 0 ? "-" : Integer.toString(r.clients()),
          r.maxBatch(),
          r.seqPerSec(),
          Double.isNaN(r.p50Ms()) ? "-" : String.format("%.1f", r.p50Ms()),
          Double.isNaN(r.p99Ms()) ? "-" : String.format("%.1f", r.p99Ms()),
          r.meanBatch(),
          base == null || r == base
              ? ""
              : String.format(
                  "   %.2fx in-process batch %d",
                  r.seqPerSec() / base.seqPerSec(), base.maxBatch()));
      if (r.clients() == 16 && r.maxBatch() == 1 && dyn16 != null) {
        out.printf(
            "dynamic batching over --max-batch 1 at 16 clients: %.2fx throughput%n",
            dyn16.seqPerSec() / r.seqPerSec());
      }
    }
  }

  /** The results as JSON rows. */
  public static ArrayNode toJson(List<Result> results) {
    ArrayNode a = JsonNodeFactory.instance.arrayNode();
    for (Result r : results) {
      ObjectNode o = a.addObject();
      o.put("preset", r.preset());
      o.put("mode", r.mode());
      o.put("clients", r.clients());
      o.put("max_batch", r.maxBatch());
      o.put("requests", r.requests());
      o.put("seq_per_sec", r.seqPerSec());
      if (!Double.isNaN(r.p50Ms())) {
        o.put("p50_ms", r.p50Ms());
        o.put("p99_ms", r.p99Ms());
      }
      o.put("mean_batch", r.meanBatch());
    }
    return a;
  }
}
