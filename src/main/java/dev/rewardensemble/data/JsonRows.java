package dev.rewardensemble.data;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.NullNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * Iterates the rows of a JSONL file (one value per line, blank lines skipped) or of a JSON array
 * file (first non-blank character {@code '['}), with the 1-based line on which each row starts.
 *
 * <p>An unparsable JSONL line is delivered as a row with an error, so readers may skip it. A syntax
 * error inside a JSON array cannot be skipped (the rest of the file cannot be resynced) and is
 * thrown as an {@link IllegalArgumentException} naming file and line.
 */
final class JsonRows {
  /** For whole JSONL lines: content after the value is an error. */
  static final ObjectMapper JSON =
      new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  /** For streaming array elements (more elements follow each one). */
  private static final ObjectMapper STREAM = new ObjectMapper();

  /**
   * One row: either {@code node} or, for an unparsable JSONL line, {@code error}.
   *
   * @param line 1-based line where the row starts
   */
  record Row(int line, JsonNode node, String error) {}

  private JsonRows() {}

  /** Whether the file's first non-blank character (after an optional BOM) is {@code '['}. */
  static boolean isArrayFile(Path file) {
    try (InputStream in = Files.newInputStream(file)) {
      int b;
      boolean first = true;
      while ((b = in.read()) != -1) {
        if (first && b == 0xEF) { // UTF-8 BOM EF BB BF
          in.skip(2);
          first = false;
          continue;
        }
        first = false;
        if (b != ' ' && b != '\t' && b != '\n' && b != '\r') {
          return b == '[';
        }
      }
      return false;
    } catch (NoSuchFileException e) {
      throw new IllegalArgumentException("file not found: " + file, e);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  /** Delivers every row of the file, in order. */
  /**
   * Every row of {@code file} as a JSON object, converted by {@code parse(object, line)}; invalid
   * JSON, a non-object row, or a {@link BadRowException} from {@code parse} stops with one {@code
   * FILE:LINE: field: problem} error.
   */
  static <T> java.util.List<T> readObjects(
      Path file,
      java.util.function.BiFunction<com.fasterxml.jackson.databind.node.ObjectNode, Integer, T>
          parse) {
    java.util.List<T> out = new java.util.ArrayList<>();
    forEach(
        file,
        row -> {
          try {
            if (row.error() != null) {
              throw new BadRowException("row", "invalid_json", row.error());
            }
            if (!(row.node() instanceof com.fasterxml.jackson.databind.node.ObjectNode obj)) {
              throw new BadRowException(
                  "row",
                  "not_an_object",
                  "expected a JSON object, got " + RowFields.kind(row.node()));
            }
            out.add(parse.apply(obj, row.line()));
          } catch (BadRowException e) {
            throw new IllegalArgumentException(e.located(file, row.line()), e);
          }
        });
    return out;
  }

  static void forEach(Path file, Consumer<Row> sink) {
    if (isArrayFile(file)) {
      forEachArrayElement(file, sink);
    } else {
      forEachLine(file, sink);
    }
  }

  private static void forEachLine(Path file, Consumer<Row> sink) {
    try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      String s;
      int line = 0;
      while ((s = r.readLine()) != null) {
        line++;
        if (line == 1 && s.startsWith("\uFEFF")) {
          s = s.substring(1);
        }
        if (s.isBlank()) {
          continue;
        }
        JsonNode node;
        try {
          node = JSON.readTree(s);
        } catch (JsonProcessingException e) {
          sink.accept(new Row(line, null, "invalid JSON: " + e.getOriginalMessage()));
          continue;
        }
        sink.accept(new Row(line, node, null));
      }
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException(file + ": not valid UTF-8", e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
  }

  private static void forEachArrayElement(Path file, Consumer<Row> sink) {
    try (JsonParser p = STREAM.createParser(file.toFile())) {
      if (p.nextToken() != JsonToken.START_ARRAY) {
        throw new IllegalArgumentException(file + ": expected a JSON array");
      }
      JsonToken t;
      while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
        if (t == null) {
          throw new IllegalArgumentException(
              file + ":" + p.currentLocation().getLineNr() + ": row: unterminated JSON array");
        }
        int line = p.currentTokenLocation().getLineNr();
        JsonNode node = p.readValueAsTree();
        if (node == null) {
          node = NullNode.getInstance();
        }
        sink.accept(new Row(line, node, null));
      }
      if (p.nextToken() != null) {
        throw new IllegalArgumentException(
            file
                + ":"
                + p.currentTokenLocation().getLineNr()
                + ": row: unexpected content after the JSON array");
      }
    } catch (JsonProcessingException e) {
      JsonLocation loc = e.getLocation();
      int line = loc == null ? -1 : loc.getLineNr();
      throw new IllegalArgumentException(
          file + ":" + line + ": row: invalid JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
  }
}
