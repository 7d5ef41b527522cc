package dev.rewardensemble.data;

/**
 * A problem with one field of one data row, before the file name and line are attached. Readers
 * turn it into an {@link IllegalArgumentException} of the form {@code FILE:LINE: field: problem},
 * or count it under {@link #reason()} when bad rows are skipped.
 */
final class BadRowException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final String field;
  private final String reason;

  /**
   * @param field the JSON field at fault ({@code "row"} for the row as a whole)
   * @param reason a short stable key for counting skipped rows, e.g. {@code "missing_field"}
   * @param problem human-readable description
   */
  BadRowException(String field, String reason, String problem) {
    super(problem, null, false, false);
    this.field = field;
    this.reason = reason;
  }

  /**
   * Encodes with {@code s}; a too-long sequence becomes a bad row of {@code field} (reason {@code
   * too_long}), a conversation the chat template refuses one with reason {@code template_error}.
   */
  static int[] encoded(String field, java.util.function.Supplier<EncodedSequence> s) {
    try {
      return s.get().ids();
    } catch (ChatTemplateException e) {
      throw new BadRowException(field, "template_error", e.getMessage());
    } catch (IllegalArgumentException e) {
      throw new BadRowException(field, "too_long", e.getMessage());
    }
  }

  String field() {
    return field;
  }

  String reason() {
    return reason;
  }

  /** The message {@code FILE:LINE: field: problem}. */
  String located(Object file, int line) {
    return file + ":" + line + ": " + field + ": " + getMessage();
  }
}
