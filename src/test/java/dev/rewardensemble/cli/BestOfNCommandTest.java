package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.rl.BestOfN;
import dev.rewardensemble.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BestOfNCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  @Test
  void selectsTheArgmaxCandidateAndRewardRisesWithN() throws Exception {
    Path prompts = tmp.resolve("p.jsonl");
    Files.write(
        prompts,
        List.of("{\"id\": \"a\", \"input_ids\": [1, 5, 6, 7]}", "{\"input_ids\": [1, 9, 9]}"));
    Path lora = Fixtures.dir("llama-lora");
    Path out = tmp.resolve("best.jsonl");
    Path cands = tmp.resolve("cands.jsonl");
    Path summary = tmp.resolve("summary.json");
    var r =
        ScoreCommandTest.rme(
            "best-of-n",
            "--policy",
            Fixtures.dir("llama-causal").toString(),
            "--reward-model",
            Fixtures.dir("llama-seqcls").toString(),
            "--lora",
            lora.resolve("member0") + "," + lora.resolve("member1") + "," + lora.resolve("member2"),
            "--prompts",
            prompts.toString(),
            "--n",
            "8",
            "--max-new-tokens",
            "6",
            "--aggregation",
            "lcb",
            "--beta",
            "0.5",
            "--out",
            out.toString(),
            "--candidates-out",
            cands.toString(),
            "--summary",
            summary.toString());
    assertEquals(0, r.code(), r.err());
    List<String> best = Files.readAllLines(out);
    List<String> all = Files.readAllLines(cands);
    assertEquals(2, best.size());
    assertEquals(16, all.size());
    assertEquals("a", JSON.readTree(best.get(0)).get("id").asText());
    for (int p = 0; p < 2; p++) {
      double[] rewards = new double[8];
      int selected = -1;
      for (int j = 0; j < 8; j++) {
        JsonNode c = JSON.readTree(all.get(p * 8 + j));
        rewards[j] = c.get("reward").asDouble();
        assertEquals(c.get("mean").asDouble() - 0.5 * c.get("std").asDouble(), rewards[j], 1e-5);
        if (c.get("selected").asBoolean()) {
          selected = j;
        }
      }
      assertEquals(BestOfN.argmax(rewards), selected);
      assertEquals(selected, JSON.readTree(best.get(p)).get("index").asInt());
    }
    JsonNode s = JSON.readTree(summary.toFile());
    assertEquals(Math.log(8) - 7.0 / 8, s.get("kl_analytic").asDouble(), 1e-12);
    List<Double> byN = new ArrayList<>();
    s.get("expected_reward_by_n").forEach(v -> byN.add(v.asDouble()));
    assertEquals(4, byN.size());
    for (int i = 1; i < byN.size(); i++) {
      assertTrue(byN.get(i) >= byN.get(i - 1) - 1e-12, byN.toString());
    }
    assertEquals(s.get("mean_selected_reward").asDouble(), byN.get(3), 1e-6);

    // The same pool re-ranked: by the same ensemble and aggregation it selects the same candidates;
    // by another reward model, the argmax of that model's rewards.
    Path again = tmp.resolve("again.jsonl");
    var same =
        ScoreCommandTest.rme(
            "best-of-n",
            "--pool-in",
            cands.toString(),
            "--reward-model",
            Fixtures.dir("llama-seqcls").toString(),
            "--lora",
            lora.resolve("member0") + "," + lora.resolve("member1") + "," + lora.resolve("member2"),
            "--aggregation",
            "lcb",
            "--beta",
            "0.5",
            "--out",
            again.toString());
    assertEquals(0, same.code(), same.err());
    assertEquals(best, Files.readAllLines(again));
    Path other = tmp.resolve("other.jsonl");
    Path otherCands = tmp.resolve("other-cands.jsonl");
    var o =
        ScoreCommandTest.rme(
            "best-of-n",
            "--pool-in",
            cands.toString(),
            "--reward-model",
            Fixtures.dir("gpt2-seqcls").toString(),
            "--out",
            other.toString(),
            "--candidates-out",
            otherCands.toString());
    assertEquals(0, o.code(), o.err());
    List<String> oc = Files.readAllLines(otherCands);
    assertEquals(16, oc.size());
    for (int p = 0; p < 2; p++) {
      double[] rewards = new double[8];
      for (int j = 0; j < 8; j++) {
        JsonNode c = JSON.readTree(oc.get(p * 8 + j));
        assertEquals(JSON.readTree(all.get(p * 8 + j)).get("response_ids"), c.get("response_ids"));
        rewards[j] = c.get("reward").asDouble();
      }
      assertEquals(
          BestOfN.argmax(rewards),
          JSON.readTree(Files.readAllLines(other).get(p)).get("index").asInt());
    }
  }
}
