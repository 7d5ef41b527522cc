package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvalCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  private Path withTokenizer(String fixture) throws Exception {
    Path dir = tmp.resolve(fixture);
    Files.createDirectories(dir);
    for (String f : List.of("config.json", "model.safetensors")) {
      Files.copy(Fixtures.dir(fixture).resolve(f), dir.resolve(f));
    }
    Files.copy(Fixtures.dir("tokenizer").resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
    return dir;
  }

  @Test
  void writesAlpacaEvalAndMtBenchFormatsAndJudgesAgainstAReference() throws Exception {
    Path policy = withTokenizer("llama-causal");
    Path judge = withTokenizer("llama-seqcls");
    Path prompts = tmp.resolve("eval.jsonl");
    Files.write(
        prompts,
        List.of(
            "{\"instruction\": \"Name a colour.\", \"input\": \"\"}",
            "{\"question_id\": 81, \"category\": \"writing\", \"turns\": [\"Write a haiku.\", \"Now shorter.\"]}",
            "{\"prompt\": \"Say hi.\"}"));
    Path a = tmp.resolve("a");
    var r =
        Cli.rme(
            "eval",
            "--policy",
            policy.toString(),
            "--prompts",
            prompts.toString(),
            "--out",
            a.toString(),
            "--greedy",
            "--max-new-tokens",
            "6",
            "--generator",
            "model-a");
    assertEquals(0, r.code(), r.err());
    JsonNode alpaca = JSON.readTree(a.resolve("alpaca_eval.json").toFile());
    assertEquals(3, alpaca.size());
    assertEquals("Name a colour.", alpaca.get(0).get("instruction").asText());
    assertEquals("Write a haiku.", alpaca.get(1).get("instruction").asText());
    assertEquals("model-a", alpaca.get(2).get("generator").asText());
    List<String> mt = Files.readAllLines(a.resolve("mt_bench_answers.jsonl"));
    assertEquals(3, mt.size());
    JsonNode q = JSON.readTree(mt.get(1));
    assertEquals(81, q.get("question_id").asInt());
    assertEquals(
        alpaca.get(1).get("output").asText(), q.get("choices").get(0).get("turns").get(0).asText());

    // The same greedy policy judged against its own outputs: every comparison is a tie.
    Path b = tmp.resolve("b");
    var j =
        Cli.rme(
            "eval",
            "--policy",
            policy.toString(),
            "--prompts",
            prompts.toString(),
            "--out",
            b.toString(),
            "--greedy",
            "--max-new-tokens",
            "6",
            "--judge",
            judge.toString(),
            "--reference",
            a.resolve("alpaca_eval.json").toString());
    assertEquals(0, j.code(), j.err());
    JsonNode s = JSON.readTree(b.resolve("summary.json").toFile());
    assertEquals(0.5, s.get("win_rate").asDouble(), 1e-12);
    assertEquals(3, Files.readAllLines(b.resolve("judged.jsonl")).size());
    assertTrue(Double.isFinite(s.get("mean_reward").asDouble()));
  }
}
