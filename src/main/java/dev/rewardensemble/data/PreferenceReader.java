package dev.rewardensemble.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.common.hash.Hashing;
import com.google.common.io.MoreFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.TreeMap;

/**
 * Reads preference pairs for Bradley-Terry training from a JSONL file or a JSON array file, in one
 * of the {@link PreferenceFormat}s (auto-detected per file by default, from the keys of the first
 * row that looks like one of them).
 *
 * <p>Text is encoded by an {@link Encoder}: AlpacaFarm rows as {@code template.prompt(instruction,
 * input)} (template {@link PromptTemplate#ALPACA} unless one is set) followed by the output; TRL
 * rows as {@code template.prompt(prompt, "")} (template {@link PromptTemplate#RAW} unless one is
 * set) followed by chosen / rejected, or, without a prompt, chosen / rejected alone as full texts.
 * TRL's conversational rows ({@code chosen} / {@code rejected} message lists, optional {@code
 * prompt} message list before both) are rendered whole by the tokenizer's chat template ({@link
 * Encoder#encodeChat}); so are all text rows with {@link PromptTemplate#CHAT}. Pre-tokenized rows
 * are used as given (too long: error or left truncation per {@link Encoder.Truncation}). An
 * optional numeric {@code margin} column is read in every format.
 *
 * <p>A bad row (invalid JSON, not an object, missing field, wrong type, preference not 1 or 2,
 * empty text, empty ids, id out of range, too long) throws an {@link IllegalArgumentException}
 * {@code FILE:LINE: field: problem}, where LINE is the line on which the row starts, also for JSON
 * array files. With {@link Builder#skipBadRows(boolean)} such rows are skipped and counted per
 * reason instead. Not skippable: a syntax error inside a JSON array file, text rows without a
 * tokenizer, and a file with no usable pair.
 */
public final class PreferenceReader {
  private final Tokenizer tokenizer;
  private final PromptTemplate template;
  private final int maxLength;
  private final OptionalInt eosId;
  private final Encoder.Truncation truncation;
  private final PreferenceFormat format;
  private final boolean skipBadRows;
  private final int vocabSize;

  private PreferenceReader(Builder b) {
    this.tokenizer = b.tokenizer;
    this.template = b.template;
    this.maxLength = b.maxLength;
    this.eosId = b.eosId;
    this.truncation = b.truncation;
    this.format = b.format;
    this.skipBadRows = b.skipBadRows;
    this.vocabSize =
        b.vocabSize.isPresent()
            ? b.vocabSize.getAsInt()
            : tokenizer == null ? 0 : tokenizer.vocabSize();
    // fail early on bad settings
    new Encoder(tokenizer, PromptTemplate.RAW, maxLength, eosId, truncation);
  }

  /** A builder with defaults: no tokenizer, no length limit, no EOS, AUTO format, strict rows. */
  public static Builder builder() {
    return new Builder();
  }

  /** Settings of a {@link PreferenceReader}. */
  public static final class Builder {
    private Tokenizer tokenizer;
    private PromptTemplate template;
    private int maxLength = Integer.MAX_VALUE;
    private OptionalInt eosId = OptionalInt.empty();
    private Encoder.Truncation truncation = Encoder.Truncation.ERROR;
    private PreferenceFormat format = PreferenceFormat.AUTO;
    private boolean skipBadRows;
    private OptionalInt vocabSize = OptionalInt.empty();

    private Builder() {}

    /** Tokenizer for text formats; {@code null} allows only pre-tokenized rows. */
    public Builder tokenizer(Tokenizer tokenizer) {
      this.tokenizer = tokenizer;
      return this;
    }

    /**
     * Prompt template for all text formats; {@code null} (the default) means ALPACA for AlpacaFarm
     * rows and RAW for TRL rows.
     */
    public Builder template(PromptTemplate template) {
      this.template = template;
      return this;
    }

    /** Maximum ids per sequence (default: unlimited). */
    public Builder maxLength(int maxLength) {
      this.maxLength = maxLength;
      return this;
    }

    /** EOS id appended after each text response. */
    public Builder eosId(OptionalInt eosId) {
      this.eosId = Objects.requireNonNull(eosId);
      return this;
    }

    /** What to do with over-long pre-tokenized rows (default ERROR). */
    public Builder truncation(Encoder.Truncation truncation) {
      this.truncation = Objects.requireNonNull(truncation);
      return this;
    }

    /** Row format (default AUTO). */
    public Builder format(PreferenceFormat format) {
      this.format = Objects.requireNonNull(format);
      return this;
    }

    /** Skip and count bad rows instead of failing (default false). */
    public Builder skipBadRows(boolean skip) {
      this.skipBadRows = skip;
      return this;
    }

    /** Upper bound for pre-tokenized ids (default: the tokenizer's vocabulary size, if any). */
    public Builder vocabSize(OptionalInt vocabSize) {
      this.vocabSize = Objects.requireNonNull(vocabSize);
      return this;
    }

    public PreferenceReader build() {
      return new PreferenceReader(this);
    }
  }

  /**
   * Reads one file.
   *
   * @throws IllegalArgumentException for a missing file, a bad row (unless skipped), or no usable
   *     pair
   */
  public PreferenceData read(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException("preference file not found: " + file);
    }
    String sha256;
    try {
      sha256 = MoreFiles.asByteSource(file).hash(Hashing.sha256()).toString();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
    Encoder alpaca =
        new Encoder(
            tokenizer,
            template == null ? PromptTemplate.ALPACA : template,
            maxLength,
            eosId,
            truncation);
    Encoder trl =
        new Encoder(
            tokenizer,
            template == null ? PromptTemplate.RAW : template,
            maxLength,
            eosId,
            truncation);
    Encoder ids = new Encoder(null, PromptTemplate.RAW, maxLength, eosId, truncation);
    List<PreferencePair> pairs = new ArrayList<>();
    Map<String, Integer> skipped = new TreeMap<>();
    PreferenceFormat[] resolved = {format == PreferenceFormat.AUTO ? null : format};
    int[] skippedRows = {0};

    JsonRows.forEach(
        file,
        row -> {
          try {
            ObjectNode obj = object(row);
            if (resolved[0] == null) {
              resolved[0] = detect(obj);
            }
            pairs.add(
                switch (resolved[0]) {
                  case ALPACA_FARM -> alpacaFarm(obj, row.line(), alpaca, file);
                  case TRL -> trl(obj, row.line(), trl, file);
                  case TOKENIZED -> tokenized(obj, row.line(), ids);
                  case AUTO -> throw new AssertionError();
                });
          } catch (BadRowException e) {
            if (!skipBadRows) {
              throw new IllegalArgumentException(e.located(file, row.line()), e);
            }
            skippedRows[0]++;
            skipped.merge(e.reason(), 1, Integer::sum);
          }
        });

    if (pairs.isEmpty()) {
      throw new IllegalArgumentException(
          file
              + ": no usable preference pairs"
              + (skippedRows[0] > 0
                  ? " (" + skippedRows[0] + " bad rows skipped: " + skipped + ")"
                  : ""));
    }
    int truncated = alpaca.truncatedCount() + trl.truncatedCount() + ids.truncatedCount();
    return new PreferenceData(file, sha256, pairs, skippedRows[0], skipped, truncated);
  }

  private static ObjectNode object(JsonRows.Row row) {
    if (row.error() != null) {
      throw new BadRowException("row", "invalid_json", row.error());
    }
    JsonNode n = row.node();
    if (!(n instanceof ObjectNode obj)) {
      throw new BadRowException(
          "row", "not_an_object", "expected a JSON object, got " + RowFields.kind(n));
    }
    return obj;
  }

  /** The format a row looks like, by its keys. */
  static PreferenceFormat detect(ObjectNode row) {
    if (row.has("chosen_ids") || row.has("rejected_ids")) {
      return PreferenceFormat.TOKENIZED;
    }
    if (row.has("output_1") || row.has("output_2") || row.has("preference")) {
      return PreferenceFormat.ALPACA_FARM;
    }
    if (row.has("chosen") || row.has("rejected")) {
      return PreferenceFormat.TRL;
    }
    List<String> keys = new ArrayList<>();
    row.fieldNames().forEachRemaining(keys::add);
    throw new BadRowException(
        "row",
        "unknown_format",
        "matches no preference format (keys "
            + keys
            + "; expected output_1/output_2/preference,"
            + " chosen/rejected, or chosen_ids/rejected_ids)");
  }

  private PreferencePair alpacaFarm(ObjectNode row, int line, Encoder enc, Path file) {
    String instruction = RowFields.text(row, "instruction");
    String input = RowFields.optionalText(row, "input");
    String out1 = RowFields.text(row, "output_1");
    String out2 = RowFields.text(row, "output_2");
    int pref = preference(row);
    float margin = RowFields.margin(row);
    requireTokenizer(file, line, "instruction");
    if (enc.template() == PromptTemplate.CHAT) {
      int[] c1 = BadRowException.encoded("output_1", () -> enc.encode(instruction, input, out1));
      int[] c2 = BadRowException.encoded("output_2", () -> enc.encode(instruction, input, out2));
      return pref == 1
          ? new PreferencePair(c1, c2, margin, line)
          : new PreferencePair(c2, c1, margin, line);
    }
    int[] prompt = tokenizer.encode(enc.template().prompt(instruction, input));
    int[] ids1 =
        BadRowException.encoded("output_1", () -> enc.join(prompt, tokenizer.encode(out1)));
    int[] ids2 =
        BadRowException.encoded("output_2", () -> enc.join(prompt, tokenizer.encode(out2)));
    return pref == 1
        ? new PreferencePair(ids1, ids2, margin, line)
        : new PreferencePair(ids2, ids1, margin, line);
  }

  private static int preference(ObjectNode row) {
    JsonNode n = row.get("preference");
    if (n == null || n.isNull()) {
      throw new BadRowException("preference", RowFields.MISSING, "missing");
    }
    if (!n.isNumber()) {
      throw new BadRowException(
          "preference", RowFields.WRONG_TYPE, "expected 1 or 2, got " + RowFields.kind(n));
    }
    double v = n.doubleValue();
    if (v != 1.0 && v != 2.0) {
      throw new BadRowException("preference", "bad_preference", "expected 1 or 2, got " + n);
    }
    return (int) v;
  }

  private PreferencePair trl(ObjectNode row, int line, Encoder enc, Path file) {
    if (ChatMessage.isConversation(row.get("chosen"))
        || ChatMessage.isConversation(row.get("rejected"))
        || ChatMessage.isConversation(row.get("prompt"))) {
      return trlConversation(row, line, enc, file);
    }
    String prompt = RowFields.optionalText(row, "prompt");
    String chosen = RowFields.text(row, "chosen");
    String rejected = RowFields.text(row, "rejected");
    float margin = RowFields.margin(row);
    requireTokenizer(file, line, "chosen");
    if (enc.template() == PromptTemplate.CHAT) {
      // text rows as conversations: [user: prompt, assistant: chosen|rejected]; without a prompt,
      // chosen and rejected are single assistant messages
      List<ChatMessage> head =
          prompt == null || prompt.isEmpty() ? List.of() : List.of(ChatMessage.of("user", prompt));
      List<ChatMessage> c = new ArrayList<>(head);
      c.add(ChatMessage.of("assistant", chosen));
      List<ChatMessage> r = new ArrayList<>(head);
      r.add(ChatMessage.of("assistant", rejected));
      return new PreferencePair(
          BadRowException.encoded("chosen", () -> enc.encodeChat(c, false)),
          BadRowException.encoded("rejected", () -> enc.encodeChat(r, false)),
          margin,
          line);
    }
    int[] p =
        prompt == null || prompt.isEmpty()
            ? new int[0]
            : tokenizer.encode(enc.template().prompt(prompt, ""));
    return new PreferencePair(
        BadRowException.encoded("chosen", () -> enc.join(p, tokenizer.encode(chosen))),
        BadRowException.encoded("rejected", () -> enc.join(p, tokenizer.encode(rejected))),
        margin,
        line);
  }

  /**
   * TRL's conversational rows: {@code chosen} and {@code rejected} are message lists, and an
   * optional {@code prompt} message list is put before both; each conversation is rendered whole by
   * the chat template.
   */
  private PreferencePair trlConversation(ObjectNode row, int line, Encoder enc, Path file) {
    List<ChatMessage> prompt =
        RowFields.has(row, "prompt") ? ChatMessage.list(row.get("prompt"), "prompt") : List.of();
    List<ChatMessage> chosen = ChatMessage.list(row.get("chosen"), "chosen");
    List<ChatMessage> rejected = ChatMessage.list(row.get("rejected"), "rejected");
    float margin = RowFields.margin(row);
    requireTokenizer(file, line, "chosen");
    try {
      enc.chatTemplate();
    } catch (IllegalArgumentException e) {
      // a configuration error, not a bad row: never skipped
      throw new IllegalArgumentException(file + ":" + line + ": chosen: " + e.getMessage(), e);
    }
    List<ChatMessage> c = new ArrayList<>(prompt);
    c.addAll(chosen);
    List<ChatMessage> r = new ArrayList<>(prompt);
    r.addAll(rejected);
    return new PreferencePair(
        BadRowException.encoded("chosen", () -> enc.encodeChat(c, false)),
        BadRowException.encoded("rejected", () -> enc.encodeChat(r, false)),
        margin,
        line);
  }

  private PreferencePair tokenized(ObjectNode row, int line, Encoder enc) {
    int[] chosen = RowFields.ids(row, "chosen_ids", vocabSize);
    int[] rejected = RowFields.ids(row, "rejected_ids", vocabSize);
    float margin = RowFields.margin(row);
    if (enc.truncation() == Encoder.Truncation.ERROR) {
      // check both before encoding either, so a rejected row never bumps the counter
      checkLength("chosen_ids", chosen, enc.maxLength());
      checkLength("rejected_ids", rejected, enc.maxLength());
    }
    return new PreferencePair(
        enc.encodeIds(chosen).ids(), enc.encodeIds(rejected).ids(), margin, line);
  }

  private static void checkLength(String field, int[] ids, int maxLength) {
    if (ids.length > maxLength) {
      throw new BadRowException(
          field, "too_long", ids.length + " tokens exceed the maximum length " + maxLength);
    }
  }

  private void requireTokenizer(Path file, int line, String field) {
    if (tokenizer == null) {
      // a configuration error, not a bad row: never skipped
      throw new IllegalArgumentException(
          file + ":" + line + ": " + field + ": text rows need a tokenizer, and none was given");
    }
  }
}
