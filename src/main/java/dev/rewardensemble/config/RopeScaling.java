package dev.rewardensemble.config;

import static dev.rewardensemble.config.ModelConfig.check;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Locale;

/**
 * How a rotary family scales its rotary frequencies: Hugging Face's {@code rope_scaling} (4.x) or
 * {@code rope_parameters} (5.x). Implemented: {@code default} (none), {@code linear} (every
 * frequency divided by {@code factor}) and {@code llama3} (Llama 3.1's frequency-dependent
 * scaling). Other types ({@code yarn}, {@code dynamic}, {@code longrope}, ...) are refused by name.
 *
 * @param type {@code default}, {@code linear} or {@code llama3}
 * @param factor scaling factor (1 for default)
 * @param lowFreqFactor llama3's {@code low_freq_factor} (0 otherwise)
 * @param highFreqFactor llama3's {@code high_freq_factor} (0 otherwise)
 * @param originalMaxPositions llama3's {@code original_max_position_embeddings} (0 otherwise)
 */
public record RopeScaling(
    String type,
    double factor,
    double lowFreqFactor,
    double highFreqFactor,
    int originalMaxPositions) {

  /** No scaling. */
  public static final RopeScaling NONE = new RopeScaling("default", 1, 0, 0, 0);

  public RopeScaling {
    check(
        type.equals("default") || type.equals("linear") || type.equals("llama3"),
        "rope_type '"
            + type
            + "' is not supported (supported: default, linear, llama3; not yarn, dynamic,"
            + " longrope)");
    check(factor >= 1 && factor <= 1e6, "rope factor must be in [1, 1e6], got " + factor);
    if (type.equals("llama3")) {
      check(
          lowFreqFactor > 0 && highFreqFactor > lowFreqFactor,
          "llama3 rope needs 0 < low_freq_factor < high_freq_factor, got "
              + lowFreqFactor
              + " and "
              + highFreqFactor);
      check(
          originalMaxPositions > 0,
          "llama3 rope needs original_max_position_embeddings > 0, got " + originalMaxPositions);
    }
  }

  /**
   * The inverse frequencies {@code [D/2]} of the rotary angles, as transformers computes them in
   * float32: {@code theta^(-2i/D)}, then scaled as {@link #type} says.
   */
  public float[] inverseFrequencies(int headDim, double theta) {
    float[] inv = new float[headDim / 2];
    for (int i = 0; i < inv.length; i++) {
      inv[i] = (float) (1.0 / Math.pow(theta, (2.0 * i) / headDim));
    }
    switch (type) {
      case "linear" -> {
        for (int i = 0; i < inv.length; i++) {
          inv[i] = (float) (inv[i] / factor);
        }
      }
      case "llama3" -> {
        double lowWavelen = originalMaxPositions / lowFreqFactor;
        double highWavelen = originalMaxPositions / highFreqFactor;
        for (int i = 0; i < inv.length; i++) {
          float f = inv[i];
          float wavelen = (float) (2 * Math.PI / f);
          float scaled = wavelen > lowWavelen ? (float) (f / factor) : f;
          if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
            double smooth =
                (originalMaxPositions / (double) wavelen - lowFreqFactor)
                    / (highFreqFactor - lowFreqFactor);
            scaled = (float) ((1 - smooth) * scaled / factor + smooth * scaled);
          }
          inv[i] = scaled;
        }
      }
      default -> {}
    }
    return inv;
  }

  /**
   * The rope settings of a config object: 5.x {@code rope_parameters} (which may carry {@code
   * rope_theta}) or 4.x {@code rope_scaling}; null or absent is {@link #NONE}.
   */
  static RopeScaling parse(JsonNode rope) {
    if (rope == null || rope.isNull()) {
      return NONE;
    }
    if (!rope.isObject()) {
      throw new IllegalArgumentException("rope parameters must be an object, got " + rope);
    }
    String type = rope.path("rope_type").asText(rope.path("type").asText("default"));
    type = type.toLowerCase(Locale.ROOT);
    return switch (type) {
      case "default" -> NONE;
      case "linear" -> new RopeScaling("linear", number(rope, "factor"), 0, 0, 0);
      case "llama3" ->
          new RopeScaling(
              "llama3",
              number(rope, "factor"),
              number(rope, "low_freq_factor"),
              number(rope, "high_freq_factor"),
              (int) number(rope, "original_max_position_embeddings"));
      default -> new RopeScaling(type, 1, 0, 0, 0); // refused by the constructor, naming the type
    };
  }

  private static double number(JsonNode rope, String key) {
    JsonNode v = rope.get(key);
    if (v == null || !v.isNumber()) {
      throw new IllegalArgumentException(
          "rope parameters: key '" + key + "' must be a number, got " + v);
    }
    return v.asDouble();
  }

  /** Writes the 5.x {@code rope_parameters} object (with {@code theta}). */
  void write(ObjectNode o, double theta) {
    o.put("rope_type", type);
    o.put("rope_theta", theta);
    if (!type.equals("default")) {
      o.put("factor", factor);
    }
    if (type.equals("llama3")) {
      o.put("low_freq_factor", lowFreqFactor);
      o.put("high_freq_factor", highFreqFactor);
      o.put("original_max_position_embeddings", originalMaxPositions);
    }
  }
}
