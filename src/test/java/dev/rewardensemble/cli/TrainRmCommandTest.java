package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code rme train-rm} end to end. */
class TrainRmCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  private Path synthetic(int n, long seed) throws Exception {
    Path p = tmp.resolve("syn-" + n + "-" + seed + ".jsonl");
    Files.write(
        p, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(n, 64, 8, 16, 3, seed)));
    return p;
  }

  @Test
  void oneStepThroughTheCliReproducesTorchLossAfterOneStep() throws Exception {
    JsonNode e = Fixtures.expected("llama-bt-step");
    List<String> pairs = new ArrayList<>();
    List<String> score = new ArrayList<>();
    int[][] c = Fixtures.ints2(e.get("chosen_ids"));
    int[][] cm = Fixtures.ints2(e.get("chosen_mask"));
    int[][] r = Fixtures.ints2(e.get("rejected_ids"));
    int[][] rm = Fixtures.ints2(e.get("rejected_mask"));
    List<String> rejectedRows = new ArrayList<>();
    for (int i = 0; i < c.length; i++) {
      String ch = JSON.writeValueAsString(strip(c[i], cm[i]));
      String rj = JSON.writeValueAsString(strip(r[i], rm[i]));
      pairs.add("{\"chosen_ids\": " + ch + ", \"rejected_ids\": " + rj + "}");
      score.add("{\"input_ids\": " + ch + "}");
      rejectedRows.add("{\"input_ids\": " + rj + "}");
    }
    score.addAll(rejectedRows);
    Path data = tmp.resolve("pairs.jsonl");
    Files.write(data, pairs);
    Path scoreIn = tmp.resolve("score.jsonl");
    Files.write(scoreIn, score);
    Path run = tmp.resolve("run");
    var t =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            Fixtures.dir("llama-seqcls").toString(),
            "--data",
            data.toString(),
            "--out",
            run.toString(),
            "--steps",
            "1",
            "--batch-size",
            "4",
            "--grad-accum",
            "1",
            "--lr",
            "1e-3",
            "--weight-decay",
            "0.1",
            "--schedule",
            "constant",
            "--warmup-ratio",
            "0",
            "--max-grad-norm",
            "0",
            "--eval-fraction",
            "0");
    assertEquals(0, t.code(), t.err());
    Path out = tmp.resolve("scores.jsonl");
    var s =
        ScoreCommandTest.rme(
            "score",
            "--model",
            run.toString(),
            "--data",
            scoreIn.toString(),
            "--out",
            out.toString());
    assertEquals(0, s.code(), s.err());
    List<String> lines = Files.readAllLines(out);
    int n = c.length;
    double loss = 0;
    for (int i = 0; i < n; i++) {
      double d =
          JSON.readTree(lines.get(i)).get("reward").asDouble()
              - JSON.readTree(lines.get(n + i)).get("reward").asDouble();
      loss += Math.log1p(Math.exp(-d));
    }
    loss /= n;
    double want = e.get("loss_after_one_step").asDouble();
    assertEquals(want, loss, 1e-4 * want);
  }

  private static int[] strip(int[] ids, int[] mask) {
    return java.util.Arrays.copyOf(ids, java.util.Arrays.stream(mask).sum());
  }

  @Test
  void learnsAGeneratedPreferenceSetAboveNinetyPercentHeldOut() throws Exception {
    Path run = tmp.resolve("run");
    var t =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            synthetic(1200, 1).toString(),
            "--out",
            run.toString(),
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--grad-accum",
            "1",
            "--lr",
            "1e-3",
            "--warmup-ratio",
            "0.05",
            "--eval-fraction",
            "0.2");
    assertEquals(0, t.code(), t.err());
    JsonNode runJson = JSON.readTree(run.resolve("run.json").toFile());
    double acc = runJson.get("final_eval").get("accuracy").asDouble();
    assertTrue(acc > 0.9, "held-out accuracy " + acc);
    assertEquals(240, runJson.get("final_eval").get("pairs").asInt());
    long evalRows =
        Files.readAllLines(run.resolve("metrics.jsonl")).stream()
            .filter(l -> l.contains("\"eval\""))
            .count();
    assertEquals(1, evalRows);
  }

  @Test
  void badRowIsAnErrorNamingFileLineAndFieldUnlessSkipped() throws Exception {
    List<String> rows = new ArrayList<>(Files.readAllLines(synthetic(40, 2)));
    rows.set(6, "{\"chosen_ids\": [5, 6, 7]}");
    Path data = tmp.resolve("bad.jsonl");
    Files.write(data, rows);
    var t =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            data.toString(),
            "--out",
            tmp.resolve("run").toString(),
            "--steps",
            "2");
    assertEquals(2, t.code(), t.err());
    assertTrue(t.err().contains("bad.jsonl:7") && t.err().contains("rejected_ids"), t.err());
    assertFalse(Files.exists(tmp.resolve("run").resolve("model.safetensors")));
    Path run = tmp.resolve("run2");
    var ok =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            data.toString(),
            "--out",
            run.toString(),
            "--steps",
            "2",
            "--skip-bad-rows");
    assertEquals(0, ok.code(), ok.err());
    JsonNode prov = JSON.readTree(run.resolve("run.json").toFile()).get("provenance");
    assertEquals(1, prov.get("skipped_rows").asInt());
    assertEquals(39, prov.get("data_rows_used").asInt());
  }

  @Test
  void divergenceStopsWithAdviceAndKeepsTheLastGoodCheckpoint() throws Exception {
    Path run = tmp.resolve("run");
    var t =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            synthetic(200, 3).toString(),
            "--out",
            run.toString(),
            "--steps",
            "40",
            "--batch-size",
            "4",
            "--grad-accum",
            "1",
            "--lr",
            "1e12",
            // One warmup step (lr 0): step 1 is good and checkpointed, step 2 throws the weights to
            // ~1e12.
            "--schedule",
            "constant",
            "--warmup-ratio",
            "0.025",
            "--max-grad-norm",
            "0",
            "--save-every",
            "1",
            "--keep-checkpoints",
            "1",
            "--eval-fraction",
            "0");
    assertEquals(3, t.code(), t.err());
    assertTrue(t.err().contains("diverged") && t.err().contains("--lr"), t.err());
    assertFalse(
        Files.exists(run.resolve("model.safetensors")), "a diverged run must not look complete");
    try (var s = Files.list(run.resolve("checkpoints"))) {
      List<Path> cks = s.toList();
      assertEquals(1, cks.size());
      assertTrue(t.err().contains(cks.get(0).getFileName().toString()), t.err());
      try (Safetensors st = Safetensors.open(cks.get(0).resolve("model.safetensors"))) {
        for (String k : st.keys()) {
          for (float v : st.read(k).data()) {
            assertTrue(Float.isFinite(v), "last good checkpoint has a non-finite value in " + k);
          }
        }
      }
    }
  }

  @Test
  void runKilledWithSigkillAndResumedEndsWithTheSameWeights() throws Exception {
    Path data = synthetic(600, 4);
    String[] common = {
      "train-rm",
      "--model",
      "tf-graphs/tiny-llama.json",
      "--data",
      data.toString(),
      "--steps",
      "300",
      "--batch-size",
      "4",
      "--grad-accum",
      "2",
      "--lr",
      "5e-4",
      "--save-every",
      "10",
      "--eval-fraction",
      "0.1",
      "--threads",
      "1"
    };
    Path full = tmp.resolve("full");
    var a = ScoreCommandTest.rme(concat(common, "--out", full.toString()));
    assertEquals(0, a.code(), a.err());

    Path killed = tmp.resolve("killed");
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "java",
                "-cp",
                "target/classes:" + Files.readString(Path.of("target/classpath.txt")).trim(),
                "dev.rewardensemble.cli.Main"));
    cmd.addAll(List.of(concat(common, "--out", killed.toString())));
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(tmp.resolve("killed.log").toFile())
            .start();
    Path marker = killed.resolve("checkpoints").resolve("step-00000050");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (!Files.exists(marker) && p.isAlive() && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertTrue(
        p.isAlive(),
        "the run finished before it could be killed: "
            + Files.readString(tmp.resolve("killed.log")));
    p.destroyForcibly(); // SIGKILL
    p.waitFor();
    assertFalse(Files.exists(killed.resolve("model.safetensors")));

    var b = ScoreCommandTest.rme(concat(common, "--out", killed.toString(), "--resume"));
    assertEquals(0, b.code(), b.err());
    Map<String, FloatTensor> wa;
    Map<String, FloatTensor> wb;
    try (Safetensors s = Safetensors.open(full.resolve("model.safetensors"))) {
      wa = s.readAll();
    }
    try (Safetensors s = Safetensors.open(killed.resolve("model.safetensors"))) {
      wb = s.readAll();
    }
    assertEquals(wa.keySet(), wb.keySet());
    for (String k : wa.keySet()) {
      Fixtures.assertClose(wa.get(k).data(), wb.get(k).data(), 1e-5, 1e-6, k);
    }
    // The metrics of the resumed run have exactly one train row per step.
    long trainRows =
        Files.readAllLines(killed.resolve("metrics.jsonl")).stream()
            .filter(l -> l.contains("\"train\""))
            .count();
    assertEquals(300, trainRows);
  }

  @Test
  void resumeRefusesChangedSettings() throws Exception {
    Path data = synthetic(100, 5);
    Path run = tmp.resolve("run");
    Files.createDirectories(run);
    // A checkpoint from a run with other settings: train 20 steps saving every 10, then remove the
    // final model.
    var a =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            data.toString(),
            "--out",
            run.toString(),
            "--steps",
            "20",
            "--save-every",
            "10",
            "--lr",
            "1e-3");
    assertEquals(0, a.code(), a.err());
    Files.delete(run.resolve("model.safetensors"));
    var b =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            data.toString(),
            "--out",
            run.toString(),
            "--steps",
            "20",
            "--save-every",
            "10",
            "--lr",
            "2e-3",
            "--resume");
    assertEquals(2, b.code(), b.err());
    assertTrue(b.err().contains("train.lr was 0.001, now 0.002"), b.err());
    var c =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            data.toString(),
            "--out",
            run.toString(),
            "--steps",
            "20",
            "--lr",
            "1e-3");
    assertEquals(2, c.code(), c.err());
    assertTrue(c.err().contains("--resume"), c.err());
  }

  /**
   * A LoRA ensemble is planned from the base's {@code config.json} alone: a bad adapter target is
   * named before any weight is read (here there are none to read), and K is checked by the
   * ensemble's spec first.
   */
  @Test
  void loraIsPlannedFromTheConfigurationAlone() throws Exception {
    Path base = tmp.resolve("config-only");
    Files.createDirectories(base);
    Files.copy(Path.of("tf-graphs/tiny-llama.json"), base.resolve("config.json"));
    Path data = synthetic(20, 6);
    var r =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            base.toString(),
            "--data",
            data.toString(),
            "--out",
            tmp.resolve("run").toString(),
            "--ensemble",
            "lora",
            "--k",
            "2",
            "--lora-targets",
            "c_attn");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("target module 'c_attn' is not a LoRA target of llama"), r.err());
    var k =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            base.toString(),
            "--data",
            data.toString(),
            "--out",
            tmp.resolve("run").toString(),
            "--ensemble",
            "lora",
            "--k",
            "0");
    assertEquals(2, k.code(), k.err());
    assertTrue(k.err().contains("ensemble size K must be >= 1, got 0"), k.err());
    // With the configuration alone the plan succeeds and the one load of the weights names what is
    // missing.
    var w =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            base.toString(),
            "--data",
            data.toString(),
            "--out",
            tmp.resolve("run").toString(),
            "--ensemble",
            "lora",
            "--k",
            "2");
    assertEquals(2, w.code(), w.err());
    assertTrue(w.err().contains(base.toString()), w.err());
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
