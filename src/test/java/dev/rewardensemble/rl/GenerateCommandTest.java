package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.cli.Main;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code rme generate} end to end through {@link Main#run}, and its error paths (exit code 2). */
class GenerateCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  static Cli.Run rme(String... args) {
    return Cli.rme(args);
  }

  private Path write(String name, String... lines) throws Exception {
    Path p = tmp.resolve(name);
    Files.write(p, List.of(lines));
    return p;
  }

  private static String model() {
    return Fixtures.dir("llama-causal").toString();
  }

  @Test
  void greedyRowsReproduceTransformersInInputOrder() throws Exception {
    JsonNode e = Fixtures.expected("llama-causal");
    int[] prompt = Fixtures.ints2(e.get("prompt"))[0];
    int[] greedy = Fixtures.ints2(e.get("greedy_ids"))[0];
    float[] logprobs = Fixtures.floats(e.get("token_logprobs"));
    Path in =
        write(
            "in.jsonl",
            "{\"id\": \"a\", \"input_ids\": [5, 6]}",
            "",
            JSON.writeValueAsString(java.util.Map.of("input_ids", prompt)));
    Path out = tmp.resolve("out.jsonl");
    Cli.Run r =
        rme(
            "generate",
            "--model",
            model(),
            "--prompts",
            in.toString(),
            "--out",
            out.toString(),
            "--max-new-tokens",
            "20",
            "--greedy",
            "--batch-size",
            "2");
    assertEquals(0, r.code(), r.err());
    List<String> lines = Files.readAllLines(out);
    assertEquals(2, lines.size());
    JsonNode first = JSON.readTree(lines.get(0));
    assertEquals("a", first.get("id").asText());
    assertEquals(1, first.get("line").asInt());
    JsonNode row = JSON.readTree(lines.get(1));
    assertEquals(3, row.get("line").asInt());
    assertTrue(row.get("prompt").isNull(), "no tokenizer beside the fixture");
    assertTrue(row.get("response").isNull());
    assertFalse(row.get("finished").asBoolean());
    int[] ids = new int[row.get("response_ids").size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = row.get("response_ids").get(i).asInt();
    }
    assertArrayEquals(Arrays.copyOfRange(greedy, prompt.length, greedy.length), ids);
    Fixtures.assertClose(
        Arrays.copyOfRange(logprobs, prompt.length - 1, logprobs.length),
        Fixtures.floats(row.get("token_logprobs")),
        0,
        1e-4,
        "token_logprobs");
  }

  @Test
  void textPromptsAreTemplatedTokenizedAndDecoded() throws Exception {
    Path in = write("in.jsonl", "{\"prompt\": \"hello world\"}");
    Path out1 = tmp.resolve("a.jsonl");
    Path out2 = tmp.resolve("b.jsonl");
    String tok = Fixtures.dir("tokenizer").resolve("tokenizer.json").toString();
    for (Path out : List.of(out1, out2)) {
      Cli.Run r =
          rme(
              "generate",
              "--model",
              model(),
              "--prompts",
              in.toString(),
              "--out",
              out.toString(),
              "--max-new-tokens",
              "8",
              "--temperature",
              "0.7",
              "--top-p",
              "0.9",
              "--top-k",
              "50",
              "--seed",
              "3",
              "--tokenizer",
              tok,
              "--template",
              "raw");
      assertEquals(0, r.code(), r.err());
    }
    assertEquals(Files.readAllLines(out1), Files.readAllLines(out2), "same seed, same output");
    JsonNode row = JSON.readTree(Files.readAllLines(out1).get(0));
    assertEquals("hello world", row.get("prompt").asText());
    assertTrue(row.get("response").isTextual());
    assertEquals(row.get("response_ids").size(), row.get("token_logprobs").size());
    assertTrue(row.get("response_ids").size() >= 1 && row.get("response_ids").size() <= 8);
  }

  @Test
  void badInputIsOneLineAndExitCode2() throws Exception {
    Path bad = write("bad.jsonl", "{\"input_ids\": [1, 2]}", "{\"input_ids\": \"x\"}");
    Cli.Run r =
        rme(
            "generate",
            "--model",
            model(),
            "--prompts",
            bad.toString(),
            "--max-new-tokens",
            "4",
            "--greedy");
    assertEquals(2, r.code());
    assertTrue(r.err().contains(bad + ":2: input_ids: expected an array of ints"), r.err());

    Path text = write("text.jsonl", "{\"prompt\": \"hi\"}");
    r =
        rme(
            "generate",
            "--model",
            model(),
            "--prompts",
            text.toString(),
            "--max-new-tokens",
            "4",
            "--greedy");
    assertEquals(2, r.code());
    assertTrue(r.err().contains(text + ":1: prompt: text rows need a tokenizer"), r.err());

    Path ok = write("ok.jsonl", "{\"input_ids\": [1, 2]}");
    r =
        rme(
            "generate",
            "--model",
            model(),
            "--prompts",
            ok.toString(),
            "--max-new-tokens",
            "4",
            "--greedy",
            "--temperature",
            "0.5");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--greedy cannot be combined"), r.err());

    r =
        rme(
            "generate",
            "--model",
            model(),
            "--prompts",
            ok.toString(),
            "--max-new-tokens",
            "4",
            "--temperature",
            "0.5");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--seed is required"), r.err());

    // The count is checked before the sampling options: it is what this line names.
    r =
        rme(
            "generate",
            "--model",
            model(),
            "--prompts",
            ok.toString(),
            "--max-new-tokens",
            "0",
            "--temperature",
            "0.5");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--max-new-tokens must be >= 1, got 0"), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());

    r =
        rme(
            "generate",
            "--model",
            model(),
            "--prompts",
            ok.toString(),
            "--max-new-tokens",
            "4",
            "--top-p",
            "1.5",
            "--seed",
            "1");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("topP must be in (0, 1], got 1.5"), r.err());

    r =
        rme(
            "generate",
            "--model",
            Fixtures.dir("llama-seqcls").toString(),
            "--prompts",
            ok.toString(),
            "--max-new-tokens",
            "4",
            "--greedy");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("has no language-model head"), r.err());

    r =
        rme(
            "generate",
            "--model",
            model(),
            "--prompts",
            ok.toString(),
            "--max-new-tokens",
            "256",
            "--greedy");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("leaves no room for a prompt"), r.err());
  }
}
