package dev.rewardensemble.server;

import com.fasterxml.jackson.databind.JsonNode;

/** Typed reads of request fields, failing with a 400 that names the field. */
final class Inputs {
  private Inputs() {}

  static String kind(JsonNode n) {
    if (n == null || n.isMissingNode()) {
      return "nothing";
    }
    if (n.isNull()) {
      return "null";
    }
    if (n.isTextual()) {
      return "a string";
    }
    if (n.isBoolean()) {
      return "a boolean";
    }
    if (n.isNumber()) {
      return "a number";
    }
    return n.isArray() ? "an array" : "an object";
  }

  /** A non-empty array. */
  static JsonNode array(JsonNode n, String field) {
    if (n == null || n.isNull() || n.isMissingNode()) {
      throw RequestError.bad(field + ": missing");
    }
    if (!n.isArray()) {
      throw RequestError.bad(field + ": expected an array, got " + kind(n));
    }
    if (n.isEmpty()) {
      throw RequestError.bad(field + ": empty array");
    }
    return n;
  }

  /** A non-empty array of ints. */
  static int[] ints(JsonNode n, String field) {
    array(n, field);
    int[] out = new int[n.size()];
    for (int i = 0; i < out.length; i++) {
      JsonNode e = n.get(i);
      if (!e.isIntegralNumber() || !e.canConvertToInt()) {
        String s = e.toString();
        throw RequestError.bad(
            field
                + ": element "
                + i
                + " is not an int: "
                + (s.length() > 40 ? s.substring(0, 40) + "..." : s));
      }
      out[i] = e.intValue();
    }
    return out;
  }

  /**
   * A sequence the model can score: ids in {@code [0, vocab)}, at most {@code maxPositions} long; a
   * mask (optional) of the same length, of 0s and 1s with at least one 1.
   */
  static Batcher.Row row(int[] ids, int[] mask, String field, int vocab, int maxPositions) {
    if (ids.length > maxPositions) {
      throw RequestError.bad(
          field
              + ".input_ids: "
              + ids.length
              + " tokens, more than the model's "
              + maxPositions
              + " positions");
    }
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= vocab) {
        throw RequestError.bad(
            field
                + ".input_ids: element "
                + i
                + " is "
                + ids[i]
                + ", outside the vocabulary [0, "
                + vocab
                + ")");
      }
    }
    if (mask != null) {
      if (mask.length != ids.length) {
        throw RequestError.bad(
            field + ".attention_mask: " + mask.length + " values for " + ids.length + " input_ids");
      }
      boolean any = false;
      for (int i = 0; i < mask.length; i++) {
        if (mask[i] != 0 && mask[i] != 1) {
          throw RequestError.bad(
              field + ".attention_mask: element " + i + " is " + mask[i] + ", not 0 or 1");
        }
        any |= mask[i] == 1;
      }
      if (!any) {
        throw RequestError.bad(field + ".attention_mask: no token is attended (all 0)");
      }
    }
    return new Batcher.Row(ids, mask);
  }
}
