package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.testing.Cli;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code rme ppo --recompute}: an iteration runs, and its metrics and the policy it writes are
 * those of the same run without recomputation (the gradients are compared at 1e-6 in {@code
 * rl.PpoRecomputeTest}; here one AdamW step on each).
 */
class PpoRecomputeCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  private static String fixture(String name) {
    return Path.of("src/test/resources/hf-families", name).toString();
  }

  private Cli.Run ppo(Path run, boolean recompute) throws Exception {
    Path p = tmp.resolve("prompts.jsonl");
    Files.write(p, List.of("{\"input_ids\": [101, 57, 230]}", "{\"input_ids\": [12, 99]}"));
    List<String> args =
        new ArrayList<>(
            List.of(
                "ppo",
                "--policy",
                fixture("llama3-causal"),
                "--reward-model",
                fixture("llama3-seqcls"),
                "--prompts",
                p.toString(),
                "--out",
                run.toString(),
                "--iterations",
                "1",
                "--rollout-batch",
                "2",
                "--step-batch",
                "2",
                "--epochs-per-rollout",
                "1",
                "--max-new-tokens",
                "4",
                "--lr",
                "1e-3",
                "--threads",
                "1",
                "--inter-threads",
                "1"));
    if (recompute) {
      args.add("--recompute");
    }
    return Cli.rme(args.toArray(new String[0]));
  }

  @Test
  void oneIterationWithRecomputeMatchesTheRunWithout() throws Exception {
    Path plain = tmp.resolve("plain");
    Path rec = tmp.resolve("rec");
    Cli.Run a = ppo(plain, false);
    assertEquals(0, a.code(), a.err());
    Cli.Run b = ppo(rec, true);
    assertEquals(0, b.code(), b.err());
    JsonNode ma = JSON.readTree(Files.readAllLines(plain.resolve("metrics.jsonl")).get(0));
    JsonNode mb = JSON.readTree(Files.readAllLines(rec.resolve("metrics.jsonl")).get(0));
    for (String f : List.of("meanScore", "kl", "policyLoss", "valueLoss", "entropy")) {
      assertTrue(ma.has(f) && mb.has(f), f + ": " + ma);
      assertEquals(ma.get(f).asDouble(), mb.get(f).asDouble(), 1e-5, f + ": " + ma + " " + mb);
    }
    Map<String, FloatTensor> wa = HfCheckpoint.load(plain.resolve("policy")).weights();
    Map<String, FloatTensor> wb = HfCheckpoint.load(rec.resolve("policy")).weights();
    assertEquals(wa.keySet(), wb.keySet());
    double worst = 0;
    for (String k : wa.keySet()) {
      float[] x = wa.get(k).data();
      float[] y = wb.get(k).data();
      for (int i = 0; i < x.length; i++) {
        worst = Math.max(worst, Math.abs(x[i] - y[i]));
      }
    }
    // One AdamW step moves a weight by about lr = 1e-3; the two runs agree far below that.
    assertTrue(worst < 1e-5, "largest weight difference " + worst);
  }
}
