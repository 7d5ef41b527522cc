package dev.rewardensemble.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Paths;
import java.util.Arrays;
import java.util.OptionalInt;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class EncoderTest {
  static Tokenizer tok;

  @BeforeAll
  static void load() {
    tok = Tokenizer.load(Paths.get("src/test/resources/fixtures/tokenizer/tokenizer.json"));
  }

  @AfterAll
  static void close() {
    tok.close();
  }

  static int[] concat(int[]... parts) {
    return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
  }

  @Test
  void promptAndResponseAreTokenizedSeparately() {
    Encoder enc = new Encoder(tok, PromptTemplate.ALPACA, 10_000, OptionalInt.of(2));
    EncodedSequence s = enc.encode("Say hi.", " hello there");
    int[] p = tok.encode(PromptTemplate.ALPACA.prompt("Say hi.", ""));
    int[] r = tok.encode(" hello there");
    assertArrayEquals(concat(p, r, new int[] {2}), s.ids());
    assertEquals(p.length, s.promptLength());
    assertFalse(s.truncated());
    assertEquals(0, enc.truncatedCount());

    EncodedSequence withInput = enc.encode("Translate.", "Bonjour", " Hello");
    int[] p2 = tok.encode(PromptTemplate.ALPACA.prompt("Translate.", "Bonjour"));
    assertArrayEquals(concat(p2, tok.encode(" Hello"), new int[] {2}), withInput.ids());
  }

  @Test
  void rawTemplateWithoutEos() {
    Encoder enc = new Encoder(tok, PromptTemplate.RAW, 10_000, OptionalInt.empty());
    assertArrayEquals(
        concat(tok.encode("Q: why?"), tok.encode(" A: because")),
        enc.encode("Q: why?", " A: because").ids());
  }

  @Test
  void truncationKeepsResponseAndCutsPromptFromTheLeft() {
    int[] p = tok.encode("one two three four five six seven eight nine ten");
    int[] r = tok.encode(" the answer");
    int max = r.length + 1 + 4;
    Encoder enc =
        new Encoder(tok, PromptTemplate.RAW, max, OptionalInt.of(2), Encoder.Truncation.LEFT);
    EncodedSequence s =
        enc.encode("one two three four five six seven eight nine ten", " the answer");
    assertTrue(s.truncated());
    assertEquals(max, s.length());
    assertEquals(4, s.promptLength());
    assertArrayEquals(
        concat(Arrays.copyOfRange(p, p.length - 4, p.length), r, new int[] {2}), s.ids());
    assertEquals(1, enc.truncatedCount());
  }

  @Test
  void overlongResponseIsAnErrorNeverCut() {
    int[] r = tok.encode(" a response that is long enough to overflow");
    Encoder enc =
        new Encoder(tok, PromptTemplate.ALPACA, 5, OptionalInt.of(2), Encoder.Truncation.LEFT);
    IllegalArgumentException x =
        org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class,
            () -> enc.encode("prompt", " a response that is long enough to overflow"));
    assertTrue(x.getMessage().contains((r.length + 1) + " tokens"), x.getMessage());
    assertEquals(0, enc.truncatedCount());

    // response + EOS exactly maxLength: prompt dropped, EOS kept.
    Encoder exact =
        new Encoder(
            tok, PromptTemplate.RAW, r.length + 1, OptionalInt.of(2), Encoder.Truncation.LEFT);
    EncodedSequence e = exact.encode("prompt", " a response that is long enough to overflow");
    assertArrayEquals(concat(r, new int[] {2}), e.ids());
    assertTrue(e.truncated());
  }

  @Test
  void preTokenizedIdsErrorOrLeftTruncate() {
    int[] ids = IntStream.range(3, 13).toArray();
    Encoder strict = new Encoder(null, PromptTemplate.RAW, 6, OptionalInt.of(2));
    var e = assertThrows(IllegalArgumentException.class, () -> strict.encodeIds(ids));
    assertTrue(e.getMessage().contains("10") && e.getMessage().contains("6"), e.getMessage());
    assertArrayEquals(new int[] {3, 4, 5}, strict.encodeIds(new int[] {3, 4, 5}).ids());

    Encoder left =
        new Encoder(null, PromptTemplate.RAW, 6, OptionalInt.empty(), Encoder.Truncation.LEFT);
    EncodedSequence s = left.encodeIds(ids);
    assertArrayEquals(new int[] {7, 8, 9, 10, 11, 12}, s.ids());
    assertTrue(s.truncated());
    assertEquals(1, left.truncatedCount());
  }

  @Test
  void textNeedsTokenizerAndValidSettings() {
    Encoder noTok = new Encoder(null, PromptTemplate.RAW, 8, OptionalInt.empty());
    assertThrows(IllegalStateException.class, () -> noTok.encode("a", "b"));
    assertThrows(
        IllegalArgumentException.class,
        () -> new Encoder(tok, PromptTemplate.RAW, 0, OptionalInt.empty()));
    assertThrows(
        IllegalArgumentException.class,
        () -> new Encoder(tok, PromptTemplate.RAW, 8, OptionalInt.of(320)));
  }
}
