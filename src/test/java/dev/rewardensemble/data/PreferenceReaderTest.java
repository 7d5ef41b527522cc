package dev.rewardensemble.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class PreferenceReaderTest {
  static Tokenizer tok;
  @TempDir Path tmp;

  static final String AF1 =
      "{\"instruction\": \"Say hi.\", \"input\": \"\", \"output_1\": \" hello\","
          + " \"output_2\": \" go away\", \"preference\": 1}";
  static final String AF2 =
      "{\"instruction\": \"Translate.\", \"input\": \"Bonjour\", \"output_1\": \" Goodbye\","
          + " \"output_2\": \" Hello\", \"preference\": 2, \"margin\": 0.5}";
  static final String AF3 =
      "{\"instruction\": \"Count.\", \"output_1\": \" 1 2 3\", \"output_2\": \" 3 2 1\","
          + " \"preference\": 1}";

  @BeforeAll
  static void load() {
    tok = Tokenizer.load(Paths.get("src/test/resources/fixtures/tokenizer/tokenizer.json"));
  }

  @AfterAll
  static void close() {
    tok.close();
  }

  Path write(String name, String content) throws IOException {
    Path f = tmp.resolve(name);
    Files.writeString(f, content);
    return f;
  }

  PreferenceReader.Builder reader() {
    return PreferenceReader.builder().tokenizer(tok).eosId(OptionalInt.of(2));
  }

  static int[] concat(int[]... parts) {
    return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
  }

  @Test
  void alpacaFarmJsonlAndJsonArrayBothParse() throws IOException {
    Path jsonl = write("af.jsonl", AF1 + "\n" + AF2 + "\n\n" + AF3 + "\n");
    Path array = write("af.json", "[\n  " + AF1 + ",\n  " + AF2 + ",\n\n  " + AF3 + "\n]\n");
    PreferenceData a = reader().build().read(jsonl);
    PreferenceData b = reader().build().read(array);
    assertEquals(3, a.pairs().size());
    assertEquals(3, b.pairs().size());
    for (int i = 0; i < 3; i++) {
      assertArrayEquals(a.pairs().get(i).chosen(), b.pairs().get(i).chosen());
      assertArrayEquals(a.pairs().get(i).rejected(), b.pairs().get(i).rejected());
      assertEquals(a.pairs().get(i).margin(), b.pairs().get(i).margin());
    }
    assertEquals(List.of(1, 2, 4), a.pairs().stream().map(PreferencePair::line).toList());
    assertEquals(List.of(2, 3, 5), b.pairs().stream().map(PreferencePair::line).toList());

    // preference 1: chosen is output_1; template ALPACA, EOS appended
    int[] p1 = tok.encode(PromptTemplate.ALPACA.prompt("Say hi.", ""));
    assertArrayEquals(concat(p1, tok.encode(" hello"), new int[] {2}), a.pairs().get(0).chosen());
    assertArrayEquals(
        concat(p1, tok.encode(" go away"), new int[] {2}), a.pairs().get(0).rejected());
    // preference 2: chosen is output_2; input used; margin read
    int[] p2 = tok.encode(PromptTemplate.ALPACA.prompt("Translate.", "Bonjour"));
    assertArrayEquals(concat(p2, tok.encode(" Hello"), new int[] {2}), a.pairs().get(1).chosen());
    assertArrayEquals(
        concat(p2, tok.encode(" Goodbye"), new int[] {2}), a.pairs().get(1).rejected());
    assertEquals(0.5f, a.pairs().get(1).margin());
    assertEquals(0f, a.pairs().get(0).margin());
    // missing input == empty input
    int[] p3 = tok.encode(PromptTemplate.ALPACA.prompt("Count.", ""));
    assertArrayEquals(concat(p3, tok.encode(" 1 2 3"), new int[] {2}), a.pairs().get(2).chosen());
    assertEquals(0, a.skippedRows());
    assertEquals(0, a.truncated());
  }

  @Test
  void trlWithAndWithoutPrompt() throws IOException {
    Path f =
        write(
            "trl.jsonl",
            "{\"prompt\": \"Human: hi\\n"
                + "\\n"
                + "Assistant:\", \"chosen\": \" Hello!\", \"rejected\": \" No.\"}\n"
                + "{\"chosen\": \"Q: 2+2? A: 4\", \"rejected\": \"Q: 2+2? A: 5\", \"margin\":"
                + " 2}\n");
    PreferenceData d = reader().build().read(f);
    int[] p = tok.encode("Human: hi\n\nAssistant:");
    assertArrayEquals(concat(p, tok.encode(" Hello!"), new int[] {2}), d.pairs().get(0).chosen());
    assertArrayEquals(concat(p, tok.encode(" No."), new int[] {2}), d.pairs().get(0).rejected());
    assertArrayEquals(concat(tok.encode("Q: 2+2? A: 4"), new int[] {2}), d.pairs().get(1).chosen());
    assertEquals(2f, d.pairs().get(1).margin());

    // an explicit template applies to TRL prompts too
    PreferenceData alpaca = reader().template(PromptTemplate.ALPACA).build().read(f);
    int[] pa = tok.encode(PromptTemplate.ALPACA.prompt("Human: hi\n\nAssistant:", ""));
    assertArrayEquals(
        concat(pa, tok.encode(" Hello!"), new int[] {2}), alpaca.pairs().get(0).chosen());
  }

  @Test
  void tokenizedRowsWithoutTokenizer() throws IOException {
    Path f =
        write(
            "tok.jsonl",
            "{\"chosen_ids\": [5, 6, 7], \"rejected_ids\": [5, 8], \"margin\": -1.5}\n");
    PreferenceData d = PreferenceReader.builder().build().read(f);
    assertArrayEquals(new int[] {5, 6, 7}, d.pairs().get(0).chosen());
    assertArrayEquals(new int[] {5, 8}, d.pairs().get(0).rejected());
    assertEquals(-1.5f, d.pairs().get(0).margin());
  }

  @Test
  void formatAutoDetectionAndExplicitFormat() throws IOException {
    Path af = write("a.jsonl", AF1 + "\n");
    Path trl = write("t.jsonl", "{\"prompt\": \"p\", \"chosen\": \" a\", \"rejected\": \" b\"}\n");
    Path ids = write("i.jsonl", "{\"chosen_ids\": [3], \"rejected_ids\": [4]}\n");
    assertEquals(PreferenceFormat.ALPACA_FARM, detect(af));
    assertEquals(PreferenceFormat.TRL, detect(trl));
    assertEquals(PreferenceFormat.TOKENIZED, detect(ids));

    // explicit formats read the matching files ...
    assertEquals(1, reader().format(PreferenceFormat.ALPACA_FARM).build().read(af).pairs().size());
    assertEquals(1, reader().format(PreferenceFormat.TRL).build().read(trl).pairs().size());
    assertEquals(1, reader().format(PreferenceFormat.TOKENIZED).build().read(ids).pairs().size());
    // ... and report the missing field of a mismatching one
    var e =
        assertThrows(
            IllegalArgumentException.class,
            () -> reader().format(PreferenceFormat.TRL).build().read(af));
    assertTrue(e.getMessage().startsWith(af + ":1: chosen: missing"), e.getMessage());

    // detection uses the first valid row: an invalid first line is skipped when allowed
    Path late =
        write("late.jsonl", "not json\n" + "{\"chosen_ids\": [3], \"rejected_ids\": [4]}\n");
    PreferenceData d = reader().skipBadRows(true).build().read(late);
    assertEquals(1, d.pairs().size());
    assertEquals(Map.of("invalid_json", 1), d.skippedByReason());

    assertEquals(PreferenceFormat.ALPACA_FARM, PreferenceFormat.byName("alpaca-farm"));
    assertEquals(PreferenceFormat.AUTO, PreferenceFormat.byName("auto"));
    assertThrows(IllegalArgumentException.class, () -> PreferenceFormat.byName("csv"));
  }

  /** The format detected for a one-row file; AUTO must read it exactly as that format does. */
  private PreferenceFormat detect(Path f) throws IOException {
    String row = Files.readString(f).strip();
    var obj = (com.fasterxml.jackson.databind.node.ObjectNode) JsonRows.JSON.readTree(row);
    PreferenceFormat detected = PreferenceReader.detect(obj);
    PreferencePair auto = reader().build().read(f).pairs().get(0);
    PreferencePair explicit = reader().format(detected).build().read(f).pairs().get(0);
    assertArrayEquals(explicit.chosen(), auto.chosen());
    assertArrayEquals(explicit.rejected(), auto.rejected());
    return detected;
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      textBlock =
"""
invalid json | {"instruction": "x", | row | invalid JSON
not an object | [1, 2] | row | JSON object
missing field | {"instruction": "x", "output_1": "a", "preference": 1} | output_2 | missing
wrong type | {"instruction": 3, "output_1": "a", "output_2": "b", "preference": 1} | instruction | expected a string
bad preference | {"instruction": "x", "output_1": "a", "output_2": "b", "preference": 3} | preference | expected 1 or 2
preference string | {"instruction": "x", "output_1": "a", "output_2": "b", "preference": "1"} | preference | expected 1 or 2
empty text | {"instruction": "x", "output_1": "", "output_2": "b", "preference": 1} | output_1 | empty text
bad margin | {"instruction": "x", "output_1": "a", "output_2": "b", "preference": 1, "margin": "big"} | margin | expected a number
""")
  void alpacaFarmBadRowsNameFileLineAndField(String kind, String bad, String field, String problem)
      throws IOException {
    Path f = write("bad.jsonl", AF1 + "\n\n" + bad + "\n" + AF2 + "\n");
    var e = assertThrows(IllegalArgumentException.class, () -> reader().build().read(f));
    assertTrue(e.getMessage().startsWith(f + ":3: " + field + ": "), kind + ": " + e.getMessage());
    assertTrue(e.getMessage().contains(problem), kind + ": " + e.getMessage());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      textBlock =
"""
empty ids        | {"chosen_ids": [], "rejected_ids": [4]}     | chosen_ids   | empty
ids not ints     | {"chosen_ids": [3], "rejected_ids": ["4"]}  | rejected_ids | not an int
id over vocab    | {"chosen_ids": [3], "rejected_ids": [400]}  | rejected_ids | vocabulary
missing ids      | {"chosen_ids": [3]}                         | rejected_ids | missing
too long | {"chosen_ids": [3, 3, 3, 3, 3], "rejected_ids": [4]} | chosen_ids | maximum length
""")
  void tokenizedBadRowsNameFileLineAndField(String kind, String bad, String field, String problem)
      throws IOException {
    Path f = write("bad.jsonl", "{\"chosen_ids\": [3], \"rejected_ids\": [4]}\n" + bad + "\n");
    var e =
        assertThrows(IllegalArgumentException.class, () -> reader().maxLength(4).build().read(f));
    assertTrue(e.getMessage().startsWith(f + ":2: " + field + ": "), kind + ": " + e.getMessage());
    assertTrue(e.getMessage().contains(problem), kind + ": " + e.getMessage());
  }

  @Test
  void trlConversationalRowsMixedWithTextAreAWrongType() throws IOException {
    Path f =
        write(
            "conv.jsonl",
            "{\"chosen\": [{\"role\": \"user\", \"content\": \"hi\"}], \"rejected\": \"x\"}\n");
    var e = assertThrows(IllegalArgumentException.class, () -> reader().build().read(f));
    assertTrue(
        e.getMessage().startsWith(f + ":1: rejected: expected a list of messages, got a string"),
        e.getMessage());
  }

  @Test
  void jsonArrayBadRowReportsItsRealLine() throws IOException {
    Path f =
        write(
            "bad.json",
            "[\n  "
                + AF1
                + ",\n  {\n    \"instruction\": \"x\",\n    \"output_1\": \"a\",\n"
                + "    \"output_2\": \"b\",\n    \"preference\": 0\n  }\n]\n");
    var e = assertThrows(IllegalArgumentException.class, () -> reader().build().read(f));
    assertTrue(e.getMessage().startsWith(f + ":3: preference: "), e.getMessage());

    Path broken = write("broken.json", "[\n  " + AF1 + ",\n  {\"instruction\": }\n]\n");
    e =
        assertThrows(
            IllegalArgumentException.class, () -> reader().skipBadRows(true).build().read(broken));
    assertTrue(e.getMessage().startsWith(broken + ":3: row: invalid JSON"), e.getMessage());
  }

  @Test
  void skipBadRowsCountsPerReason() throws IOException {
    Path f =
        write(
            "mixed.jsonl",
            String.join(
                "\n",
                AF1,
                "{broken",
                "\"just a string\"",
                "{\"instruction\": \"x\", \"output_1\": \"a\", \"preference\": 1}",
                "{\"instruction\": \"x\", \"output_1\": \"a\", \"output_2\": \"b\", \"preference\":"
                    + " 7}",
                "{\"instruction\": \"x\", \"output_1\": \"a\", \"output_2\": \"\", \"preference\":"
                    + " 1}",
                "{\"instruction\": \"x\", \"output_1\": \"a\", \"output_2\": \"b\", \"preference\":"
                    + " 1.5}",
                AF2,
                ""));
    PreferenceData d = reader().skipBadRows(true).build().read(f);
    assertEquals(2, d.pairs().size());
    assertEquals(List.of(1, 8), d.pairs().stream().map(PreferencePair::line).toList());
    assertEquals(6, d.skippedRows());
    assertEquals(
        Map.of(
            "invalid_json", 1,
            "not_an_object", 1,
            "missing_field", 1,
            "bad_preference", 2,
            "empty_text", 1),
        d.skippedByReason());
  }

  @Test
  void sha256AndTruncationCount() throws Exception {
    Path f = write("af.jsonl", AF1 + "\n" + AF2 + "\n");
    String want =
        HexFormat.of()
            .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f)));
    PreferenceData full = reader().build().read(f);
    assertEquals(want, full.sha256());
    assertEquals(f, full.file());

    int[] resp = tok.encode(" go away");
    PreferenceData cut =
        reader().maxLength(resp.length + 1 + 3).truncation(Encoder.Truncation.LEFT).build().read(f);
    PreferencePair p = cut.pairs().get(0);
    assertEquals(resp.length + 4, p.rejected().length);
    assertArrayEquals(
        concat(resp, new int[] {2}), Arrays.copyOfRange(p.rejected(), 3, p.rejected().length));
    assertEquals(4, cut.truncated()); // both prompts are long: all four sequences cut

    Path ids =
        write(
            "ids.jsonl",
            "{\"chosen_ids\": "
                + Arrays.toString(IntStream.range(3, 13).toArray())
                + ", \"rejected_ids\": [4]}\n");
    PreferenceData left =
        reader().maxLength(4).truncation(Encoder.Truncation.LEFT).build().read(ids);
    assertArrayEquals(new int[] {9, 10, 11, 12}, left.pairs().get(0).chosen());
    assertEquals(1, left.truncated());
  }

  @Test
  void textWithoutTokenizerAndEmptyFilesFail() throws IOException {
    Path f = write("af.jsonl", AF1 + "\n");
    var e =
        assertThrows(
            IllegalArgumentException.class,
            () -> PreferenceReader.builder().skipBadRows(true).build().read(f));
    assertTrue(e.getMessage().contains("tokenizer") && e.getMessage().contains(f + ":1:"));

    Path empty = write("empty.jsonl", "\n\n");
    e = assertThrows(IllegalArgumentException.class, () -> reader().build().read(empty));
    assertTrue(e.getMessage().contains("no usable preference pairs"), e.getMessage());

    Path missing = tmp.resolve("missing.jsonl");
    e = assertThrows(IllegalArgumentException.class, () -> reader().build().read(missing));
    assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());

    Path unknown = write("unknown.jsonl", "{\"text\": \"hello\"}\n");
    e = assertThrows(IllegalArgumentException.class, () -> reader().build().read(unknown));
    assertTrue(
        e.getMessage().startsWith(unknown + ":1: row: matches no preference format"),
        e.getMessage());
  }
}
