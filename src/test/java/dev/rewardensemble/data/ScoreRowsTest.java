package dev.rewardensemble.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ScoreRowsTest {
  static Tokenizer tok;
  @TempDir Path tmp;

  @BeforeAll
  static void load() {
    tok = Tokenizer.load(Paths.get("src/test/resources/fixtures/tokenizer/tokenizer.json"));
  }

  @AfterAll
  static void close() {
    tok.close();
  }

  Path write(String content) throws IOException {
    Path f = tmp.resolve("score.jsonl");
    Files.writeString(f, content);
    return f;
  }

  @Test
  void readsIdAndTextRowsKeepingOtherFields() throws IOException {
    Path f =
        write(
            "{\"id\": \"a\", \"input_ids\": [5, 6, 7]}\n"
                + "\n"
                + "   \n"
                + "{\"id\": 7, \"prompt\": \"Say hi.\", \"response\": \" hi\", \"extra\": true}\n");
    Encoder enc = new Encoder(tok, PromptTemplate.ALPACA, 512, OptionalInt.of(2));
    List<ScoreRow> rows = ScoreRows.read(f, enc);
    assertEquals(2, rows.size());
    assertEquals(1, rows.get(0).line());
    assertArrayEquals(new int[] {5, 6, 7}, rows.get(0).ids());
    assertEquals("a", rows.get(0).original().get("id").asText());
    assertEquals(4, rows.get(1).line());
    assertArrayEquals(enc.encode("Say hi.", " hi").ids(), rows.get(1).ids());
    assertEquals(7, rows.get(1).original().get("id").intValue());
    assertTrue(rows.get(1).original().get("extra").booleanValue());
  }

  @Test
  void idRowsWorkWithoutTokenizer() throws IOException {
    Path f = write("{\"input_ids\": [1, 2, 3, 4]}\n");
    Encoder enc =
        new Encoder(null, PromptTemplate.RAW, 2, OptionalInt.empty(), Encoder.Truncation.LEFT);
    List<ScoreRow> rows = ScoreRows.read(f, enc, OptionalInt.empty());
    assertArrayEquals(new int[] {3, 4}, rows.get(0).ids());
    assertEquals(1, enc.truncatedCount());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      textBlock =
"""
invalid json        | {"input_ids": [1, 2]                      | row       | invalid JSON
not an object       | [1, 2, 3]                                 | row       | JSON object
neither form        | {"id": 3}                                 | row       | input_ids
ids not ints        | {"input_ids": [1, "2"]}                   | input_ids | not an int
ids float           | {"input_ids": [1, 2.5]}                   | input_ids | not an int
ids negative        | {"input_ids": [1, -2]}                    | input_ids | negative
ids over vocab      | {"input_ids": [1, 320]}                   | input_ids | vocabulary
ids empty           | {"input_ids": []}                         | input_ids | empty
ids not array       | {"input_ids": "1 2"}                      | input_ids | array
empty response      | {"prompt": "p", "response": ""}           | response  | empty text
missing response    | {"prompt": "p"}                           | response  | missing
both forms          | {"input_ids": [1], "prompt": "p"}         | input_ids | one form
too long            | {"input_ids": [1, 2, 3, 4, 5, 6, 7, 8, 9]} | input_ids | maximum length
""")
  void badRowNamesFileLineAndField(String kind, String badLine, String field, String problem)
      throws IOException {
    // a leading valid row, a blank line, then the bad row on line 3
    Path f = write("{\"input_ids\": [1]}\n\n" + badLine.replace("\\n", "\n") + "\n");
    Encoder enc = new Encoder(tok, PromptTemplate.ALPACA, 8, OptionalInt.empty());
    var e = assertThrows(IllegalArgumentException.class, () -> ScoreRows.read(f, enc));
    String msg = e.getMessage();
    assertTrue(msg.startsWith(f + ":3: " + field + ": "), kind + ": " + msg);
    assertTrue(msg.contains(problem), kind + ": " + msg);
  }

  @Test
  void textRowWithoutTokenizerIsAnError() throws IOException {
    Path f = write("{\"prompt\": \"p\", \"response\": \"r\"}\n");
    Encoder enc = new Encoder(null, PromptTemplate.RAW, 8, OptionalInt.empty());
    var e =
        assertThrows(
            IllegalArgumentException.class, () -> ScoreRows.read(f, enc, OptionalInt.empty()));
    assertTrue(e.getMessage().startsWith(f + ":1: prompt: "), e.getMessage());
    assertTrue(e.getMessage().contains("tokenizer"), e.getMessage());
  }
}
