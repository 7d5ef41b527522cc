package dev.rewardensemble.cli;

import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalInt;
import picocli.CommandLine.Option;

/**
 * How text rows become token ids, for the commands that score rows ({@code score}, {@code serve},
 * {@code spark-score}): {@code --tokenizer}, {@code --template}, {@code --max-length}, {@code
 * --truncate}, validated here once.
 */
final class TextOptions {
  @Option(
      names = "--tokenizer",
      description = "tokenizer.json (default: the one in the model directory).")
  Path tokenizer;

  @Option(
      names = "--template",
      defaultValue = "alpaca",
      description =
          "Prompt template for text rows: alpaca, raw or chat (the tokenizer's chat template, as a"
              + " user/assistant conversation); conversational rows (\"messages\") always use the"
              + " chat template (default: ${DEFAULT-VALUE}).")
  String template;

  @Option(
      names = "--max-length",
      description = "Longest sequence in tokens (default: the model's positions).")
  Integer maxLength;

  @Option(
      names = "--truncate",
      defaultValue = "error",
      description =
          "Sequences longer than --max-length: 'error' (default), or 'left' to cut the prompt /"
              + " oldest ids from the left.")
  String truncate;

  /** {@code --truncate}, checked. */
  Encoder.Truncation truncation() {
    return switch (truncate) {
      case "error" -> Encoder.Truncation.ERROR;
      case "left" -> Encoder.Truncation.LEFT;
      default ->
          throw new UserError("--truncate must be 'error' or 'left', got '" + truncate + "'");
    };
  }

  /** {@code --template}, checked. */
  PromptTemplate promptTemplate() {
    return PromptTemplate.byName(template);
  }

  /** Checks what can be checked before a model is loaded (every option but the positions). */
  void check() {
    truncation();
    promptTemplate();
    if (maxLength != null && maxLength < 1) {
      throw new UserError("--max-length must be >= 1, got " + maxLength);
    }
  }

  /** {@code --max-length}, or the model's {@code positions}; refused beyond them. */
  int maxLength(int positions) {
    int maxLen = maxLength != null ? maxLength : positions;
    if (maxLen < 1 || maxLen > positions) {
      throw new UserError(
          "--max-length " + maxLen + " must be in [1, " + positions + "] (the model's positions)");
    }
    return maxLen;
  }

  /**
   * The tokenizer of {@code --tokenizer}, else the model's own ({@code modelTokenizer}); {@code
   * null} when there is neither (rows must then be token ids). The caller closes it.
   */
  Tokenizer openTokenizer(Optional<Path> modelTokenizer) throws IOException {
    Path p = tokenizer != null ? tokenizer : modelTokenizer.orElse(null);
    return p == null ? null : Tokenizer.load(p);
  }

  /** The encoder of these options for a model with {@code positions} positions. */
  Encoder encoder(Tokenizer tok, int positions) {
    return new Encoder(
        tok, promptTemplate(), maxLength(positions), OptionalInt.empty(), truncation());
  }
}
