package dev.rewardensemble.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Chat templates rendered and tokenized exactly as transformers' {@code apply_chat_template} does,
 * for the real templates of Llama 3.1, Qwen2.5, Gemma 2, Mistral and Phi-3.5 (fixtures in {@code
 * src/test/resources/chat-templates/}, written by transformers 5.18).
 */
class ChatTemplateTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  static Path dir(String name) {
    try {
      return Path.of(
              ChatTemplateTest.class
                  .getResource("/chat-templates/" + name + "/expected.json")
                  .toURI())
          .getParent();
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  static List<ChatMessage> messages(JsonNode n) {
    return ChatMessage.list(n, "messages");
  }

  @SuppressWarnings("unchecked")
  @ParameterizedTest
  @ValueSource(
      strings = {"llama3", "qwen2.5", "gemma2", "mistral", "phi3", "qwen3", "mistral-v0.3"})
  void rendersAndTokenizesLikeTransformers(String name) throws IOException {
    Path dir = dir(name);
    JsonNode expected = JSON.readTree(dir.resolve("expected.json").toFile());
    ChatTemplate t = ChatTemplate.find(dir).orElseThrow();
    // the template is the real one, from where the checkpoint stores it
    String real =
        Files.readString(
            dir.resolve("../templates").resolve(expected.get("template_file").asText()));
    assertEquals(real, t.source(), name + ": template source");
    assertTrue(
        t.origin()
            .contains(
                expected.get("template_stored_in").asText().equals("file")
                    ? "chat_template.jinja"
                    : "tokenizer_config.json"),
        t.origin());
    expected
        .get("special_tokens")
        .fields()
        .forEachRemaining(
            e ->
                assertEquals(e.getValue().asText(), t.specialTokens().get(e.getKey()), e.getKey()));
    Map<String, Object> vars = JSON.convertValue(expected.get("variables"), Map.class);
    try (Tokenizer tok = Tokenizer.load(dir)) {
      int n = 0;
      for (JsonNode c : expected.get("cases")) {
        List<ChatMessage> msgs = messages(c.get("messages"));
        String where = name + " case " + n++;
        assertEquals(c.get("text").asText(), t.render(msgs, false, vars), where + " text");
        assertArrayEquals(ints(c.get("ids")), tok.encode(t.render(msgs, false, vars)), where);
        if (vars.isEmpty()) {
          assertArrayEquals(ints(c.get("ids")), t.encode(tok, msgs, false), where + " ids");
        }
        List<ChatMessage> head = msgs.subList(0, msgs.size() - 1);
        String gen = t.render(head, true, vars);
        assertEquals(c.get("generation_prompt_text").asText(), gen, where + " generation prompt");
        assertArrayEquals(
            ints(c.get("generation_prompt_ids")), tok.encode(gen), where + " generation ids");
      }
      assertTrue(n >= 3, name + ": cases");
    }
    JsonNode raises = expected.get("raises");
    if (raises != null && !raises.isNull()) {
      List<ChatMessage> bad = messages(raises);
      ChatTemplateException e =
          assertThrows(ChatTemplateException.class, () -> t.render(bad, false, vars));
      assertTrue(e.getMessage().contains(t.origin()), e.getMessage());
      // the template's own message, e.g. "Conversation roles must alternate ..."
      assertTrue(
          t.source().contains("raise_exception('" + e.templateMessage() + "')")
              || t.source().contains("raise_exception(\"" + e.templateMessage() + "\")"),
          e.templateMessage());
    }
  }

  @Test
  void theFirstRaiseWinsAndStopsTheRendering() {
    ChatTemplate t =
        ChatTemplate.of(
            "{% for m in messages %}{% if m.role == 'x' %}{{ raise_exception('bad ' + m.content)"
                + " }}{% endif %}{{ m.content }}{% endfor %}",
            Map.of(), "inline");
    ChatTemplateException e =
        assertThrows(
            ChatTemplateException.class,
            () ->
                t.render(
                    List.of(
                        ChatMessage.of("user", "a"),
                        ChatMessage.of("x", "one"),
                        ChatMessage.of("x", "two")),
                    false));
    assertEquals("bad one", e.templateMessage());
    assertEquals("chat template inline raised: bad one", e.getMessage());
    // and a later render of a good conversation is not affected
    assertEquals(
        "ab", t.render(List.of(ChatMessage.of("user", "a"), ChatMessage.of("u", "b")), false));
  }

  @Test
  void strftimeNowIsDefinedAndFormatsTodayAsLlama32Uses() {
    ChatTemplate t =
        ChatTemplate.of(
            "{% if strftime_now is defined %}{{ strftime_now('%d %b %Y') }}{% else %}none{% endif %}",
            Map.of(), "inline");
    String today =
        java.time.LocalDate.now()
            .format(
                java.time.format.DateTimeFormatter.ofPattern(
                    "dd MMM yyyy", java.util.Locale.ENGLISH));
    assertEquals(today, t.render(List.of(ChatMessage.of("user", "u")), false));
    // a date_string variable given by the caller is what the template sees
    ChatTemplate d = ChatTemplate.of("{{ date_string }}", Map.of(), "inline");
    assertEquals(
        "26 Jul 2024",
        d.render(
            List.of(ChatMessage.of("user", "u")), false, Map.of("date_string", "26 Jul 2024")));
  }

  @Test
  void messageContentIsNeverRenderedAsATemplate() {
    ChatTemplate t = ChatTemplate.of("{{ messages[0].content }}", Map.of(), "inline");
    assertEquals(
        "{{ 6 * 7 }} {% if true %}x{% endif %}",
        t.render(List.of(ChatMessage.of("user", "{{ 6 * 7 }} {% if true %}x{% endif %}")), false));
  }

  @Test
  void trimStripsPythonsWhitespaceAndTojsonIsPythonsJsonDumps() {
    ChatTemplate t =
        ChatTemplate.of(
            "[{{ messages[0].content | trim }}]{{ messages[0] | tojson }}"
                + "{{ messages[1] | tojson(indent=2) }}",
            Map.of(),
            "inline");
    String nbsp = "\u00a0\u2007\u202f\u0085\u3000 \t\n";
    Map<String, Object> second = new java.util.LinkedHashMap<>();
    second.put("role", "assistant");
    second.put("content", "é\"\\\u0001");
    second.put("n", List.of(1, 2.5, 1e-5, true));
    second.put("empty", Map.of());
    String out =
        t.render(
            List.of(ChatMessage.of("user", nbsp + "hi ü" + nbsp), new ChatMessage(second)), false);
    assertEquals(
        "[hi ü]{\"role\": \"user\", \"content\": \""
            + "\u00a0\u2007\u202f\u0085\u3000 \\t\\nhi ü\u00a0\u2007\u202f\u0085\u3000 \\t\\n\"}"
            + "{\n  \"role\": \"assistant\",\n  \"content\": \"é\\\"\\\\\\u0001\",\n"
            + "  \"n\": [\n    1,\n    2.5,\n    1e-05,\n    true\n  ],\n  \"empty\": {}\n}",
        out);
  }

  @Test
  void crlfAndOneTrailingNewlineAreTreatedAsJinja2Does() {
    ChatTemplate t = ChatTemplate.of("a\r\n{{ bos_token }}\r\n\n", Map.of("bos_token", "<s>"), "x");
    assertEquals("a\n<s>\n", t.render(List.of(ChatMessage.of("user", "u")), false));
  }

  @Test
  void findReadsAddedTokensNamedTemplatesAndPrefersTheJinjaFile(@TempDir Path tmp)
      throws IOException {
    Files.writeString(
        tmp.resolve("tokenizer_config.json"),
        "{\"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<B>\"},"
            + " \"eos_token\": \"<E>\","
            + " \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
            + " {\"name\": \"default\", \"template\": \"{{ bos_token }}D{{ eos_token }}\"}]}");
    ChatTemplate t = ChatTemplate.find(tmp.resolve("tokenizer.json")).orElseThrow();
    assertEquals("<B>D<E>", t.render(List.of(ChatMessage.of("user", "u")), false));
    Files.writeString(tmp.resolve("chat_template.jinja"), "J{{ eos_token }}\n");
    ChatTemplate j = ChatTemplate.find(tmp).orElseThrow();
    assertEquals("J<E>", j.render(List.of(ChatMessage.of("user", "u")), false));
    assertTrue(j.origin().endsWith("chat_template.jinja"), j.origin());
  }

  @Test
  void findRefusesSeveralTemplatesWithoutADefaultAndFindsNothingWithoutOne(@TempDir Path tmp)
      throws IOException {
    Files.writeString(tmp.resolve("tokenizer_config.json"), "{\"eos_token\": \"<E>\"}");
    assertFalse(ChatTemplate.find(tmp).isPresent());
    Files.writeString(
        tmp.resolve("tokenizer_config.json"),
        "{\"chat_template\": [{\"name\": \"a\", \"template\": \"T\"}]}");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> ChatTemplate.find(tmp));
    assertTrue(e.getMessage().contains("tokenizer_config.json"), e.getMessage());
    assertTrue(e.getMessage().contains("none named \"default\""), e.getMessage());
  }

  static int[] ints(JsonNode n) {
    List<Integer> l = new ArrayList<>();
    n.forEach(x -> l.add(x.asInt()));
    return l.stream().mapToInt(Integer::intValue).toArray();
  }
}
