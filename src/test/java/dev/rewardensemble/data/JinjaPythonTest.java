package dev.rewardensemble.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Python's str methods, slices and Jinja2's precedences in chat templates, against what Jinja2
 * (transformers' sandboxed environment) renders for the same templates ({@code
 * chat-templates/python-methods.json}, written by {@code scripts/make_chat_fixtures.py}).
 */
class JinjaPythonTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @SuppressWarnings("unchecked")
  @Test
  void rendersAsJinja2Does() throws IOException {
    JsonNode fixture =
        JSON.readTree(ChatTemplateTest.dir("qwen3").resolve("../python-methods.json").toFile());
    Map<String, Object> vars = JSON.convertValue(fixture.get("context"), Map.class);
    int n = 0;
    for (JsonNode c : fixture.get("cases")) {
      ChatTemplate t = ChatTemplate.of(c.get("template").asText(), Map.of(), "inline");
      String got = t.render(List.of(ChatMessage.of("user", "u")), false, vars);
      // Jinjava prints booleans as true/false where Python prints True/False (documented)
      String want = c.get("output").asText().replace("True", "true").replace("False", "false");
      assertEquals(want, got, c.get("template").asText());
      n++;
    }
    assertEquals(13, n);
  }

  @Test
  void slicesFollowPythonsRules() {
    assertEquals("[3, 2, 1]", ints(new JinjaPython.Slice(-2, 0, -1).indices(5)));
    assertEquals("[0, 3]", ints(new JinjaPython.Slice(null, null, 3).indices(5)));
    assertEquals("[]", ints(new JinjaPython.Slice(3, 1, null).indices(5)));
    assertEquals("[4, 3, 2, 1, 0]", ints(new JinjaPython.Slice(100, null, -1).indices(5)));
    assertThrows(IllegalArgumentException.class, () -> new JinjaPython.Slice(null, null, 0));
  }

  @Test
  void rewritesOnlySlicesInsideExpressionsAndStatements() {
    String src =
        "a[::-1] {# x[1:] #}{{ m[1:] + 'y[:2]' }}{% for x in xs[::-1] %}{% endfor %}"
            + "{% raw %}{{ z[1:] }}{% endraw %}{{ {'k': 1}['k'] }}";
    assertEquals(
        "a[::-1] {# x[1:] #}{{ m[rme_slice(1, none, none)] + 'y[:2]' }}"
            + "{% for x in xs[rme_slice(none, none, -1)] %}{% endfor %}"
            + "{% raw %}{{ z[1:] }}{% endraw %}{{ {'k': 1}['k'] }}",
        JinjaPython.rewriteSlices(src));
    assertEquals(
        "namespace(a=(b|length - 1), c=(1))",
        JinjaPython.rewriteExpression("namespace(a=b|length - 1, c=1)"));
    assertEquals(
        "not (x.y is defined) or not (z is not none)",
        JinjaPython.rewriteExpression("not x.y is defined or not z is not none"));
  }

  @Test
  void aTemplateErrorInAMethodIsReportedWithTheTemplate() {
    ChatTemplate t = ChatTemplate.of("{{ messages[0].content.split('') }}", Map.of(), "inline");
    ChatTemplateException e =
        assertThrows(
            ChatTemplateException.class,
            () -> t.render(List.of(ChatMessage.of("user", "u")), false));
    assertEquals(true, e.getMessage().startsWith("chat template inline failed:"), e.getMessage());
  }

  private static String ints(int[] a) {
    return java.util.Arrays.toString(a);
  }
}
