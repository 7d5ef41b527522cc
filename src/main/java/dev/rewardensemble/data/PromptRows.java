package dev.rewardensemble.data;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * Reader of {@code rme generate} input: JSONL (or a JSON array) of objects, either pre-tokenized
 * {@code {"input_ids": [ints]}}, text {@code {"prompt": "...", "input": "..."}} ({@code input}
 * optional), or a conversation {@code {"messages": [{"role", "content"}, ...]}} rendered by the
 * tokenizer's chat template with the generation prompt ({@link Encoder#encodeChat}). Other fields
 * are kept in {@link PromptRow#original()}; blank lines are skipped.
 *
 * <p>Text prompts are formatted by the encoder's template and tokenized, without EOS; when too long
 * they are cut from the left. Id rows go through {@link Encoder#encodeIds} (error or left
 * truncation when too long).
 *
 * <p>Any bad row fails the read with an {@link IllegalArgumentException} {@code FILE:LINE: field:
 * problem}: invalid JSON, not an object, neither or both forms, bad ids, empty text, text without a
 * tokenizer, a prompt that encodes to no tokens.
 */
public final class PromptRows {
  private PromptRows() {}

  /**
   * Reads a prompt file.
   *
   * @param encoder encodes the rows; may lack a tokenizer when every row has {@code input_ids}
   * @param vocabSize when present, every id must be below it
   */
  public static List<PromptRow> read(Path file, Encoder encoder, OptionalInt vocabSize) {
    Objects.requireNonNull(encoder, "encoder");
    int vocab = vocabSize.orElse(0);
    return JsonRows.readObjects(file, (obj, line) -> parse(obj, line, encoder, vocab));
  }

  private static PromptRow parse(ObjectNode obj, int line, Encoder encoder, int vocab) {
    boolean hasIds = RowFields.has(obj, "input_ids");
    if (RowFields.has(obj, "messages")) {
      if (hasIds || RowFields.has(obj, "prompt") || RowFields.has(obj, "instruction")) {
        throw new BadRowException(
            "messages", "ambiguous", "given together with input_ids or prompt; use one form");
      }
      List<ChatMessage> messages = ChatMessage.list(obj.get("messages"), "messages");
      ScoreRows.requireChat(encoder);
      int[] ids = BadRowException.encoded("messages", () -> encoder.encodeChat(messages, true));
      checkVocab(ids, vocab, "messages");
      // the text of a conversational prompt is its last message's content (its ids are the whole
      // rendered conversation)
      return new PromptRow(line, ids, messages.get(messages.size() - 1).content(), obj);
    }
    // "prompt", or AlpacaEval's "instruction", or the first of MT-Bench's "turns".
    String textKey =
        RowFields.has(obj, "prompt")
            ? "prompt"
            : RowFields.has(obj, "instruction") ? "instruction" : null;
    boolean turns =
        textKey == null
            && obj.has("turns")
            && obj.get("turns").isArray()
            && obj.get("turns").size() > 0;
    boolean hasText = textKey != null || turns;
    if (hasIds && hasText) {
      throw new BadRowException(
          "input_ids", "ambiguous", "given together with prompt; use one form");
    }
    if (hasIds) {
      int[] ids = RowFields.ids(obj, "input_ids", vocab);
      try {
        return new PromptRow(line, encoder.encodeIds(ids).ids(), null, obj);
      } catch (IllegalArgumentException e) {
        throw new BadRowException("input_ids", "too_long", e.getMessage());
      }
    }
    if (!hasText) {
      throw new BadRowException(
          "row",
          RowFields.MISSING,
          "needs \"input_ids\", \"prompt\", \"instruction\" or MT-Bench \"turns\"");
    }
    String prompt;
    if (textKey != null) {
      prompt = RowFields.text(obj, textKey);
    } else if (obj.get("turns").get(0).isTextual() && !obj.get("turns").get(0).asText().isEmpty()) {
      prompt = obj.get("turns").get(0).asText(); // MT-Bench: the first turn
    } else {
      throw new BadRowException(
          "turns", RowFields.EMPTY_TEXT, "the first turn must be a non-empty string");
    }
    String input = RowFields.optionalText(obj, "input");
    if (!encoder.hasTokenizer()) {
      throw new BadRowException(
          "prompt", "no_tokenizer", "text rows need a tokenizer, and none was given");
    }
    int[] ids = BadRowException.encoded("prompt", () -> encoder.encode(prompt, input, ""));
    if (ids.length == 0) {
      throw new BadRowException("prompt", RowFields.EMPTY_TEXT, "encodes to no tokens");
    }
    checkVocab(ids, vocab, "prompt");
    return new PromptRow(line, ids, prompt, obj);
  }

  private static void checkVocab(int[] ids, int vocab, String field) {
    if (vocab > 0) {
      for (int i = 0; i < ids.length; i++) {
        if (ids[i] >= vocab) {
          throw new BadRowException(
              field,
              RowFields.BAD_ID,
              "token " + i + " = " + ids[i] + " is not below the model's vocabulary size " + vocab);
        }
      }
    }
  }
}
