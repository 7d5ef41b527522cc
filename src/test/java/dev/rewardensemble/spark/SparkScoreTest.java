package dev.rewardensemble.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.Fixtures;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.apache.spark.TaskFailedReason;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code rme spark-score} in Spark's local mode ({@code local[2,2]}: two task threads, a failed
 * task is retried once), against {@code rme score} and {@code rme best-of-n --pool-in} on the same
 * rows. One Spark session for the class.
 */
class SparkScoreTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path tmp;
  static SparkSession spark;
  static Path independent;
  static Path linear;

  @BeforeAll
  static void start() throws Exception {
    spark =
        SparkSession.builder()
            .master("local[2,2]")
            .appName("SparkScoreTest")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.adaptive.enabled", "false")
            .getOrCreate();
    Path syn = tmp.resolve("syn.jsonl");
    Files.write(
        syn, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(48, 64, 6, 12, 3, 5)));
    independent = train(syn, "independent");
    linear = train(syn, "linear");
  }

  @AfterAll
  static void stop() {
    if (spark != null) {
      spark.stop();
    }
  }

  private static Path train(Path data, String kind) {
    Path out = tmp.resolve("run-" + kind);
    Cli.Run r =
        Cli.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            data.toString(),
            "--out",
            out.toString(),
            "--ensemble",
            kind,
            "--k",
            "2",
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--grad-accum",
            "1",
            "--lr",
            "1e-3",
            "--eval-fraction",
            "0.25");
    assertEquals(0, r.code(), kind + ": " + r.err());
    return out;
  }

  private static List<String> loraMembers() {
    Path lora = Fixtures.dir("llama-lora");
    return List.of(
        lora.resolve("member0").toString(),
        lora.resolve("member1").toString(),
        lora.resolve("member2").toString());
  }

  /** Id rows of lengths 3..40 (sorted into different batches), ids in [3, 64), with an "id". */
  private static Path idRows(String name, int n, long seed) throws IOException {
    Random rng = new Random(seed);
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      ObjectNode o = JSON.createObjectNode();
      o.put("id", "r" + i);
      var ids = o.putArray("input_ids");
      int len = 3 + rng.nextInt(38);
      for (int j = 0; j < len; j++) {
        ids.add(3 + rng.nextInt(61));
      }
      o.put("extra", i * 10);
      lines.add(JSON.writeValueAsString(o));
    }
    Path p = tmp.resolve(name);
    Files.write(p, lines);
    return p;
  }

  /** Every row of a Spark output directory (JSON part files), by "id". */
  static Map<String, JsonNode> readDir(Path dir) throws IOException {
    assertTrue(Files.exists(dir.resolve("_SUCCESS")), dir + " has no _SUCCESS");
    Map<String, JsonNode> rows = new HashMap<>();
    List<JsonNode> all = readAll(dir);
    for (JsonNode r : all) {
      assertTrue(rows.put(r.get("id").asText(), r) == null, "duplicate id " + r.get("id"));
    }
    return rows;
  }

  static List<JsonNode> readAll(Path dir) throws IOException {
    List<JsonNode> all = new ArrayList<>();
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p :
          s.filter(f -> f.getFileName().toString().startsWith("part-")).sorted().toList()) {
        for (String line : Files.readAllLines(p)) {
          if (!line.isBlank()) {
            all.add(JSON.readTree(line));
          }
        }
      }
    }
    return all;
  }

  static Map<String, JsonNode> byId(Path jsonl) throws IOException {
    Map<String, JsonNode> rows = new HashMap<>();
    for (String line : Files.readAllLines(jsonl)) {
      JsonNode r = JSON.readTree(line);
      rows.put(r.get("id").asText(), r);
    }
    return rows;
  }

  private static void assertSameScores(
      Map<String, JsonNode> want, Map<String, JsonNode> got, String what) {
    assertEquals(want.keySet(), got.keySet(), what);
    for (String id : want.keySet()) {
      JsonNode w = want.get(id);
      JsonNode g = got.get(id);
      for (String f : List.of("reward", "mean", "std")) {
        assertEquals(w.has(f), g.has(f), what + " " + id + " " + f);
        if (w.has(f)) {
          assertEquals(w.get(f).asDouble(), g.get(f).asDouble(), 1e-5, what + " " + id + " " + f);
        }
      }
      for (String f : List.of("members", "members_standardized")) {
        assertEquals(w.has(f), g.has(f), what + " " + id + " " + f + ": " + g);
        if (w.has(f)) {
          Fixtures.assertClose(
              Fixtures.floats(w.get(f)), Fixtures.floats(g.get(f)), 1e-5, 1e-5, what + " " + f);
        }
      }
    }
  }

  private static List<String> modelArgs(String kind) {
    return switch (kind) {
      case "single" -> List.of("--model", Fixtures.dir("llama-seqcls").toString());
      case "lora" ->
          List.of(
              "--model",
              Fixtures.dir("llama-seqcls").toString(),
              "--lora",
              String.join(",", loraMembers()));
      case "independent" -> List.of("--model", independent.toString());
      case "linear" -> List.of("--model", linear.toString());
      default -> throw new IllegalArgumentException(kind);
    };
  }

  private static Cli.Run rme(List<String> a, String... more) {
    List<String> all = new ArrayList<>(a);
    all.addAll(List.of(more));
    return Cli.rme(all.toArray(String[]::new));
  }

  @Test
  void everyEnsembleKindScoresAsRmeScoreDoesInJsonlAndParquet() throws Exception {
    Path rows = idRows("rows.jsonl", 40, 1);
    // the same rows as Parquet, in two files
    Path parquet = tmp.resolve("rows-parquet");
    spark.read().json(rows.toString()).repartition(2).write().parquet(parquet.toString());
    for (String kind : List.of("single", "lora", "independent", "linear")) {
      List<String> agg =
          kind.equals("single") ? List.of() : List.of("--aggregation", "lcb", "--beta", "0.5");
      Path want = tmp.resolve("want-" + kind + ".jsonl");
      List<String> score = new ArrayList<>(List.of("score"));
      score.addAll(modelArgs(kind));
      score.addAll(agg);
      Cli.Run r =
          rme(score, "--data", rows.toString(), "--out", want.toString(), "--batch-size", "4");
      assertEquals(0, r.code(), r.err());

      List<String> ss = new ArrayList<>(List.of("spark-score"));
      ss.addAll(modelArgs(kind));
      ss.addAll(agg);
      Path out = tmp.resolve("spark-" + kind);
      r =
          rme(
              ss,
              "--data",
              rows.toString(),
              "--out",
              out.toString(),
              "--batch-size",
              "4",
              "--chunk-rows",
              "7");
      assertEquals(0, r.code(), r.err());
      Map<String, JsonNode> got = readDir(out);
      assertSameScores(byId(want), got, kind + " jsonl");
      JsonNode any = got.get("r3");
      assertEquals(30, any.get("extra").asInt(), "input columns pass through");
      assertTrue(any.has("input_ids"));
      if (!kind.equals("single")) {
        assertEquals("lcb(0.5)", any.get("aggregation").asText());
      }

      if (!kind.equals("lora")) {
        continue; // Parquet once: the format does not depend on the kind
      }
      // Parquet in, Parquet out: read back with Spark and compare the same way
      Path pout = tmp.resolve("spark-" + kind + "-parquet");
      r = rme(ss, "--data", parquet.toString(), "--out", pout.toString(), "--format", "parquet");
      assertEquals(0, r.code(), r.err());
      assertTrue(Files.exists(pout.resolve("_SUCCESS")));
      Path back = tmp.resolve("spark-" + kind + "-back");
      spark.read().parquet(pout.toString()).write().json(back.toString());
      assertSameScores(byId(want), readDir(back), kind + " parquet");
    }
  }

  @Test
  void textAndConversationRowsUseTheModelsTokenizerAndTemplates() throws Exception {
    // the example model with Mistral's chat template beside its tokenizer
    Path model = tmp.resolve("chat-rm");
    Files.createDirectories(model);
    try (Stream<Path> files = Files.list(Path.of("examples/tiny-llama-rm"))) {
      for (Path f : files.toList()) {
        Files.copy(f, model.resolve(f.getFileName()));
      }
    }
    String template =
        Files.readString(Path.of("src/test/resources/chat-templates/templates/mistral.jinja"));
    Files.writeString(
        model.resolve("tokenizer_config.json"),
        JSON.writeValueAsString(
            Map.of("bos_token", "<s>", "eos_token", "</s>", "chat_template", template)));
    List<String> lines = new ArrayList<>(Files.readAllLines(Path.of("examples/score.jsonl")));
    lines.add(
        "{\"id\": \"chat1\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
            + " {\"role\": \"user\", \"content\": \"hi there\"}, {\"role\": \"assistant\","
            + " \"content\": \"hello!\"}]}");
    lines.add(
        "{\"id\": \"chat2\", \"messages\": [{\"role\": \"user\", \"content\": \"2+2?\"},"
            + " {\"role\": \"assistant\", \"content\": \"4\"}]}");
    Path data = tmp.resolve("text-and-chat.jsonl");
    Files.write(data, lines);
    Path want = tmp.resolve("text-want.jsonl");
    Cli.Run r =
        Cli.rme(
            "score",
            "--model",
            model.toString(),
            "--data",
            data.toString(),
            "--out",
            want.toString());
    assertEquals(0, r.code(), r.err());
    Path out = tmp.resolve("text-spark");
    r =
        Cli.rme(
            "spark-score",
            "--model",
            model.toString(),
            "--data",
            data.toString(),
            "--out",
            out.toString());
    assertEquals(0, r.code(), r.err());
    Map<String, JsonNode> got = readDir(out);
    assertEquals(6, got.size());
    assertSameScores(byId(want), got, "text and conversation rows");
    assertEquals("Add 17 and 25.", got.get("a").get("prompt").asText());
    assertEquals("hello!", got.get("chat1").get("messages").get(2).get("content").asText());
  }

  /** A pool as rme best-of-n --candidates-out writes it: 3 prompts x 5 candidates. */
  private static Path pool() throws IOException {
    Random rng = new Random(7);
    List<String> lines = new ArrayList<>();
    for (int p = 0; p < 3; p++) {
      int[] prompt = {1, 10 + p, 20 + p, 30};
      for (int j = 0; j < 5; j++) {
        ObjectNode o = JSON.createObjectNode();
        o.put("id", "p" + p);
        o.put("line", p + 1);
        o.put("prompt", "prompt " + p);
        o.put("response", "response " + j);
        o.set("prompt_ids", JSON.valueToTree(prompt));
        int len = 2 + rng.nextInt(8);
        int[] resp = new int[len];
        for (int t = 0; t < len; t++) {
          resp[t] = 3 + rng.nextInt(300);
        }
        if (j % 2 == 0) {
          resp[len - 1] = 2; // EOS: not scored
        }
        o.set("response_ids", JSON.valueToTree(resp));
        o.set("token_logprobs", JSON.valueToTree(new float[len]));
        o.put("eos_token_id", 2);
        o.put("index", j);
        o.put("finished", j % 2 == 0);
        o.put("reward", 99.0); // an old score: replaced
        lines.add(JSON.writeValueAsString(o));
      }
    }
    Path p = tmp.resolve("pool.jsonl");
    Files.write(p, lines);
    return p;
  }

  @Test
  void bestOfNSelectsWhatRmeBestOfNSelectsAndThresholdRejects() throws Exception {
    Path pool = pool();
    for (String[] agg : List.of(new String[] {"lcb", "--beta", "1.0"}, new String[] {"min"})) {
      List<String> aggArgs = new ArrayList<>(List.of("--aggregation"));
      aggArgs.addAll(List.of(agg));
      Path want = tmp.resolve("bon-want-" + agg[0] + ".jsonl");
      Path wantCands = tmp.resolve("bon-want-cands-" + agg[0] + ".jsonl");
      List<String> bon =
          new ArrayList<>(
              List.of(
                  "best-of-n",
                  "--pool-in",
                  pool.toString(),
                  "--reward-model",
                  Fixtures.dir("llama-seqcls").toString(),
                  "--lora",
                  String.join(",", loraMembers())));
      bon.addAll(aggArgs);
      Cli.Run r = rme(bon, "--out", want.toString(), "--candidates-out", wantCands.toString());
      assertEquals(0, r.code(), r.err());

      List<String> ss = new ArrayList<>(List.of("spark-score"));
      ss.addAll(modelArgs("lora"));
      ss.addAll(aggArgs);
      Path out = tmp.resolve("bon-" + agg[0]);
      Path cands = tmp.resolve("bon-cands-" + agg[0]);
      r =
          rme(
              ss,
              "--data",
              pool.toString(),
              "--out",
              out.toString(),
              "--best-of-n",
              "--prompt-key",
              "line",
              "--candidates-out",
              cands.toString(),
              "--chunk-rows",
              "4");
      assertEquals(0, r.code(), r.err());
      Map<String, JsonNode> got = readDir(out);
      Map<String, JsonNode> expected = byId(want);
      assertEquals(expected.keySet(), got.keySet());
      for (String id : expected.keySet()) {
        assertEquals(
            expected.get(id).get("index").asInt(), got.get(id).get("index").asInt(), agg[0] + id);
        assertEquals(
            expected.get(id).get("reward").asDouble(),
            got.get(id).get("reward").asDouble(),
            1e-5,
            agg[0] + " " + id);
      }
      // every candidate, scored and flagged as rme best-of-n flags them
      List<JsonNode> allGot = readAll(cands);
      List<String> allWant = Files.readAllLines(wantCands);
      assertEquals(allWant.size(), allGot.size());
      Map<String, JsonNode> gotByKey = new HashMap<>();
      allGot.forEach(c -> gotByKey.put(c.get("line") + "/" + c.get("index"), c));
      for (String line : allWant) {
        JsonNode w = JSON.readTree(line);
        JsonNode g = gotByKey.get(w.get("line") + "/" + w.get("index"));
        assertNotNull(g, line);
        assertEquals(w.get("reward").asDouble(), g.get("reward").asDouble(), 1e-5, line);
        assertEquals(w.get("selected").asBoolean(), g.get("selected").asBoolean(), line);
      }
    }
    // rejection sampling: of all candidates (mean), keep those >= the median reward
    Path all = tmp.resolve("threshold-all");
    List<String> ss = new ArrayList<>(List.of("spark-score"));
    ss.addAll(modelArgs("lora"));
    Cli.Run r = rme(ss, "--data", pool.toString(), "--out", all.toString());
    assertEquals(0, r.code(), r.err());
    List<Double> rewards = new ArrayList<>();
    readAll(all).forEach(c -> rewards.add(c.get("reward").asDouble()));
    assertEquals(15, rewards.size());
    List<Double> sorted = rewards.stream().sorted().toList();
    double median = sorted.get(7);
    Path kept = tmp.resolve("threshold-kept");
    r =
        rme(
            ss,
            "--data",
            pool.toString(),
            "--out",
            kept.toString(),
            "--threshold",
            Double.toString(median));
    assertEquals(0, r.code(), r.err());
    List<JsonNode> k = readAll(kept);
    // compared as floats, the rewards' own precision (the JSON holds each float's shortest form)
    assertEquals(
        rewards.stream().filter(x -> (float) (double) x >= (float) median).count(), k.size());
    k.forEach(c -> assertTrue((float) c.get("reward").asDouble() >= (float) median, c.toString()));
    assertTrue(r.err().contains("wrote " + k.size() + " rows"), r.err());
  }

  @Test
  void aBadRowFailsTheJobNamingItOrIsSkippedAndCounted() throws Exception {
    List<String> lines = new ArrayList<>(Files.readAllLines(idRows("good.jsonl", 6, 3)));
    lines.add(3, "{\"id\": \"bad-vocab\", \"input_ids\": [5, 999, 6]}");
    lines.add(5, "{\"id\": \"bad-json\", \"input_ids\": [5, 6");
    Path data = tmp.resolve("bad.jsonl");
    Files.write(data, lines);
    List<String> ss = new ArrayList<>(List.of("spark-score"));
    ss.addAll(modelArgs("single"));
    Path out = tmp.resolve("bad-out");
    Cli.Run r = rme(ss, "--data", data.toString(), "--out", out.toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().startsWith("rme: error: "), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertTrue(
        r.err().contains("bad.jsonl (partition 0, row 4, id bad-vocab): input_ids"), r.err());
    assertTrue(r.err().contains("not below the vocabulary size 320"), r.err());
    assertFalse(Files.exists(out), "a failed job leaves no output directory");

    r = rme(ss, "--data", data.toString(), "--out", out.toString(), "--skip-bad-rows");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("skipped 2 bad rows"), r.err());
    assertTrue(r.err().contains("bad_id: "), r.err());
    assertTrue(r.err().contains("invalid JSON"), r.err());
    Map<String, JsonNode> got = readDir(out);
    assertEquals(6, got.size());
    assertFalse(got.containsKey("bad-vocab"));

    // an existing output is never replaced
    r = rme(ss, "--data", data.toString(), "--out", out.toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("exists"), r.err());
    assertEquals(6, readDir(out).size());
  }

  @Test
  void aRetriedTaskLeavesNoDuplicateRows() throws Exception {
    Path rows = idRows("retry.jsonl", 24, 9);
    Path input = tmp.resolve("retry-in");
    spark.read().json(rows.toString()).repartition(2).write().json(input.toString());
    AtomicInteger failed = new AtomicInteger();
    SparkListener l =
        new SparkListener() {
          @Override
          public void onTaskEnd(SparkListenerTaskEnd e) {
            if (e.reason() instanceof TaskFailedReason) {
              failed.incrementAndGet();
            }
          }
        };
    spark.sparkContext().addSparkListener(l);
    try {
      Path out = tmp.resolve("retry-out");
      StringWriter err = new StringWriter();
      SparkScoreJob.Summary s =
          SparkScoreJob.run(
              SparkScoreSpec.builder(
                      Fixtures.dir("llama-seqcls").toString(), input.toString(), out.toString())
                  .chunkRows(2)
                  .batchSize(2)
                  .failFirstAttemptAfter(5)
                  .build(),
              new PrintWriter(err, true));
      spark.sparkContext().listenerBus().waitUntilEmpty();
      assertEquals(1, failed.get(), "the hook failed one task attempt, which Spark retried");
      Map<String, JsonNode> got = readDir(out); // fails on a duplicate id
      assertEquals(24, got.size());
      assertEquals(24, s.written());

      Path want = tmp.resolve("retry-want.jsonl");
      Cli.Run r =
          Cli.rme(
              "score",
              "--model",
              Fixtures.dir("llama-seqcls").toString(),
              "--data",
              rows.toString(),
              "--out",
              want.toString());
      assertEquals(0, r.code(), r.err());
      assertSameScores(byId(want), got, "after a retry");
    } finally {
      spark.sparkContext().removeSparkListener(l);
    }
  }

  @Test
  void perSlotSessionsScoreTheSameAndLoadOneModelPerSlot() throws Exception {
    Path rows = idRows("slots.jsonl", 16, 11);
    Path input = tmp.resolve("slots-in");
    spark.read().json(rows.toString()).repartition(4).write().json(input.toString());
    Map<String, Map<String, JsonNode>> results = new HashMap<>();
    Set<Integer> loaded = new HashSet<>();
    for (SparkScoreSpec.Sessions mode : SparkScoreSpec.Sessions.values()) {
      Path out = tmp.resolve("slots-" + mode);
      SparkScoreJob.run(
          SparkScoreSpec.builder(
                  Fixtures.dir("llama-seqcls").toString(), input.toString(), out.toString())
              .sessions(mode)
              .build(),
          new PrintWriter(new StringWriter(), true));
      results.put(mode.name(), readDir(out));
      loaded.add(ExecutorModels.loadedCount()); // closed after each local job
    }
    assertEquals(Set.of(0), loaded);
    assertSameScores(results.get("SHARED"), results.get("PER_SLOT"), "per-slot vs shared");
  }

  @Test
  void aPartitionIsScoredAsAStreamOfChunks() {
    StructType in =
        new StructType()
            .add("id", DataTypes.StringType)
            .add("input_ids", DataTypes.createArrayType(DataTypes.LongType))
            .add(ScoreColumns.FILE, DataTypes.StringType);
    ScoreColumns cols = new ScoreColumns(in, 1, false);
    SparkScoreSpec spec =
        SparkScoreSpec.builder(Fixtures.dir("llama-seqcls").toString(), "mem", "unused")
            .chunkRows(4)
            .batchSize(2)
            .build();
    AtomicInteger consumed = new AtomicInteger();
    int n = 50;
    Iterator<Row> rows =
        new Iterator<>() {
          int i;

          @Override
          public boolean hasNext() {
            return i < n;
          }

          @Override
          public Row next() {
            consumed.incrementAndGet();
            i++;
            return RowFactory.create("r" + i, List.of(5L, 6L + i % 7, 7L), "mem");
          }
        };
    var sc = spark.sparkContext();
    PartitionScorer scorer =
        new PartitionScorer(
            spec,
            in,
            cols,
            2,
            2,
            sc.longAccumulator(),
            sc.longAccumulator(),
            sc.collectionAccumulator(),
            sc.longAccumulator());
    try {
      Iterator<Row> out = scorer.call(rows);
      Row first = out.next();
      assertEquals("r1", first.getString(0));
      assertEquals(4, consumed.get(), "one chunk read before the first row is handed on");
      int count = 1;
      while (out.hasNext()) {
        Row r = out.next();
        count++;
        assertEquals("r" + count, r.getString(0), "input order");
        assertTrue(consumed.get() <= count + 3, "never more than a chunk ahead");
      }
      assertEquals(n, count);
    } finally {
      ExecutorModels.closeAll();
    }
  }

  @Test
  void executorCoresComeFromTheMasterOrTheExecutorSetting() {
    var conf = new org.apache.spark.SparkConf(false);
    assertEquals(List.of(2, 2), List.of(SparkScoreJob.executorCores(conf, "local[2,2]")[0], 2));
    assertEquals(3, SparkScoreJob.executorCores(conf, "local[3]")[0]);
    assertEquals(1, SparkScoreJob.executorCores(conf, "local")[0]);
    assertEquals(0, SparkScoreJob.executorCores(conf, "yarn")[0]);
    conf.set("spark.executor.cores", "8").set("spark.task.cpus", "2");
    int[] c = SparkScoreJob.executorCores(conf, "k8s://https://host:443");
    assertEquals(8, c[0]);
    assertEquals(4, c[1]);
  }

  @Test
  void anUnknownPromptKeyIsRefusedNamingTheColumns() {
    Cli.Run r =
        Cli.rme(
            "spark-score",
            "--model",
            Fixtures.dir("llama-seqcls").toString(),
            "--data",
            "examples/score.jsonl",
            "--out",
            tmp.resolve("nokey").toString(),
            "--best-of-n",
            "--prompt-key",
            "nope");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--prompt-key nope is not a column"), r.err());
    assertTrue(r.err().contains("(columns: id, input_ids, prompt, response)"), r.err());
  }
}
