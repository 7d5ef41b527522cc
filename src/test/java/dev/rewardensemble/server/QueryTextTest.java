package dev.rewardensemble.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/**
 * {@link TextProtocols.QueryText} against OpenRLHF's {@code strip_sequence(query, pad, eos) + eos}
 * ({@code openrlhf/cli/serve_rm.py}); the expected strings are Python 3's output of that function.
 */
class QueryTextTest {
  static final TextProtocols.QueryText BOTH = new TextProtocols.QueryText("<pad>", "</s>");

  @Test
  void stripsPadAndEosRunsFromBothEndsAndAppendsOneEos() {
    assertEquals("abc</s>", BOTH.prepare("abc"));
    assertEquals("abc</s>", BOTH.prepare("abc</s>"));
    assertEquals("abc</s>", BOTH.prepare("abc</s><pad><pad></s>"));
    assertEquals("a</s>b</s>", BOTH.prepare("<pad></s>a</s>b<pad></s><pad>")); // inner kept
    assertEquals("</s>", BOTH.prepare("</s></s>"));
    // Python's $ also matches before one final newline, and only one
    assertEquals("abc\n</s>", BOTH.prepare("abc</s>\n"));
    assertEquals("a</s>\n\n</s>", BOTH.prepare("a</s>\n\n"));
    assertEquals("\n</s>a</s>", BOTH.prepare("\n</s>a"));
    // regex characters in the tokens are literal
    assertEquals("x<|eot_id|>", new TextProtocols.QueryText(null, "<|eot_id|>").prepare("x"));
    assertEquals(
        "x<|eot_id|>", new TextProtocols.QueryText(null, "<|eot_id|>").prepare("x<|eot_id|>"));
  }

  @Test
  void withoutEosOnlyThePadIsStrippedAndWithNeitherTheQueryIsKept() {
    TextProtocols.QueryText padOnly = new TextProtocols.QueryText("<pad>", null);
    assertEquals("abc</s>", padOnly.prepare("<pad>abc</s><pad>"));
    assertEquals("abc", padOnly.prepare("abc"));
    TextProtocols.QueryText none = new TextProtocols.QueryText(null, null);
    assertEquals("<pad>abc</s>", none.prepare("<pad>abc</s>"));
  }
}
