package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.testing.Cli;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code rme bench} end to end on a tiny preset (project side; the PyTorch peer needs
 * scripts/bench-peer.sh).
 */
class BenchCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  private static List<String> names(JsonNode report) {
    List<String> out = new ArrayList<>();
    report.get("workloads").forEach(w -> out.add(w.get("name").asText()));
    return out;
  }

  @Test
  void everyWorkloadIsMeasuredAndWrittenAsJson() throws Exception {
    Path json = tmp.resolve("bench.json");
    Cli.Run r =
        Cli.rme(
            "bench",
            "--preset",
            "tf-graphs/tiny-llama.json",
            "--batch",
            "2",
            "--seq",
            "16",
            "--k",
            "2",
            "--warmup",
            "0",
            "--reps",
            "1",
            "--no-memory",
            "--matmul-n",
            "64",
            "--json",
            json.toString(),
            "--work-dir",
            tmp.resolve("work").toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(Files.isDirectory(tmp.resolve("work")), "a given --work-dir is kept");
    JsonNode report = JSON.readTree(json.toFile());
    assertTrue(report.get("machine").has("cores"), report.toString());
    assertTrue(report.get("peak_matmul_flops").asDouble() > 0);
    List<String> want =
        new ArrayList<>(List.of("score", "bt-step", "lora-step", "generate", "generate-sampled"));
    for (String kind :
        List.of("single", "linear", "independent", "lora", "lora-top1", "single-x-k")) {
      want.add("ensemble-" + kind);
    }
    List<String> got = names(report);
    assertEquals(want.stream().map(w -> "tiny-llama/" + w).toList(), got);
    for (JsonNode w : report.get("workloads")) {
      assertTrue(w.get("project").asDouble() > 0, w.toString());
      assertTrue(w.get("mfu").asDouble() > 0, w.toString());
      assertTrue(w.get("peer").isNull() && w.get("ratio").isNull(), "no peer was run: " + w);
    }
  }

  @Test
  void aWorkloadOverTheMemoryBudgetIsSkippedWithItsReason() throws Exception {
    Path preset = Path.of("tf-graphs/tiny-llama.json");
    List<String> kinds = List.of("single", "lora");
    long score =
        MemoryCheck.benchWorkload(preset, "score", 2, 16, 2, kinds, 4).orElseThrow().total();
    long ensembles =
        MemoryCheck.benchWorkload(preset, "ensembles", 2, 16, 2, kinds, 4).orElseThrow().total();
    long bt =
        MemoryCheck.benchWorkload(preset, "bt-step", 2, 16, 2, kinds, 4).orElseThrow().total();
    long fits = Math.max(score, ensembles);
    assertTrue(bt > fits, bt + " vs " + fits);
    Path json = tmp.resolve("bench.json");
    Cli.Run r =
        Cli.rme(
            "bench",
            "--preset",
            preset.toString(),
            "--workloads",
            "score,bt-step,ensembles",
            "--kinds",
            "single,lora",
            "--memory-budget",
            Long.toString((fits + bt) / 2),
            "--batch",
            "2",
            "--seq",
            "16",
            "--k",
            "2",
            "--warmup",
            "0",
            "--reps",
            "1",
            "--no-memory",
            "--matmul-n",
            "64",
            "--json",
            json.toString(),
            "--work-dir",
            tmp.resolve("work").toString());
    assertEquals(0, r.code(), r.err());
    JsonNode report = JSON.readTree(json.toFile());
    assertEquals(
        List.of("tiny-llama/score", "tiny-llama/ensemble-single", "tiny-llama/ensemble-lora"),
        names(report));
    String why = report.get("skipped").get("tiny-llama/bt-step").asText();
    assertTrue(why.contains("--memory-budget"), why);
    assertEquals(1, report.get("skipped").size());
    assertEquals(2, report.get("load_average").size(), "project start and end (no peer)");
  }

  /**
   * Without --work-dir the bench makes its own temporary directory (exports the size of the model)
   * and deletes it when it ends: run in a child JVM whose temporary directory is this test's.
   */
  @Test
  void theBenchDeletesItsOwnTemporaryWorkDirectory() throws Exception {
    Path tmpRoot = Files.createDirectories(tmp.resolve("java-tmp"));
    Process p =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Djava.io.tmpdir=" + tmpRoot,
                "-cp",
                System.getProperty("java.class.path"),
                "dev.rewardensemble.cli.Main",
                "bench",
                "--preset",
                "tf-graphs/tiny-llama.json",
                "--batch",
                "2",
                "--seq",
                "16",
                "--warmup",
                "0",
                "--reps",
                "1",
                "--no-memory",
                "--matmul-n",
                "64",
                "--workloads",
                "score,generate")
            .redirectErrorStream(true)
            .redirectOutput(tmp.resolve("child.log").toFile())
            .start();
    assertEquals(0, p.waitFor(), Files.readString(tmp.resolve("child.log")));
    try (var left = Files.list(tmpRoot)) {
      List<String> benchDirs =
          left.map(x -> x.getFileName().toString()).filter(n -> n.startsWith("rme-bench")).toList();
      assertEquals(List.of(), benchDirs, "the bench's own work directory is deleted");
    }
  }

  @Test
  void anUnknownEnsembleKindIsOneClearError() {
    Cli.Run r =
        Cli.rme("bench", "--preset", "tf-graphs/tiny-llama.json", "--kinds", "single,lora2");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("rme: error: --kinds: unknown ensemble kind 'lora2'"), r.err());
  }

  @Test
  void memoryIsProbedPerWorkloadInFreshProcesses() throws Exception {
    Path json = tmp.resolve("bench.json");
    Cli.Run r =
        Cli.rme(
            "bench",
            "--preset",
            "tf-graphs/tiny-llama.json",
            "--workloads",
            "score",
            "--batch",
            "2",
            "--seq",
            "16",
            "--warmup",
            "0",
            "--reps",
            "1",
            "--matmul-n",
            "64",
            "--memory-hidden",
            "64",
            "--memory-layers",
            "1",
            "--json",
            json.toString(),
            "--work-dir",
            tmp.resolve("work").toString());
    assertEquals(0, r.code(), r.err());
    JsonNode report = JSON.readTree(json.toFile());
    assertEquals(List.of("tiny-llama/score"), names(report));
    JsonNode memory = report.get("memory");
    assertTrue(memory.get("baseline_mb").asDouble() > 0, memory.toString());
    assertTrue(memory.get("project").has("score"), memory.toString());
    assertEquals(
        memory.get("project").get("score").asDouble(),
        report.get("workloads").get(0).get("peak_rss_mb").asDouble());
  }

  @Test
  void anUnknownWorkloadIsOneClearError() {
    Cli.Run r =
        Cli.rme("bench", "--preset", "tf-graphs/tiny-llama.json", "--workloads", "score,traning");
    assertNotEquals(0, r.code());
    assertTrue(r.err().contains("traning"), r.err());
  }

  @Test
  void serveWorkloadMeasuresClientsAgainstInProcessScoring() throws Exception {
    Path json = tmp.resolve("serve.json");
    java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
    java.io.PrintStream old = System.out;
    Cli.Run r;
    System.setOut(new java.io.PrintStream(buf, true, java.nio.charset.StandardCharsets.UTF_8));
    try {
      r =
          Cli.rme(
              "bench",
              "--workloads",
              "serve",
              "--preset",
              "tf-graphs/tiny-llama.json",
              "--batch",
              "4",
              "--seq",
              "12",
              "--warmup",
              "0",
              "--reps",
              "1",
              "--serve-requests",
              "24",
              "--json",
              json.toString());
    } finally {
      System.setOut(old);
    }
    assertEquals(0, r.code(), r.err());
    String out = buf.toString(java.nio.charset.StandardCharsets.UTF_8);
    assertTrue(out.contains("dynamic batching over --max-batch 1 at 16 clients:"), out);
    JsonNode rows = JSON.readTree(json.toFile()).get("serve");
    assertEquals(6, rows.size(), rows.toString()); // 2 in-process, 4 server settings
    List<String> settings = new ArrayList<>();
    for (JsonNode row : rows) {
      assertTrue(row.get("seq_per_sec").asDouble() > 0, row.toString());
      assertEquals(24, row.get("requests").asInt());
      settings.add(row.get("clients").asInt() + "x" + row.get("max_batch").asInt());
      if (row.get("clients").asInt() > 0) {
        assertTrue(row.get("p99_ms").asDouble() >= row.get("p50_ms").asDouble(), row.toString());
      }
    }
    assertEquals(List.of("0x4", "0x1", "1x4", "4x4", "16x4", "16x1"), settings);
    // 16 clients with --max-batch 4 are batched: more than one sequence per Session.run
    assertTrue(rows.get(4).get("mean_batch").asDouble() > 1, rows.get(4).toString());
  }
}
