package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.data.ChatMessage;
import dev.rewardensemble.data.ChatTemplate;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Conversational rows end to end: {@code rme score}, {@code train-rm} and {@code generate} on the
 * tiny Llama models with Mistral's real chat template added to their tokenizer (as a checkpoint
 * stores it: {@code tokenizer_config.json} with {@code bos_token}, {@code eos_token}, {@code
 * chat_template}).
 */
class ChatRowsCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  private static final String CONVERSATION =
      "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\":"
          + " \"hi there\"}, {\"role\": \"assistant\", \"content\": \"hello!\"}]";

  /** A copy of {@code src} with Mistral's chat template beside its tokenizer. */
  private Path withChatTemplate(Path src, String name) throws IOException {
    Path dir = tmp.resolve(name);
    Files.createDirectories(dir);
    try (var files = Files.list(src)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        Files.copy(f, dir.resolve(f.getFileName()));
      }
    }
    if (!Files.exists(dir.resolve("tokenizer.json"))) {
      Files.copy(Path.of("examples/tiny-llama-rm/tokenizer.json"), dir.resolve("tokenizer.json"));
    }
    String template =
        Files.readString(Path.of("src/test/resources/chat-templates/templates/mistral.jinja"));
    Map<String, Object> config =
        Map.of("bos_token", "<s>", "eos_token", "</s>", "chat_template", template);
    Files.writeString(dir.resolve("tokenizer_config.json"), JSON.writeValueAsString(config));
    return dir;
  }

  private static int[] rendered(Path dir, String messagesJson, boolean generation)
      throws IOException {
    List<ChatMessage> msgs = new ArrayList<>();
    for (JsonNode m : JSON.readTree(messagesJson)) {
      msgs.add(ChatMessage.of(m.get("role").asText(), m.get("content").asText()));
    }
    try (Tokenizer tok = Tokenizer.load(dir)) {
      ChatTemplate t = tok.chatTemplate().orElseThrow();
      return t.encode(tok, msgs, generation);
    }
  }

  @Test
  void scoreRendersMessagesWithTheCheckpointsTemplate() throws IOException {
    Path model = withChatTemplate(Path.of("examples/tiny-llama-rm"), "rm");
    int[] ids = rendered(model, CONVERSATION, false);
    Path in = tmp.resolve("in.jsonl");
    Files.write(
        in,
        List.of(
            "{\"id\": \"chat\", \"messages\": " + CONVERSATION + "}",
            "{\"id\": \"ids\", \"input_ids\": " + JSON.writeValueAsString(ids) + "}"));
    Path out = tmp.resolve("out.jsonl");
    Cli.Run r =
        Cli.rme(
            "score", "--model", model.toString(), "--data", in.toString(), "--out", out.toString());
    assertEquals(0, r.code(), r.err());
    List<String> lines = Files.readAllLines(out);
    double chat = JSON.readTree(lines.get(0)).get("reward").asDouble();
    double byIds = JSON.readTree(lines.get(1)).get("reward").asDouble();
    // the same ids in two rows of one batch: equal up to float rounding (Eigen's products, and
    // oneDNN's on an AVX2 CPU, can round rows at different positions of a batch differently:
    // 1.1e-6 measured there)
    assertEquals(byIds, chat, 1e-5, "a messages row scores its rendered ids");

    // --template chat: prompt/response text rows become a user/assistant conversation
    Path text = tmp.resolve("text.jsonl");
    Files.write(text, List.of("{\"prompt\": \"hi there\", \"response\": \"hello!\"}"));
    Path out2 = tmp.resolve("out2.jsonl");
    Cli.Run t =
        Cli.rme(
            "score",
            "--model",
            model.toString(),
            "--data",
            text.toString(),
            "--out",
            out2.toString(),
            "--template",
            "chat");
    assertEquals(0, t.code(), t.err());
    int[] userAssistant =
        rendered(
            model,
            "[{\"role\": \"user\", \"content\": \"hi there\"}, {\"role\": \"assistant\","
                + " \"content\": \"hello!\"}]",
            false);
    Path idsIn = tmp.resolve("ids.jsonl");
    Files.write(idsIn, List.of("{\"input_ids\": " + JSON.writeValueAsString(userAssistant) + "}"));
    Path out3 = tmp.resolve("out3.jsonl");
    assertEquals(
        0,
        Cli.rme(
                "score",
                "--model",
                model.toString(),
                "--data",
                idsIn.toString(),
                "--out",
                out3.toString())
            .code());
    assertEquals(
        JSON.readTree(Files.readAllLines(out3).get(0)).get("reward").asDouble(),
        JSON.readTree(Files.readAllLines(out2).get(0)).get("reward").asDouble(),
        0.0);
  }

  @Test
  void aTemplateThatRaisesOrNoTemplateIsExit2NamingTheRow() throws IOException {
    Path model = withChatTemplate(Path.of("examples/tiny-llama-rm"), "rm");
    Path in = tmp.resolve("bad.jsonl");
    Files.write(
        in,
        List.of(
            "{\"messages\": " + CONVERSATION + "}",
            "",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\","
                + " \"content\": \"b\"}]}"));
    Cli.Run r = Cli.rme("score", "--model", model.toString(), "--data", in.toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(
        r.err()
            .contains(in + ":3: messages: chat template " + model.resolve("tokenizer_config.json")),
        r.err());
    assertTrue(
        r.err().contains("conversation roles must alternate user/assistant/user/assistant/..."),
        r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());

    Cli.Run none = Cli.rme("score", "--model", "examples/tiny-llama-rm", "--data", in.toString());
    assertEquals(2, none.code(), none.err());
    assertTrue(
        none.err().contains(in + ":1: messages: conversational rows need a chat template"),
        none.err());
    assertTrue(none.err().contains("has none"), none.err());
  }

  @Test
  void trainRmOnConversationalPairsThenScoreTheRunWithMessages() throws IOException {
    Path model = withChatTemplate(Fixtures.dir("llama-seqcls"), "base");
    List<String> pairs = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      pairs.add(
          "{\"prompt\": [{\"role\": \"user\", \"content\": \"question "
              + i
              + "\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": \"good answer "
              + i
              + "\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"bad\"}]}");
    }
    Path data = tmp.resolve("pairs.jsonl");
    Files.write(data, pairs);
    Path run = tmp.resolve("run");
    Cli.Run t =
        Cli.rme(
            "train-rm",
            "--model",
            model.toString(),
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
            "--eval-fraction",
            "0");
    assertEquals(0, t.code(), t.err());
    assertTrue(Files.isRegularFile(run.resolve("tokenizer_config.json")), "template kept");
    Path in = tmp.resolve("in.jsonl");
    Files.write(in, List.of("{\"messages\": " + CONVERSATION + "}"));
    Path runScores = tmp.resolve("run-scores.jsonl");
    Cli.Run s =
        Cli.rme(
            "score",
            "--model",
            run.toString(),
            "--data",
            in.toString(),
            "--out",
            runScores.toString());
    assertEquals(0, s.code(), s.err());
    // exported, the model still carries its chat template and scores chat rows the same
    Path hf = tmp.resolve("export-hf");
    Cli.Run x =
        Cli.rme("export", "--model", run.toString(), "--format", "hf", "--out", hf.toString());
    assertEquals(0, x.code(), x.err());
    assertTrue(Files.isRegularFile(hf.resolve("tokenizer_config.json")), "template exported");
    for (String f : ChatTemplate.TOKENIZER_FILES) {
      assertEquals(
          Files.exists(model.resolve(f)), Files.exists(hf.resolve(f)), f + " carried along");
    }
    Path hfScores = tmp.resolve("hf-scores.jsonl");
    Cli.Run hs =
        Cli.rme(
            "score",
            "--model",
            hf.toString(),
            "--data",
            in.toString(),
            "--out",
            hfScores.toString());
    assertEquals(0, hs.code(), hs.err());
    assertEquals(
        JSON.readTree(Files.readAllLines(runScores).get(0)).get("reward").asDouble(),
        JSON.readTree(Files.readAllLines(hfScores).get(0)).get("reward").asDouble(),
        1e-5);
  }

  @Test
  void generateContinuesTheRenderedGenerationPrompt() throws IOException {
    Path model = withChatTemplate(Fixtures.dir("llama-causal"), "policy");
    String prompt =
        "[{\"role\": \"user\", \"content\": \"hi there\"}, {\"role\": \"assistant\", \"content\":"
            + " \"hello!\"}, {\"role\": \"user\", \"content\": \"more\"}]";
    int[] expected = rendered(model, prompt, true);
    Path in = tmp.resolve("prompts.jsonl");
    Files.write(
        in,
        List.of(
            "{\"messages\": " + prompt + "}",
            "{\"input_ids\": " + JSON.writeValueAsString(expected) + "}"));
    Path out = tmp.resolve("gen.jsonl");
    Cli.Run r =
        Cli.rme(
            "generate",
            "--model",
            model.toString(),
            "--prompts",
            in.toString(),
            "--out",
            out.toString(),
            "--max-new-tokens",
            "3",
            "--greedy");
    assertEquals(0, r.code(), r.err());
    List<String> lines = Files.readAllLines(out);
    JsonNode chat = JSON.readTree(lines.get(0));
    JsonNode ids = JSON.readTree(lines.get(1));
    assertEquals(3, chat.get("response_ids").size(), chat.toString());
    // the same greedy continuation as from the rendered prompt's ids (the generation prompt)
    assertEquals(ids.get("response_ids"), chat.get("response_ids"));
    for (int i = 0; i < 3; i++) {
      assertEquals(
          ids.get("token_logprobs").get(i).asDouble(),
          chat.get("token_logprobs").get(i).asDouble(),
          1e-5); // batched with padding: float noise only
    }
  }
}
