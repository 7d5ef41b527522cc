package dev.rewardensemble.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.serving.SavedModelScorer;
import dev.rewardensemble.testing.Cli;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code rme serve}'s server on ephemeral ports: both protocols against {@code rme score} and the
 * exported SavedModel, concurrency, overload, authentication, bad requests, graceful close.
 */
class RewardServerTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

  @TempDir static Path tmp;
  static ServeModels models;
  static RewardModel saved; // the SavedModel, as rme serve --model savedmodels/rm/1 loads it
  static RewardModel graph; // the same ensemble as a graph
  static Tokenizer tok;

  @BeforeAll
  static void load() throws IOException {
    models = new ServeModels(tmp);
    saved = RewardModel.load(models.savedModel);
    graph = RewardModel.of(models.ensemble, ExecConfig.deterministic());
    tok = Tokenizer.load(models.tokDir);
  }

  @AfterAll
  static void close() {
    saved.close();
    graph.close();
    tok.close();
  }

  record Reply(int status, String body, java.net.http.HttpHeaders headers) {
    JsonNode json() throws IOException {
      return JSON.readTree(body);
    }
  }

  static Reply send(HttpRequest.Builder b) throws IOException, InterruptedException {
    HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    return new Reply(r.statusCode(), r.body(), r.headers());
  }

  static Reply post(RewardServer s, String path, String body, String... headers)
      throws IOException, InterruptedException {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(s.address() + path))
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .timeout(Duration.ofSeconds(60));
    if (headers.length > 0) {
      b.headers(headers);
    }
    return send(b);
  }

  static Reply get(RewardServer s, String path, String... headers)
      throws IOException, InterruptedException {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(s.address() + path))
            .GET()
            .timeout(Duration.ofSeconds(60));
    if (headers.length > 0) {
      b.headers(headers);
    }
    return send(b);
  }

  static ServeOptions opts(RewardModel m) {
    return ServeOptions.defaults("rm", m.aggregation()).withPort(0).withBatching(16, 5, 1024);
  }

  static RewardServer start(RewardModel m, ServeOptions o) throws IOException {
    return RewardServer.start(m, ServeModels.encoder(tok, m.config().maxPositions()), o);
  }

  /** Rows of every form rme score reads: ids, prompt/response text, conversations. */
  static List<String> scoreRows() {
    return List.of(
        "{\"id\": \"a\", \"prompt\": \"Add 17 and 25.\", \"response\": \"17 + 25 = 42.\"}",
        "{\"id\": 2, \"input_ids\": [5, 9, 33, 200, 7]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi there\"},"
            + " {\"role\": \"assistant\", \"content\": \"hello!\"}]}",
        "",
        "{\"prompt\": \"Reverse the word 'reward'.\", \"response\": \"drawer\", \"other\": 1}",
        "{\"input_ids\": [1, 2, 3]}",
        "{\"input_ids\": [300, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]}");
  }

  /** {@code rme score}'s output lines for {@code rows} on {@code model}. */
  static List<JsonNode> rmeScore(Path model, List<String> rows, String... more) throws IOException {
    Path in = Files.createTempFile(tmp, "rows", ".jsonl");
    Path out = Files.createTempFile(tmp, "out", ".jsonl");
    Files.write(in, rows);
    List<String> args =
        new ArrayList<>(
            List.of(
                "score",
                "--model",
                model.toString(),
                "--tokenizer",
                models.tokDir.resolve("tokenizer.json").toString(),
                "--data",
                in.toString(),
                "--out",
                out.toString()));
    args.addAll(List.of(more));
    Cli.Run r = Cli.rme(args.toArray(String[]::new));
    assertEquals(0, r.code(), r.err());
    List<JsonNode> lines = new ArrayList<>();
    for (String l : Files.readAllLines(out)) {
      lines.add(JSON.readTree(l));
    }
    return lines;
  }

  @Test
  void everyProtocolAnswersWhatRmeScoreWrites() throws Exception {
    List<JsonNode> want = rmeScore(models.savedModel, scoreRows());
    try (RewardServer s = start(saved, opts(saved))) {
      // native: the same JSONL body gives the same output rows, number for number
      Reply r = post(s, "/v1/score", String.join("\n", scoreRows()));
      assertEquals(200, r.status(), r.body());
      List<JsonNode> got = new ArrayList<>();
      for (String l : r.body().split("\n")) {
        got.add(JSON.readTree(l));
      }
      assertEquals(want, got);
      // and as a JSON array: line = position
      ArrayNode arr = JSON.createArrayNode();
      for (String row : scoreRows()) {
        if (!row.isEmpty()) {
          arr.add(JSON.readTree(row));
        }
      }
      JsonNode asArray = post(s, "/v1/score", arr.toString()).json();
      assertEquals(want.size(), asArray.size());
      for (int i = 0; i < want.size(); i++) {
        ObjectNode w = ((ObjectNode) want.get(i).deepCopy()).put("line", i + 1);
        assertEquals(w, asArray.get(i));
      }

      // TF Serving row format on the ids rme score scored
      List<String> idRows = new ArrayList<>();
      ArrayNode instances = JSON.createArrayNode();
      for (int[] ids :
          List.of(new int[] {5, 9, 33, 200, 7}, new int[] {1, 2, 3}, new int[] {4, 4, 4, 4})) {
        idRows.add("{\"input_ids\": " + Arrays.toString(ids) + "}");
        ObjectNode inst = instances.addObject();
        inst.set("input_ids", JSON.valueToTree(ids));
        inst.set("attention_mask", JSON.valueToTree(ones(ids.length)));
      }
      List<JsonNode> wantIds = rmeScore(models.savedModel, idRows);
      JsonNode pred = post(s, "/v1/models/rm:predict", "{\"instances\": " + instances + "}").json();
      for (int i = 0; i < wantIds.size(); i++) {
        JsonNode p = pred.get("predictions").get(i);
        assertEquals(wantIds.get(i).get("reward"), p.get("reward"));
        assertEquals(wantIds.get(i).get("members"), p.get("members"));
        assertEquals(wantIds.get(i).get("mean"), p.get("mean"));
        assertEquals(wantIds.get(i).get("std"), p.get("std"));
        assertEquals(
            (float) (p.get("mean").asDouble() - 0.5 * p.get("std").asDouble()),
            p.get("lcb").floatValue(),
            1e-6);
      }

      // OpenRLHF: query texts as serve_rm.py prepares them (stripped of pad/EOS runs at both
      // ends, one EOS appended: QueryText); conversations with the chat template
      String text = "Human: What is 2+2? Assistant: 4";
      String conv =
          "[{\"role\": \"user\", \"content\": \"What is 2+2?\"},"
              + " {\"role\": \"assistant\", \"content\": \"4\"}]";
      List<JsonNode> wantQ =
          rmeScore(
              models.savedModel,
              List.of(
                  "{\"input_ids\": " + Arrays.toString(tok.encode(text + "</s>")) + "}",
                  "{\"messages\": " + conv + "}"));
      JsonNode g =
          post(
                  s,
                  "/get_reward",
                  "{\"query\": ["
                      + JSON.writeValueAsString(text)
                      + ", "
                      + conv
                      + "], \"prompts\": [\"p\", \"q\"], \"labels\": [null, null]}")
              .json();
      for (int i = 0; i < 2; i++) {
        assertEquals(wantQ.get(i).get("reward"), g.get("rewards").get(i));
        assertEquals(wantQ.get(i).get("reward"), g.get("scores").get(i));
        assertEquals(wantQ.get(i).get("std"), g.get("extra_logs").get("reward_std").get(i));
        assertEquals(wantQ.get(i).get("members"), g.get("extra_logs").get("members").get(i));
      }
    }
  }

  static int[] ones(int n) {
    int[] a = new int[n];
    Arrays.fill(a, 1);
    return a;
  }

  @Test
  void tfServingAnswersEqualTheExportedSavedModel() throws Exception {
    // a padded batch as a TF Serving client sends it: right and left padding, equal lengths
    int[][] ids = {{5, 9, 33, 200, 7, 0, 0}, {0, 0, 1, 2, 3, 4, 5}, {8, 8, 9, 10, 11, 12, 13}};
    int[][] mask = {{1, 1, 1, 1, 1, 0, 0}, {0, 0, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1}};
    int b = ids.length;
    int t = ids[0].length;
    Map<String, float[]> want;
    try (SavedModelScorer sm = SavedModelScorer.load(models.savedModel)) {
      want = sm.outputs(flat(ids), flat(mask), b, t);
    }
    try (RewardServer s = start(graph, opts(graph))) {
      ArrayNode inst = JSON.createArrayNode();
      for (int i = 0; i < b; i++) {
        ObjectNode o = inst.addObject();
        o.set("input_ids", JSON.valueToTree(ids[i]));
        o.set("attention_mask", JSON.valueToTree(mask[i]));
      }
      Reply rows = post(s, "/v1/models/rm/versions/1:predict", "{\"instances\": " + inst + "}");
      assertEquals(200, rows.status(), rows.body());
      Reply cols =
          post(
              s,
              "/v1/models/rm:predict",
              "{\"signature_name\": \"serving_default\", \"inputs\": {\"input_ids\": "
                  + JSON.writeValueAsString(ids)
                  + ", \"attention_mask\": "
                  + JSON.writeValueAsString(mask)
                  + "}}");
      assertEquals(200, cols.status(), cols.body());
      JsonNode out = cols.json().get("outputs");
      assertEquals(
          List.of("reward", "members", "mean", "std", "lcb"), names(out), "the signature's names");
      for (String k : List.of("reward", "mean", "std", "lcb")) {
        for (int i = 0; i < b; i++) {
          float w = want.get(k)[i];
          assertEquals(w, out.get(k).get(i).floatValue(), 1e-5 * Math.max(1, Math.abs(w)), k);
          JsonNode p = rows.json().get("predictions").get(i);
          assertEquals(List.of("reward", "members", "mean", "std", "lcb"), names(p));
          assertEquals(w, p.get(k).floatValue(), 1e-5 * Math.max(1, Math.abs(w)), k);
        }
      }
      for (int i = 0; i < b; i++) {
        for (int j = 0; j < ServeModels.K; j++) {
          float w = want.get("members")[i * ServeModels.K + j];
          assertEquals(w, out.get("members").get(i).get(j).floatValue(), 1e-5);
        }
      }
      // status and metadata as TF Serving shows them
      JsonNode st = get(s, "/v1/models/rm").json();
      assertEquals("AVAILABLE", st.at("/model_version_status/0/state").asText());
      assertEquals("1", st.at("/model_version_status/0/version").asText());
      assertEquals(200, get(s, "/v1/models/rm/versions/1").status());
      JsonNode md = get(s, "/v1/models/rm/metadata").json();
      JsonNode sig = md.at("/metadata/signature_def/signature_def/serving_default");
      assertEquals("tensorflow/serving/predict", sig.get("method_name").asText());
      assertEquals(List.of("input_ids", "attention_mask"), names(sig.get("inputs")));
      assertEquals("DT_INT32", sig.at("/inputs/input_ids/dtype").asText());
      assertEquals(List.of("reward", "members", "mean", "std", "lcb"), names(sig.get("outputs")));
      // other names and versions: 404 with TF Serving's error body
      Reply nf = post(s, "/v1/models/other:predict", "{\"instances\": [{\"input_ids\": [1]}]}");
      assertEquals(404, nf.status());
      assertTrue(nf.json().get("error").asText().contains("other"), nf.body());
      assertEquals(404, get(s, "/v1/models/rm/versions/2").status());
    }
  }

  @Test
  void aSingleModelsAnswersOmitTheOutputName() throws Exception {
    try (RewardModel one = RewardModel.load(ServeModels.SINGLE);
        RewardServer s = start(one, opts(one))) {
      List<JsonNode> want =
          rmeScore(
              ServeModels.SINGLE,
              List.of("{\"input_ids\": [5, 9, 33]}", "{\"input_ids\": [7, 8, 9, 10, 11]}"));
      JsonNode p =
          post(
                  s,
                  "/v1/models/rm:predict",
                  "{\"instances\": [{\"input_ids\": [5, 9, 33], \"attention_mask\": [1, 1, 1]},"
                      + " {\"input_ids\": [7, 8, 9, 10, 11]}]}")
              .json();
      assertEquals(want.get(0).get("reward"), p.get("predictions").get(0));
      assertEquals(want.get(1).get("reward"), p.get("predictions").get(1));
      JsonNode c =
          post(s, "/v1/models/rm:predict", "{\"inputs\": {\"input_ids\": [[5, 9, 33]]}}").json();
      // a batch of one row instead of rme score's two: equal within float32 rounding
      assertClose(want.get(0).get("reward"), c.get("outputs").get(0), "outputs[0]");
      JsonNode md = get(s, "/v1/models/rm/metadata").json();
      assertEquals(
          List.of("reward"),
          names(md.at("/metadata/signature_def/signature_def/serving_default/outputs")));
    }
  }

  @Test
  void sixteenConcurrentClientsGetTheSerialAnswers() throws Exception {
    try (RewardServer s = start(graph, opts(graph).withBatching(8, 5, 1024))) {
      List<String> bodies = new ArrayList<>();
      java.util.Random r = new java.util.Random(3);
      for (int i = 0; i < 32; i++) {
        int n = 1 + r.nextInt(3);
        ArrayNode inst = JSON.createArrayNode();
        for (int j = 0; j < n; j++) {
          int[] ids = new int[2 + r.nextInt(30)];
          for (int q = 0; q < ids.length; q++) {
            ids[q] = 3 + r.nextInt(300);
          }
          inst.addObject().set("input_ids", JSON.valueToTree(ids));
        }
        bodies.add("{\"instances\": " + inst + "}");
      }
      List<JsonNode> serial = new ArrayList<>();
      for (String b : bodies) {
        serial.add(post(s, "/v1/models/rm:predict", b).json());
      }
      ExecutorService pool = Executors.newFixedThreadPool(16);
      try {
        List<Future<JsonNode>> got = new ArrayList<>();
        for (int rep = 0; rep < 2; rep++) {
          for (String b : bodies) {
            got.add(
                pool.submit(
                    () -> {
                      Reply x = post(s, "/v1/models/rm:predict", b);
                      assertEquals(200, x.status(), x.body());
                      return x.json();
                    }));
          }
        }
        for (int i = 0; i < got.size(); i++) {
          assertClose(serial.get(i % bodies.size()), got.get(i).get(), "request " + i);
        }
      } finally {
        pool.shutdownNow();
      }
      assertTrue(
          metric(get(s, "/metrics").body(), "rme_batch_size_count") < 64 + 32,
          "concurrent requests were batched together");
    }
  }

  /** Equal numbers within float32 rounding of a different batch composition. */
  static void assertClose(JsonNode want, JsonNode got, String what) {
    if (want.isNumber()) {
      assertTrue(got.isNumber(), what + ": " + got);
      double w = want.asDouble();
      assertEquals(w, got.asDouble(), 1e-5 * Math.max(1, Math.abs(w)), what);
      return;
    }
    assertEquals(want.size(), got.size(), what);
    if (want.isObject()) {
      assertEquals(names(want), names(got), what);
      for (String k : names(want)) {
        assertClose(want.get(k), got.get(k), what + "." + k);
      }
    } else {
      for (int i = 0; i < want.size(); i++) {
        assertClose(want.get(i), got.get(i), what + "[" + i + "]");
      }
    }
  }

  @Test
  void aFullQueueAnswers503AtOnceAndTheServerRecovers() throws Exception {
    // the batcher waits 1.5 s for a batch of 64: two one-row requests fill a queue of 2
    try (RewardServer s = start(graph, opts(graph).withBatching(64, 1500, 2))) {
      String one = "{\"instances\": [{\"input_ids\": [1, 2, 3]}]}";
      CompletableFuture<Reply> a = async(() -> post(s, "/v1/models/rm:predict", one));
      CompletableFuture<Reply> b = async(() -> post(s, "/v1/models/rm:predict", one));
      waitFor(() -> depth(s) == 2);
      long t0 = System.nanoTime();
      Reply full = post(s, "/v1/models/rm:predict", one);
      assertEquals(503, full.status(), full.body());
      assertTrue(full.json().get("error").asText().contains("--max-queue 2"), full.body());
      assertTrue(System.nanoTime() - t0 < 1_000_000_000L, "refused at once, not after the wait");
      Reply big =
          post(
              s,
              "/v1/models/rm:predict",
              "{\"instances\": [{\"input_ids\": [1]}, {\"input_ids\": [2]}, {\"input_ids\": [3]}]}");
      assertEquals(413, big.status(), big.body());
      assertEquals(200, a.get().status());
      assertEquals(200, b.get().status());
      assertEquals(200, post(s, "/v1/models/rm:predict", one).status(), "recovered");
      assertTrue(
          get(s, "/metrics")
              .body()
              .contains("rme_requests_total{code=\"503\",route=\"predict\"} 1"));
    }
  }

  interface Call {
    Reply call() throws Exception;
  }

  static CompletableFuture<Reply> async(Call c) {
    return CompletableFuture.supplyAsync(
        () -> {
          try {
            return c.call();
          } catch (Exception e) {
            throw new RuntimeException(e);
          }
        });
  }

  static int depth(RewardServer s) {
    try {
      return get(s, "/health").json().get("queue_depth").asInt();
    } catch (Exception e) {
      throw new RuntimeException(e);
    }
  }

  static void waitFor(java.util.function.BooleanSupplier cond) throws InterruptedException {
    long end = System.nanoTime() + 10_000_000_000L;
    while (!cond.getAsBoolean()) {
      assertTrue(System.nanoTime() < end, "timed out");
      Thread.sleep(10);
    }
  }

  @Test
  void aTokenIsRequiredWhenConfigured() throws Exception {
    try (RewardServer s = start(graph, opts(graph).withToken("s3cret-Token"))) {
      String body = "{\"instances\": [{\"input_ids\": [1, 2, 3]}]}";
      Reply none = post(s, "/v1/models/rm:predict", body);
      assertEquals(401, none.status());
      assertTrue(none.json().get("error").asText().contains("bearer token"));
      assertEquals("Bearer", none.headers().firstValue("WWW-Authenticate").orElse(""));
      assertEquals(
          401, post(s, "/v1/models/rm:predict", body, "Authorization", "Bearer s3cret").status());
      assertEquals(
          401,
          post(s, "/v1/models/rm:predict", body, "Authorization", "Basic s3cret-Token").status());
      assertEquals(401, get(s, "/metrics").status());
      assertEquals(401, get(s, "/health").status());
      assertEquals(
          200,
          post(s, "/v1/models/rm:predict", body, "Authorization", "Bearer s3cret-Token").status());
      assertEquals(200, get(s, "/health", "Authorization", "bearer s3cret-Token").status());
    }
  }

  @Test
  void badRequestsGet4xxNamingTheFieldAndNeverHarmOthers() throws Exception {
    try (RewardServer s =
        start(graph, opts(graph).withBatching(16, 400, 1024).withMaxRequestBytes(4096))) {
      // good requests wait in the batcher while the bad ones arrive
      String good = "{\"instances\": [{\"input_ids\": [5, 6, 7]}]}";
      List<CompletableFuture<Reply>> inFlight = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        inFlight.add(async(() -> post(s, "/v1/models/rm:predict", good)));
      }
      String[][] cases = {
        {"/v1/models/rm:predict", "{\"instances\": [", "400", "invalid JSON"},
        {"/v1/models/rm:predict", "[1, 2]", "400", "body: expected a JSON object"},
        {"/v1/models/rm:predict", "{}", "400", "exactly one of"},
        {
          "/v1/models/rm:predict",
          "{\"instances\": [{\"input_ids\": \"abc\"}]}",
          "400",
          "instances[0].input_ids: expected an array"
        },
        {
          "/v1/models/rm:predict",
          "{\"instances\": [{\"input_ids\": [1, 2.5]}]}",
          "400",
          "instances[0].input_ids: element 1 is not an int"
        },
        {
          "/v1/models/rm:predict",
          "{\"instances\": [{\"input_ids\": [1, 2]}, {\"input_ids\": [1, 320]}]}",
          "400",
          "instances[1].input_ids: element 1 is 320, outside the vocabulary [0, 320)"
        },
        {
          "/v1/models/rm:predict",
          "{\"instances\": [{\"input_ids\": [-1]}]}",
          "400",
          "outside the vocabulary"
        },
        {
          "/v1/models/rm:predict",
          "{\"instances\": [{\"input_ids\": [1, 2], \"attention_mask\": [1]}]}",
          "400",
          "instances[0].attention_mask: 1 values for 2 input_ids"
        },
        {
          "/v1/models/rm:predict",
          "{\"instances\": [{\"input_ids\": [1], \"mask\": [1]}]}",
          "400",
          "instances[0].mask: unknown input"
        },
        {
          "/v1/models/rm:predict",
          "{\"inputs\": {\"input_ids\": [[1, 2]], \"attention_mask\": [[0, 0]]}}",
          "400",
          "no token is attended"
        },
        {
          "/v1/models/rm:predict",
          "{\"instances\": [{\"input_ids\": " + Arrays.toString(new int[257]) + "}]}",
          "400",
          "257 tokens, more than the model's 256 positions"
        },
        {"/get_reward", "{\"query\": \"text\"}", "400", "query: expected an array, got a string"},
        {"/get_reward", "{\"query\": [\"ok\", 3]}", "400", "query[1]: expected a string or a list"},
        {"/get_reward", "{\"query\": [\"\"]}", "400", "query[0]: empty text"},
        {"/get_reward", "{\"query\": [[{\"role\": 1}]]}", "400", "query[0]:"},
        {
          "/v1/score",
          "{\"input_ids\": [1]}\n{\"prompt\": 5, \"response\": \"x\"}",
          "400",
          "line 2: prompt: expected a string"
        },
        {"/v1/score", "{\"input_ids\": [999]}", "400", "line 1: input_ids:"},
        {
          "/v1/models/rm:predict",
          "{\"instances\": [{\"input_ids\": " + "[1, 2, 3, 4, 5, 6, 7, 8, 9],".repeat(200) + "]}",
          "413",
          "more than --max-request-bytes 4096"
        },
      };
      for (String[] c : cases) {
        Reply r = post(s, c[0], c[1]);
        assertEquals(Integer.parseInt(c[2]), r.status(), c[1] + " -> " + r.body());
        String err = r.json().get("error").asText();
        assertTrue(err.contains(c[3]), c[1] + " -> " + err);
        assertTrue(!err.contains("\n"), "one line: " + err);
      }
      assertEquals(405, get(s, "/v1/models/rm:predict").status());
      assertEquals(404, get(s, "/nothing/here").status());
      for (CompletableFuture<Reply> f : inFlight) {
        assertEquals(200, f.get().status(), "requests in flight are untouched");
      }
      assertEquals(200, get(s, "/health").status());
      assertEquals(200, post(s, "/v1/models/rm:predict", good).status());
    }
  }

  @Test
  void closeFinishesTheRequestsInFlight() throws Exception {
    RewardServer s = start(graph, opts(graph).withBatching(64, 800, 1024));
    String address = s.address();
    String good = "{\"instances\": [{\"input_ids\": [5, 6, 7]}]}";
    List<CompletableFuture<Reply>> inFlight = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      inFlight.add(async(() -> post(s, "/v1/models/rm:predict", good)));
    }
    waitFor(() -> depth(s) == 4);
    s.close();
    for (CompletableFuture<Reply> f : inFlight) {
      Reply r = f.get();
      assertEquals(200, r.status(), r.body());
      assertEquals(ServeModels.K, r.json().at("/predictions/0/members").size());
    }
    try {
      Reply r = send(HttpRequest.newBuilder(URI.create(address + "/health")));
      throw new AssertionError("still serving after close: " + r.status());
    } catch (IOException expected) {
      // connection refused
    }
  }

  @Test
  void metricsCountRequestsBatchesLatencyAndQueueDepth() throws Exception {
    try (RewardServer s = start(graph, opts(graph))) {
      post(s, "/v1/models/rm:predict", "{\"instances\": [{\"input_ids\": [1, 2]}]}");
      post(s, "/v1/models/rm:predict", "{\"instances\": [{\"input_ids\": [1, 2]}]}");
      post(s, "/v1/models/rm:predict", "{");
      Reply m = get(s, "/metrics");
      assertEquals(200, m.status());
      assertTrue(m.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"));
      String t = m.body();
      assertEquals(2, metric(t, "rme_requests_total{code=\"200\",route=\"predict\"}"), t);
      assertEquals(1, metric(t, "rme_requests_total{code=\"400\",route=\"predict\"}"), t);
      assertEquals(2, metric(t, "rme_batch_size_count"), t);
      assertEquals(2, metric(t, "rme_batch_size_sum"), t);
      assertEquals(2, metric(t, "rme_sequences_total"), t);
      assertEquals(3, metric(t, "rme_request_duration_seconds_count{route=\"predict\"}"), t);
      assertEquals(0, metric(t, "rme_queue_depth"), t);
    }
  }

  /** The value of the sample line starting with {@code name} (name and labels). */
  static double metric(String text, String name) {
    for (String l : text.split("\n")) {
      if (l.startsWith(name + " ")) {
        return Double.parseDouble(l.substring(name.length() + 1).trim());
      }
    }
    throw new AssertionError("no " + name + " in\n" + text);
  }

  static List<String> names(JsonNode o) {
    List<String> n = new ArrayList<>();
    o.fieldNames().forEachRemaining(n::add);
    return n;
  }

  static int[] flat(int[][] a) {
    return Arrays.stream(a).flatMapToInt(Arrays::stream).toArray();
  }
}
