package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.testing.Cli;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Today's families as policies through the command line: Best-of-n samples from a causal LM of one
 * family and ranks with a reward model of another; PPO trains a policy of each family for an
 * iteration against such a reward model and writes a policy that loads back with its own family.
 */
class FamilyPoliciesTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  private static String fixture(String name) {
    return Path.of("src/test/resources/hf-families", name).toString();
  }

  private Path prompts() throws Exception {
    Path p = tmp.resolve("prompts.jsonl");
    Files.write(p, List.of("{\"input_ids\": [101, 57, 230]}", "{\"input_ids\": [12, 99]}"));
    return p;
  }

  @ParameterizedTest
  @CsvSource({"qwen3, gemma2", "gemma2, mistral", "llama3, qwen2"})
  void bestOfNSamplesFromOneFamilyAndRanksWithAnother(String policy, String reward)
      throws Exception {
    Path out = tmp.resolve("best.jsonl");
    Path cands = tmp.resolve("cands.jsonl");
    Cli.Run r =
        Cli.rme(
            "best-of-n",
            "--policy",
            fixture(policy + "-causal"),
            "--reward-model",
            fixture(reward + "-seqcls"),
            "--prompts",
            prompts().toString(),
            "--n",
            "4",
            "--max-new-tokens",
            "5",
            "--out",
            out.toString(),
            "--candidates-out",
            cands.toString());
    assertEquals(0, r.code(), r.err());
    List<String> best = Files.readAllLines(out);
    assertEquals(2, best.size());
    List<String> all = Files.readAllLines(cands);
    assertEquals(8, all.size());
    for (String line : best) {
      JsonNode row = JSON.readTree(line);
      double chosen = row.get("reward").asDouble();
      assertTrue(Double.isFinite(chosen), line);
    }
  }

  @ParameterizedTest
  @CsvSource({"gemma2, llama3", "qwen2, gemma2", "mistral, qwen3"})
  void ppoTrainsAPolicyOfEachFamily(String policy, String reward) throws Exception {
    Path run = tmp.resolve("ppo");
    Cli.Run r =
        Cli.rme(
            "ppo",
            "--policy",
            fixture(policy + "-causal"),
            "--reward-model",
            fixture(reward + "-seqcls"),
            "--prompts",
            prompts().toString(),
            "--out",
            run.toString(),
            "--iterations",
            "1",
            "--rollout-batch",
            "2",
            "--step-batch",
            "2",
            "--max-new-tokens",
            "4",
            "--lr",
            "1e-3");
    assertEquals(0, r.code(), r.err());
    JsonNode config = JSON.readTree(run.resolve("policy").resolve("config.json").toFile());
    assertEquals(policy, config.get("model_type").asText());
    JsonNode metrics = JSON.readTree(Files.readAllLines(run.resolve("metrics.jsonl")).get(0));
    assertTrue(metrics.toString().contains("kl"), metrics.toString());
    // The trained policy generates again through its own family's forward.
    Path gen = tmp.resolve("gen.jsonl");
    Cli.Run g =
        Cli.rme(
            "generate",
            "--model",
            run.resolve("policy").toString(),
            "--prompts",
            prompts().toString(),
            "--max-new-tokens",
            "3",
            "--greedy",
            "--out",
            gen.toString());
    assertEquals(0, g.code(), g.err());
    assertEquals(2, Files.readAllLines(gen).size());
  }
}
