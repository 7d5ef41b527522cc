package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Reward models of today's families carrying their own tokenizer and chat template score
 * conversations as transformers does ({@code apply_chat_template}, then the model): `rme score` on
 * {@code {"messages": [...]}} rows gives {@code expected_chat.json}'s rewards within 1e-4.
 */
class ChatRewardModelsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  @ParameterizedTest
  @ValueSource(strings = {"llama3-rm", "qwen2.5-rm", "gemma2-rm", "mistral-rm"})
  void conversationsScoreAsInTransformers(String name) throws Exception {
    Path model = Path.of("src/test/resources/chat-templates", name);
    JsonNode expected = JSON.readTree(model.resolve("expected_chat.json").toFile());
    List<String> rows = new ArrayList<>();
    for (JsonNode conversation : expected.get("messages")) {
      rows.add(JSON.writeValueAsString(JSON.createObjectNode().set("messages", conversation)));
    }
    Path in = tmp.resolve("rows.jsonl");
    Path out = tmp.resolve("scores.jsonl");
    Files.write(in, rows);
    Cli.Run r =
        Cli.rme(
            "score", "--model", model.toString(), "--data", in.toString(), "--out", out.toString());
    assertEquals(0, r.code(), r.err());
    List<String> lines = Files.readAllLines(out);
    float[] got = new float[lines.size()];
    for (int i = 0; i < got.length; i++) {
      got[i] = (float) JSON.readTree(lines.get(i)).get("reward").asDouble();
    }
    Fixtures.assertClose(
        Fixtures.floats(expected.get("rewards")), got, 1e-4, 1e-5, name + " chat rewards");
  }
}
