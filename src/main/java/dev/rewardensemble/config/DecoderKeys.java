package dev.rewardensemble.config;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * What the Llama-style decoder families (Llama, Qwen2, Qwen3, Mistral, Gemma 2) share in their
 * configuration: the size keys, their validation, their messages and their {@code config.json}
 * spelling. Each family's record calls these; the families differ only in their own keys.
 */
final class DecoderKeys {
  private DecoderKeys() {}

  /** Validates the shared size keys; messages name the Hugging Face key. */
  static void check(
      int vocabSize,
      int hiddenSize,
      int intermediateSize,
      int numLayers,
      int numHeads,
      int numKeyValueHeads,
      int headDim,
      int maxPositionEmbeddings,
      double rmsNormEps,
      double ropeTheta,
      int padTokenId) {
    ModelConfig.checkSize("vocab_size", vocabSize, ModelConfig.MAX_VOCAB);
    ModelConfig.checkSize("hidden_size", hiddenSize, ModelConfig.MAX_WIDTH);
    ModelConfig.checkSize("intermediate_size", intermediateSize, ModelConfig.MAX_WIDTH);
    ModelConfig.checkSize("num_hidden_layers", numLayers, ModelConfig.MAX_LAYERS);
    ModelConfig.checkSize("num_attention_heads", numHeads, ModelConfig.MAX_HEADS);
    ModelConfig.checkSize("num_key_value_heads", numKeyValueHeads, ModelConfig.MAX_HEADS);
    ModelConfig.checkSize("head_dim", headDim, ModelConfig.MAX_WIDTH);
    ModelConfig.checkSize(
        "num_attention_heads x head_dim", (long) numHeads * headDim, ModelConfig.MAX_WIDTH);
    ModelConfig.checkSize(
        "max_position_embeddings", maxPositionEmbeddings, ModelConfig.MAX_POSITIONS);
    ModelConfig.check(
        numHeads % numKeyValueHeads == 0,
        "num_attention_heads "
            + numHeads
            + " is not a multiple of num_key_value_heads "
            + numKeyValueHeads);
    ModelConfig.check(headDim % 2 == 0, "head_dim must be positive and even, got " + headDim);
    ModelConfig.check(
        rmsNormEps > 0 && rmsNormEps < 1, "rms_norm_eps must be in (0, 1), got " + rmsNormEps);
    ModelConfig.check(ropeTheta > 1, "rope_theta must be > 1, got " + ropeTheta);
    ModelConfig.check(
        padTokenId >= 0 && padTokenId < vocabSize,
        "pad_token_id " + padTokenId + " is outside the vocabulary [0, " + vocabSize + ")");
  }

  /** The size keys of a decoder config, as messages name them. */
  static String sizeKeys(ModelConfig c, int intermediateSize) {
    return "vocab_size "
        + c.vocabSize()
        + ", hidden_size "
        + c.hiddenSize()
        + ", intermediate_size "
        + intermediateSize
        + ", num_hidden_layers "
        + c.numLayers()
        + ", num_attention_heads x head_dim "
        + c.numHeads()
        + " x "
        + c.headDim();
  }

  /** Sliding windows per layer, validated: {@code window} on the sliding layers, 0 elsewhere. */
  static List<Integer> windows(String key, int layers, List<Boolean> sliding, int window) {
    ModelConfig.check(
        sliding.size() == layers, key + ": " + sliding.size() + " layer types for " + layers);
    List<Integer> out = new ArrayList<>(layers);
    for (boolean s : sliding) {
      if (s) {
        ModelConfig.checkSize("sliding_window", window, ModelConfig.MAX_POSITIONS);
      }
      out.add(s ? window : 0);
    }
    return Collections.unmodifiableList(out);
  }

  /**
   * The per-layer windows of a record, checked (one per layer, each 0 or a valid window) and made
   * unmodifiable.
   */
  static List<Integer> checkWindows(List<Integer> windows, int numLayers) {
    List<Integer> out = List.copyOf(windows);
    ModelConfig.check(
        out.size() == numLayers, out.size() + " attention windows for " + numLayers + " layers");
    for (int w : out) {
      ModelConfig.check(
          w >= 0 && w <= ModelConfig.MAX_POSITIONS,
          "sliding_window must be in [1, " + ModelConfig.MAX_POSITIONS + "], got " + w);
    }
    return out;
  }

  /**
   * Qwen2's and Qwen3's windows: {@code sliding_window} only with {@code use_sliding_window}, on
   * the layers from {@code max_window_layers} on (4.x), or where {@code layer_types} says so (5.x).
   */
  static List<Integer> qwenWindows(HfKeys r, int layers) {
    boolean use = r.bool("use_sliding_window", false);
    int window = use ? r.integer("sliding_window", 4096, 0) : 0;
    int from = r.integer("max_window_layers", 28);
    List<Boolean> dflt = new ArrayList<>();
    for (int i = 0; i < layers; i++) {
      dflt.add(use && i >= from);
    }
    return windows("layer_types", layers, r.slidingLayers(layers, dflt), window);
  }

  /**
   * Writes Qwen's window keys: {@code use_sliding_window}, {@code sliding_window}, {@code
   * max_window_layers}, {@code layer_types}.
   */
  static void writeQwenWindows(ObjectNode o, List<Integer> windows) {
    o.put("use_sliding_window", windows.stream().anyMatch(w -> w > 0));
    putWindow(o, windows);
    int first = 0;
    while (first < windows.size() && windows.get(first) == 0) {
      first++;
    }
    o.put("max_window_layers", first);
    writeLayerTypes(o, windows);
  }

  /**
   * Writes {@code sliding_window}: the largest window, or null when no layer slides (left out,
   * transformers would fill in its default of 4096).
   */
  static void putWindow(ObjectNode o, List<Integer> windows) {
    int window = windows.stream().mapToInt(Integer::intValue).max().orElse(0);
    if (window > 0) {
      o.put("sliding_window", window);
    } else {
      o.putNull("sliding_window");
    }
  }

  /** {@code count} copies of {@code value}. */
  static List<Boolean> all(int count, boolean value) {
    return Collections.nCopies(count, value);
  }

  /** Refuses a {@code hidden_act}/{@code hidden_activation} other than {@code want}. */
  static void requireActivation(HfKeys r, String key, String want) {
    String act = r.text(key, want);
    if (!act.equals(want)) {
      throw new IllegalArgumentException(
          "" + key + " '" + act + "' is not supported (" + want + ")");
    }
  }

  /** Refuses a true boolean key (a feature the family file does not implement). */
  static void refuse(HfKeys r, String key) {
    if (r.bool(key, false)) {
      throw new IllegalArgumentException(key + " true is not supported");
    }
  }

  /** hidden_size / num_attention_heads unless {@code head_dim} is given. */
  static int headDim(HfKeys r, int hidden, int heads) {
    ModelConfig.checkSize("num_attention_heads", heads, ModelConfig.MAX_HEADS);
    if (hidden % heads != 0 && !r.node().hasNonNull("head_dim")) {
      throw new IllegalArgumentException(
          "hidden_size " + hidden + " is not divisible by num_attention_heads " + heads);
    }
    return r.integer("head_dim", hidden / heads);
  }

  /** The shared keys of a decoder's {@code config.json}. */
  static void write(
      ObjectNode o,
      ModelConfig c,
      int intermediateSize,
      double rmsNormEps,
      double ropeTheta,
      RopeScaling rope) {
    o.put("vocab_size", c.vocabSize());
    o.put("hidden_size", c.hiddenSize());
    o.put("intermediate_size", intermediateSize);
    o.put("num_hidden_layers", c.numLayers());
    o.put("num_attention_heads", c.numHeads());
    o.put("num_key_value_heads", c.numKeyValueHeads());
    o.put("head_dim", c.headDim());
    o.put("max_position_embeddings", c.maxPositions());
    o.put("rms_norm_eps", rmsNormEps);
    // transformers 5 reads rope_parameters; 4.x reads rope_theta and rope_scaling.
    o.put("rope_theta", ropeTheta);
    rope.write(o.putObject("rope_parameters"), ropeTheta);
    if (!rope.type().equals("default")) {
      ObjectNode legacy = o.putObject("rope_scaling");
      rope.write(legacy, ropeTheta);
      legacy.remove("rope_theta");
    }
    o.put("pad_token_id", c.padTokenId());
    putId(o, "bos_token_id", c.bosTokenId());
    putId(o, "eos_token_id", c.eosTokenId());
  }

  /**
   * Checkpoint key to shape of every trunk parameter of a Llama-style decoder ({@code model.}
   * prefix, torch {@code [out, in]} weights).
   *
   * @param qkvBias q/k/v projections carry biases (Qwen2)
   * @param qkNorm per-head RMSNorm weights {@code q_norm}, {@code k_norm} of size head_dim (Qwen3)
   * @param sandwich Gemma 2's four norms per block ({@code pre_feedforward_layernorm} and {@code
   *     post_feedforward_layernorm} besides the usual two)
   */
  static java.util.Map<String, long[]> shapes(
      ModelConfig c, int intermediateSize, boolean qkvBias, boolean qkNorm, boolean sandwich) {
    java.util.Map<String, long[]> m = new java.util.LinkedHashMap<>();
    long h = c.hiddenSize();
    long f = intermediateSize;
    long qd = (long) c.numHeads() * c.headDim();
    long kvd = (long) c.numKeyValueHeads() * c.headDim();
    m.put("model.embed_tokens.weight", new long[] {c.vocabSize(), h});
    for (int i = 0; i < c.numLayers(); i++) {
      String p = "model.layers." + i + ".";
      m.put(p + "input_layernorm.weight", new long[] {h});
      m.put(p + "self_attn.q_proj.weight", new long[] {qd, h});
      if (qkvBias) {
        m.put(p + "self_attn.q_proj.bias", new long[] {qd});
      }
      m.put(p + "self_attn.k_proj.weight", new long[] {kvd, h});
      if (qkvBias) {
        m.put(p + "self_attn.k_proj.bias", new long[] {kvd});
      }
      m.put(p + "self_attn.v_proj.weight", new long[] {kvd, h});
      if (qkvBias) {
        m.put(p + "self_attn.v_proj.bias", new long[] {kvd});
      }
      m.put(p + "self_attn.o_proj.weight", new long[] {h, qd});
      if (qkNorm) {
        m.put(p + "self_attn.q_norm.weight", new long[] {c.headDim()});
        m.put(p + "self_attn.k_norm.weight", new long[] {c.headDim()});
      }
      m.put(p + "post_attention_layernorm.weight", new long[] {h});
      if (sandwich) {
        m.put(p + "pre_feedforward_layernorm.weight", new long[] {h});
        m.put(p + "post_feedforward_layernorm.weight", new long[] {h});
      }
      m.put(p + "mlp.gate_proj.weight", new long[] {f, h});
      m.put(p + "mlp.up_proj.weight", new long[] {f, h});
      m.put(p + "mlp.down_proj.weight", new long[] {h, f});
    }
    m.put("model.norm.weight", new long[] {h});
    return m;
  }

  /** PEFT module names of a Llama-style decoder. */
  static final List<String> LORA_TARGETS =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

  /** Writes {@code layer_types} from per-layer windows. */
  static void writeLayerTypes(ObjectNode o, List<Integer> windows) {
    var arr = o.putArray("layer_types");
    for (int w : windows) {
      arr.add(w > 0 ? "sliding_attention" : "full_attention");
    }
  }

  /** An unknown id (-1) is written as null, so transformers does not fill in a family default. */
  static void putId(ObjectNode o, String key, int id) {
    if (id >= 0) {
      o.put(key, id);
    } else {
      o.putNull(key);
    }
  }

  static String lower(String s) {
    return s.toLowerCase(Locale.ROOT);
  }
}
