package dev.rewardensemble.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.OptionalInt;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerTest {
  static final Path DIR = Paths.get("src/test/resources/fixtures/tokenizer");
  static Tokenizer tok;

  @BeforeAll
  static void load() {
    tok = Tokenizer.load(DIR.resolve("tokenizer.json"));
  }

  @AfterAll
  static void close() {
    tok.close();
  }

  @Test
  void fixtureCasesEncodeAndDecodeExactly() throws Exception {
    JsonNode cases =
        new ObjectMapper().readTree(DIR.resolve("expected.json").toFile()).get("cases");
    assertTrue(cases.size() > 0);
    boolean sawEmpty = false;
    for (JsonNode c : cases) {
      String text = c.get("text").asText();
      int[] want = new int[c.get("ids").size()];
      for (int i = 0; i < want.length; i++) {
        want[i] = c.get("ids").get(i).intValue();
      }
      int[] got = tok.encode(text);
      assertArrayEquals(want, got, "ids of " + text);
      assertEquals(c.get("decoded").asText(), tok.decode(got), "decode of " + text);
      sawEmpty |= text.isEmpty();
    }
    assertTrue(sawEmpty, "fixture has the empty string");
  }

  @Test
  void vocabularyAndSpecialTokens() {
    assertEquals(320, tok.vocabSize());
    assertEquals(OptionalInt.of(0), tok.tokenId("<pad>"));
    assertEquals(OptionalInt.of(1), tok.tokenId("<s>"));
    assertEquals(OptionalInt.of(2), tok.tokenId("</s>"));
    assertFalse(tok.tokenId("no-such-token").isPresent());
  }

  @Test
  void decodeKeepsSpecialTokensAndRejectsOutOfRange() {
    int[] ids = tok.encode("hi");
    int[] withEos = java.util.Arrays.copyOf(ids, ids.length + 1);
    withEos[ids.length] = 2;
    assertTrue(tok.decode(withEos).endsWith("</s>"));
    assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {320}));
    assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {-1}));
  }

  @Test
  void directoryIsAccepted() {
    try (Tokenizer t = Tokenizer.load(DIR)) {
      assertEquals(320, t.vocabSize());
    }
  }

  @Test
  void missingOrInvalidFileNamesTheFile(@TempDir Path tmp) throws Exception {
    Path missing = tmp.resolve("nope.json");
    var e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(missing));
    assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());

    Path garbage = tmp.resolve("garbage.json");
    Files.writeString(garbage, "{not json");
    e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(garbage));
    assertTrue(e.getMessage().contains(garbage.toString()), e.getMessage());

    Path wrong = tmp.resolve("wrong.json");
    Files.writeString(wrong, "{\"model\": {\"type\": \"Nonsense\"}}");
    e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(wrong));
    assertTrue(e.getMessage().contains(wrong.toString()), e.getMessage());
  }
}
