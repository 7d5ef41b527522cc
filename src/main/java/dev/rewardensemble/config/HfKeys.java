package dev.rewardensemble.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * Typed access to the keys of a Hugging Face {@code config.json} object, with messages that name
 * the key and the bad value; also the keys whose spelling differs between transformers 4.x and 5
 * (rope settings, layer types).
 */
record HfKeys(JsonNode node, String source) {

  int integer(String key, Integer dflt) {
    JsonNode v = node.get(key);
    if (v == null || v.isNull()) {
      if (dflt == null) {
        throw new IllegalArgumentException("missing key '" + key + "'");
      }
      return dflt;
    }
    return exactInt(key, v, "an integer");
  }

  /** An integral JSON number that fits an int (1e20 or 2^40 is an error, not a wrapped value). */
  private static int exactInt(String key, JsonNode v, String what) {
    if (!v.isNumber()
        || !v.canConvertToInt()
        || !(v.isIntegralNumber() || v.isDouble() && v.asDouble() == Math.rint(v.asDouble()))) {
      throw new IllegalArgumentException(
          "key '"
              + key
              + "' must be "
              + what
              + " in ["
              + Integer.MIN_VALUE
              + ", "
              + Integer.MAX_VALUE
              + "], got "
              + v);
    }
    return v.asInt();
  }

  /**
   * A token id; ids outside [0, vocab) (e.g. GPT-2's 50256 in a small-vocabulary config) read as
   * -1.
   */
  int tokenId(String key, int dflt, int vocab) {
    int id = firstId(key, dflt);
    return id >= 0 && id < vocab ? id : -1;
  }

  int firstId(String key, int dflt) {
    JsonNode v = node.get(key);
    if (v != null && v.isArray()) {
      v = v.size() > 0 ? v.get(0) : null;
    }
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isIntegralNumber()) {
      throw new IllegalArgumentException("key '" + key + "' must be a token id, got " + v);
    }
    return exactInt(key, v, "a token id");
  }

  double number(String key, double dflt) {
    JsonNode v = node.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isNumber()) {
      throw new IllegalArgumentException("key '" + key + "' must be a number, got " + v);
    }
    return v.asDouble();
  }

  String text(String key, String dflt) {
    JsonNode v = node.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isTextual()) {
      throw new IllegalArgumentException("key '" + key + "' must be a string, got " + v);
    }
    return v.asText();
  }

  boolean bool(String key, boolean dflt) {
    JsonNode v = node.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isBoolean()) {
      throw new IllegalArgumentException("key '" + key + "' must be true or false, got " + v);
    }
    return v.asBoolean();
  }

  /**
   * {@code pad_token_id}, defaulting to the EOS id when that lies in the vocabulary, else 0 (the
   * project's rule for checkpoints that declare no pad token).
   */
  int padTokenId(int eos, int vocab) {
    return firstId("pad_token_id", eos >= 0 && eos < vocab ? eos : 0);
  }

  /** An integer key that distinguishes absent (the family default) from null. */
  int integer(String key, int whenAbsent, int whenNull) {
    if (!node.has(key)) {
      return whenAbsent;
    }
    return node.get(key).isNull() ? whenNull : integer(key, null);
  }

  /** A number key that distinguishes absent (the family default) from null. */
  double number(String key, double whenAbsent, double whenNull) {
    if (!node.has(key)) {
      return whenAbsent;
    }
    return node.get(key).isNull() ? whenNull : number(key, whenNull);
  }

  /**
   * The rotary base: 5.x {@code rope_parameters.rope_theta}, else 4.x top-level {@code rope_theta},
   * else {@code dflt}.
   */
  double ropeTheta(double dflt) {
    JsonNode rope = ropeNode();
    if (rope != null && rope.has("rope_theta")) {
      JsonNode v = rope.get("rope_theta");
      if (!v.isNumber()) {
        throw new IllegalArgumentException(
            "key 'rope_parameters.rope_theta' must be a number, got " + v);
      }
      return v.asDouble();
    }
    return number("rope_theta", dflt);
  }

  /** The rope scaling: 5.x {@code rope_parameters}, else 4.x {@code rope_scaling}. */
  RopeScaling ropeScaling() {
    return RopeScaling.parse(ropeNode());
  }

  private JsonNode ropeNode() {
    JsonNode rope = node.get("rope_parameters");
    if (rope == null || rope.isNull()) {
      rope = node.get("rope_scaling");
    }
    if (rope != null
        && rope.isObject()
        && (rope.has("full_attention") || rope.has("sliding_attention"))) {
      // Per-layer-type parameters (transformers 5): one set is all this project reads.
      JsonNode full = rope.get("full_attention");
      JsonNode sliding = rope.get("sliding_attention");
      if (full != null && sliding != null && !full.equals(sliding)) {
        throw new IllegalArgumentException(
            "rope_parameters differ between full_attention and sliding_attention layers"
                + " (not supported)");
      }
      rope = full != null ? full : sliding;
    }
    return rope;
  }

  /** The requested dtype of the weights: 5.x {@code dtype}, else 4.x {@code torch_dtype}. */
  String dtype() {
    String d = text("dtype", null);
    return d != null ? d : text("torch_dtype", "float32");
  }

  /**
   * Per layer, whether it attends through a sliding window: 5.x {@code layer_types} when present
   * (each {@code full_attention} or {@code sliding_attention}), else {@code dflt}.
   */
  List<Boolean> slidingLayers(int layers, List<Boolean> dflt) {
    JsonNode v = node.get("layer_types");
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isArray() || v.size() != layers) {
      throw new IllegalArgumentException(
          "key 'layer_types' must list one type per layer (" + layers + "), got " + v);
    }
    List<Boolean> out = new ArrayList<>(layers);
    for (JsonNode t : v) {
      switch (t.asText("")) {
        case "full_attention" -> out.add(false);
        case "sliding_attention" -> out.add(true);
        default ->
            throw new IllegalArgumentException(
                "key 'layer_types': '"
                    + t.asText(t.toString())
                    + "' is not supported (full_attention, sliding_attention)");
      }
    }
    return out;
  }
}
