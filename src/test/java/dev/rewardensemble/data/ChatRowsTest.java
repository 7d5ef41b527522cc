package dev.rewardensemble.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Conversational rows of every reader give transformers' {@code apply_chat_template} ids (fixture
 * {@code chat-templates/qwen2.5}), and long conversations lose whole turns from the left.
 */
class ChatRowsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  private static JsonNode expected() throws IOException {
    return JSON.readTree(ChatTemplateTest.dir("qwen2.5").resolve("expected.json").toFile());
  }

  private Path write(String name, List<String> lines) throws IOException {
    Path p = tmp.resolve(name);
    Files.write(p, lines);
    return p;
  }

  @Test
  void scorePromptAndPreferenceRowsGiveTransformersIds() throws IOException {
    JsonNode e = expected();
    try (Tokenizer tok = Tokenizer.load(ChatTemplateTest.dir("qwen2.5"))) {
      Encoder enc =
          new Encoder(
              tok, PromptTemplate.ALPACA, 4096, OptionalInt.empty(), Encoder.Truncation.ERROR);
      List<String> score = new ArrayList<>();
      List<String> prompts = new ArrayList<>();
      List<String> pairs = new ArrayList<>();
      for (JsonNode c : e.get("cases")) {
        JsonNode m = c.get("messages");
        score.add("{\"messages\": " + m + "}");
        var head = JSON.createArrayNode();
        for (int i = 0; i < m.size() - 1; i++) {
          head.add(m.get(i));
        }
        prompts.add("{\"messages\": " + head + "}");
        var last = JSON.createArrayNode().add(m.get(m.size() - 1));
        var other =
            JSON.createArrayNode()
                .add(JSON.createObjectNode().put("role", "assistant").put("content", "no"));
        pairs.add(
            "{\"prompt\": " + head + ", \"chosen\": " + last + ", \"rejected\": " + other + "}");
      }
      List<ScoreRow> rows = ScoreRows.read(write("s.jsonl", score), enc);
      List<PromptRow> ps =
          PromptRows.read(write("p.jsonl", prompts), enc, OptionalInt.of(tok.vocabSize()));
      PreferenceData prefs =
          PreferenceReader.builder().tokenizer(tok).build().read(write("t.jsonl", pairs));
      for (int i = 0; i < rows.size(); i++) {
        JsonNode c = e.get("cases").get(i);
        assertArrayEquals(ChatTemplateTest.ints(c.get("ids")), rows.get(i).ids(), "score " + i);
        assertArrayEquals(
            ChatTemplateTest.ints(c.get("generation_prompt_ids")), ps.get(i).ids(), "prompt " + i);
        assertArrayEquals(
            ChatTemplateTest.ints(c.get("ids")), prefs.pairs().get(i).chosen(), "chosen " + i);
      }
    }
  }

  @Test
  void tooLongConversationsLoseWholeOldestTurnsOrAreRefused() throws IOException {
    try (Tokenizer tok = Tokenizer.load(ChatTemplateTest.dir("gemma2"))) {
      List<ChatMessage> conv =
          List.of(
              ChatMessage.of("user", "first question with many words in it"),
              ChatMessage.of("assistant", "a long first answer with words"),
              ChatMessage.of("user", "second"),
              ChatMessage.of("assistant", "ok"));
      ChatTemplate t = tok.chatTemplate().orElseThrow();
      int[] full = t.encode(tok, conv, false);
      int[] tail = t.encode(tok, conv.subList(2, 4), false);
      int max = tail.length + 1;
      assertTrue(full.length > max);
      Encoder left =
          new Encoder(
              tok, PromptTemplate.ALPACA, max, OptionalInt.empty(), Encoder.Truncation.LEFT);
      EncodedSequence s = left.encodeChat(conv, false);
      assertArrayEquals(tail, s.ids(), "the last exchange, rendered again with its BOS");
      assertTrue(s.truncated());
      assertEquals(1, left.truncatedCount());
      Encoder strict =
          new Encoder(
              tok, PromptTemplate.ALPACA, max, OptionalInt.empty(), Encoder.Truncation.ERROR);
      var err = assertThrows(IllegalArgumentException.class, () -> strict.encodeChat(conv, false));
      assertTrue(err.getMessage().contains(full.length + " tokens"), err.getMessage());
      Encoder tiny =
          new Encoder(
              tok,
              PromptTemplate.ALPACA,
              tail.length - 1,
              OptionalInt.empty(),
              Encoder.Truncation.LEFT);
      var err2 = assertThrows(IllegalArgumentException.class, () -> tiny.encodeChat(conv, false));
      assertTrue(err2.getMessage().contains("its last turn (from message 2)"), err2.getMessage());
    }
  }
}
