package dev.rewardensemble.data;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * Reader of {@code rme score} input: JSONL with one object per line, either pre-tokenized {@code
 * {"input_ids": [ints]}}, text {@code {"prompt": "...", "response": "..."}}, or a conversation
 * {@code {"messages": [{"role": "...", "content": "..."}, ...]}} (rendered whole by the tokenizer's
 * chat template, see {@link Encoder#encodeChat}). Other fields are kept in {@link
 * ScoreRow#original()}. Blank lines are skipped. A JSON array of such objects is accepted too.
 *
 * <p>Text rows are encoded with {@link Encoder#encode(String, String)} (prompt template applied,
 * prompt cut from the left when too long). Id rows go through {@link Encoder#encodeIds} (error or
 * left truncation when too long).
 *
 * <p>Any bad row fails the whole read with an {@link IllegalArgumentException} whose message is
 * {@code FILE:LINE: field: problem}: invalid JSON, not an object, neither form present, both forms
 * present, ids not ints / negative / not below the vocabulary size, empty id list, empty text, or
 * text rows when the encoder has no tokenizer.
 */
public final class ScoreRows {
  private ScoreRows() {}

  /**
   * Reads a score input file, checking ids against the tokenizer's vocabulary when the encoder has
   * one.
   */
  public static List<ScoreRow> read(Path file, Encoder encoder) {
    return read(
        file,
        encoder,
        encoder.hasTokenizer()
            ? OptionalInt.of(encoder.tokenizer().vocabSize())
            : OptionalInt.empty());
  }

  /**
   * Reads a score input file.
   *
   * @param encoder encodes the rows; may lack a tokenizer when every row has {@code input_ids}
   * @param vocabSize when present, every id must be below it
   */
  public static List<ScoreRow> read(Path file, Encoder encoder, OptionalInt vocabSize) {
    Objects.requireNonNull(encoder, "encoder");
    int vocab = vocabSize.orElse(0);
    return JsonRows.readObjects(file, (obj, line) -> parse(obj, line, encoder, vocab));
  }

  /**
   * One row given as a JSON value (not read from a file), e.g. by {@code rme serve}'s {@code
   * /v1/score}: the same forms and checks as {@link #read(Path, Encoder, OptionalInt)}.
   *
   * @param line the row's number, kept in {@link ScoreRow#line()}
   * @throws IllegalArgumentException {@code field: problem}, naming the field at fault
   */
  public static ScoreRow parse(
      com.fasterxml.jackson.databind.JsonNode row, int line, Encoder encoder, OptionalInt vocab) {
    Objects.requireNonNull(encoder, "encoder");
    try {
      if (!(row instanceof ObjectNode obj)) {
        throw new BadRowException(
            "row", "not_an_object", "expected a JSON object, got " + RowFields.kind(row));
      }
      return parse(obj, line, encoder, vocab.orElse(0));
    } catch (BadRowException e) {
      throw new IllegalArgumentException(e.field() + ": " + e.getMessage(), e);
    }
  }

  /**
   * Encodes one row of any shape {@link #read} accepts, for readers that do not read JSONL files
   * (e.g. rows of a Spark {@code Dataset}): the same checks and the same ids as {@link #read}.
   *
   * @param vocabSize every id must be below it ({@code <= 0}: no bound)
   * @throws IllegalArgumentException {@code field: problem} for a bad row; {@link
   *     #badRowReason(IllegalArgumentException)} gives its counting key
   */
  public static int[] encodeRow(ObjectNode row, Encoder encoder, int vocabSize) {
    Objects.requireNonNull(encoder, "encoder");
    try {
      return parse(row, 0, encoder, vocabSize).ids();
    } catch (BadRowException e) {
      throw new BadRow(e.field() + ": " + e.getMessage(), e.reason());
    }
  }

  /**
   * The short counting key of a bad row thrown by {@link #encodeRow} ({@code missing_field}, {@code
   * too_long}, ...), or {@code "bad_row"} for any other exception.
   */
  public static String badRowReason(IllegalArgumentException e) {
    return e instanceof BadRow b ? b.reason : "bad_row";
  }

  /** A bad row of {@link #encodeRow}: an {@link IllegalArgumentException} with its counting key. */
  private static final class BadRow extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final String reason;

    BadRow(String message, String reason) {
      super(message);
      this.reason = reason;
    }
  }

  private static ScoreRow parse(ObjectNode obj, int line, Encoder encoder, int vocab) {
    boolean hasIds = RowFields.has(obj, "input_ids");
    boolean hasText = RowFields.has(obj, "prompt") || RowFields.has(obj, "response");
    if (RowFields.has(obj, "messages")) {
      if (hasIds || hasText) {
        throw new BadRowException(
            "messages",
            "ambiguous",
            "given together with " + (hasIds ? "input_ids" : "prompt/response") + "; use one form");
      }
      List<ChatMessage> messages = ChatMessage.list(obj.get("messages"), "messages");
      requireChat(encoder);
      return new ScoreRow(
          line,
          BadRowException.encoded("messages", () -> encoder.encodeChat(messages, false)),
          obj);
    }
    if (hasIds && hasText) {
      throw new BadRowException(
          "input_ids", "ambiguous", "given together with prompt/response; use one form");
    }
    if (hasIds) {
      int[] ids = RowFields.ids(obj, "input_ids", vocab);
      return new ScoreRow(line, encodeIds(encoder, ids), obj);
    }
    if (!hasText) {
      throw new BadRowException(
          "row", RowFields.MISSING, "needs \"input_ids\" or \"prompt\" and \"response\"");
    }
    String prompt = RowFields.text(obj, "prompt");
    String response = RowFields.text(obj, "response");
    if (!encoder.hasTokenizer()) {
      throw new BadRowException(
          "prompt", "no_tokenizer", "text rows need a tokenizer, and none was given");
    }
    return new ScoreRow(
        line, BadRowException.encoded("response", () -> encoder.encode(prompt, response)), obj);
  }

  /** A missing chat template is the same for every row: one error, never skipped. */
  static void requireChat(Encoder encoder) {
    try {
      encoder.chatTemplate();
    } catch (IllegalArgumentException e) {
      throw new BadRowException("messages", "no_chat_template", e.getMessage());
    }
  }

  private static int[] encodeIds(Encoder encoder, int[] ids) {
    try {
      return encoder.encodeIds(ids).ids();
    } catch (IllegalArgumentException e) {
      throw new BadRowException("input_ids", "too_long", e.getMessage());
    }
  }
}
