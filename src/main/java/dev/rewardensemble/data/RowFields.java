package dev.rewardensemble.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** Typed access to the fields of a JSON data row, failing with {@link BadRowException}. */
final class RowFields {
  static final String MISSING = "missing_field";
  static final String WRONG_TYPE = "wrong_type";
  static final String EMPTY_TEXT = "empty_text";
  static final String EMPTY_IDS = "empty_ids";
  static final String BAD_ID = "bad_id";

  private RowFields() {}

  /** Whether the field is present and not JSON null. */
  static boolean has(ObjectNode row, String field) {
    JsonNode n = row.get(field);
    return n != null && !n.isNull();
  }

  /** A required, non-empty string. */
  static String text(ObjectNode row, String field) {
    String s = optionalText(row, field);
    if (s == null) {
      throw new BadRowException(field, MISSING, "missing");
    }
    if (s.isEmpty()) {
      throw new BadRowException(field, EMPTY_TEXT, "empty text");
    }
    return s;
  }

  /** An optional string: {@code null} when absent or JSON null; may be empty. */
  static String optionalText(ObjectNode row, String field) {
    JsonNode n = row.get(field);
    if (n == null || n.isNull()) {
      return null;
    }
    if (!n.isTextual()) {
      String hint =
          n.isArray()
              ? " (a conversation goes in \"messages\", or in chosen/rejected as message lists)"
              : "";
      throw new BadRowException(field, WRONG_TYPE, "expected a string, got " + kind(n) + hint);
    }
    return n.textValue();
  }

  /**
   * A required, non-empty array of token ids, each in {@code [0, vocabSize)} ({@code vocabSize <=
   * 0}: no upper bound).
   */
  static int[] ids(ObjectNode row, String field, int vocabSize) {
    JsonNode n = row.get(field);
    if (n == null || n.isNull()) {
      throw new BadRowException(field, MISSING, "missing");
    }
    if (!n.isArray()) {
      throw new BadRowException(field, WRONG_TYPE, "expected an array of ints, got " + kind(n));
    }
    if (n.isEmpty()) {
      throw new BadRowException(field, EMPTY_IDS, "empty id list");
    }
    int[] ids = new int[n.size()];
    for (int i = 0; i < ids.length; i++) {
      JsonNode e = n.get(i);
      if (!e.isIntegralNumber() || !e.canConvertToInt()) {
        throw new BadRowException(
            field, WRONG_TYPE, "element " + i + " is not an int: " + abbreviate(e.toString()));
      }
      int id = e.intValue();
      if (id < 0) {
        throw new BadRowException(field, BAD_ID, "element " + i + " is negative: " + id);
      }
      if (vocabSize > 0 && id >= vocabSize) {
        throw new BadRowException(
            field,
            BAD_ID,
            "element " + i + " = " + id + " is not below the vocabulary size " + vocabSize);
      }
      ids[i] = id;
    }
    return ids;
  }

  /** The optional numeric {@code margin} column; 0 when absent. */
  static float margin(ObjectNode row) {
    JsonNode n = row.get("margin");
    if (n == null || n.isNull()) {
      return 0f;
    }
    if (!n.isNumber()) {
      throw new BadRowException("margin", WRONG_TYPE, "expected a number, got " + kind(n));
    }
    float m = n.floatValue();
    if (!Float.isFinite(m)) {
      throw new BadRowException("margin", WRONG_TYPE, "not a finite float: " + n);
    }
    return m;
  }

  static String kind(JsonNode n) {
    return switch (n.getNodeType()) {
      case STRING -> "a string";
      case NUMBER -> "a number";
      case BOOLEAN -> "a boolean";
      case ARRAY -> "an array";
      case OBJECT -> "an object";
      case NULL -> "null";
      default -> n.getNodeType().toString().toLowerCase(java.util.Locale.ROOT);
    };
  }

  static String abbreviate(String s) {
    return s.length() <= 40 ? s : s.substring(0, 37) + "...";
  }
}
