package dev.rewardensemble.config;

import static dev.rewardensemble.config.ModelConfig.check;

import java.util.List;
import java.util.Map;

/**
 * Qwen2 / Qwen2.5: a Llama-style decoder with biases on the q, k and v projections, usually tied
 * embeddings, rope theta 1e6, and optional sliding-window attention on the upper layers ({@code
 * use_sliding_window}, {@code max_window_layers}). Field names follow Hugging Face's {@code
 * Qwen2Config}.
 *
 * @param windows per layer, the sliding attention window (0: full causal attention)
 */
public record Qwen2Config(
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
    int padTokenId,
    int bosTokenId,
    int eosTokenId,
    boolean tieWordEmbeddings,
    RopeScaling ropeScaling,
    List<Integer> windows)
    implements DecoderConfig {

  public Qwen2Config {
    DecoderKeys.check(
        vocabSize,
        hiddenSize,
        intermediateSize,
        numLayers,
        numHeads,
        numKeyValueHeads,
        headDim,
        maxPositionEmbeddings,
        rmsNormEps,
        ropeTheta,
        padTokenId);
    check(ropeScaling != null, "rope scaling must not be null");
    windows = List.copyOf(windows);
    check(
        windows.size() == numLayers,
        windows.size() + " attention windows for " + numLayers + " layers");
    for (int w : windows) {
      check(
          w >= 0 && w <= MAX_POSITIONS,
          "sliding_window must be in [1, " + MAX_POSITIONS + "], got " + w);
    }
  }

  static Qwen2Config parse(HfKeys r) {
    int hidden = r.integer("hidden_size", null);
    int heads = r.integer("num_attention_heads", null);
    int vocab = r.integer("vocab_size", null);
    int eos = r.tokenId("eos_token_id", -1, vocab);
    int layers = r.integer("num_hidden_layers", null);
    ModelConfig.checkSize("num_hidden_layers", layers, MAX_LAYERS);
    DecoderKeys.requireActivation(r, "hidden_act", "silu");
    // transformers: sliding_window only with use_sliding_window, on the layers from
    // max_window_layers on (4.x), or where layer_types says so (5.x).
    boolean use = r.bool("use_sliding_window", false);
    int window = use ? r.integer("sliding_window", 4096, 0) : 0;
    int from = r.integer("max_window_layers", 28);
    List<Boolean> dflt = new java.util.ArrayList<>();
    for (int i = 0; i < layers; i++) {
      dflt.add(use && i >= from);
    }
    List<Boolean> sliding = r.slidingLayers(layers, dflt);
    return new Qwen2Config(
        vocab,
        hidden,
        r.integer("intermediate_size", null),
        layers,
        heads,
        r.integer("num_key_value_heads", heads),
        DecoderKeys.headDim(r, hidden, heads),
        r.integer("max_position_embeddings", null),
        r.number("rms_norm_eps", 1e-6),
        r.ropeTheta(10000.0),
        r.firstId("pad_token_id", eos >= 0 && eos < vocab ? eos : 0),
        r.tokenId("bos_token_id", -1, vocab),
        eos,
        r.bool("tie_word_embeddings", false),
        r.ropeScaling(),
        DecoderKeys.windows("layer_types", layers, sliding, window));
  }

  @Override
  public String modelType() {
    return "qwen2";
  }

  @Override
  public String hfClassPrefix() {
    return "Qwen2";
  }

  @Override
  public Map<String, long[]> parameterShapes() {
    return DecoderKeys.shapes(this, intermediateSize, true, false, false);
  }

  @Override
  public void writeHf(com.fasterxml.jackson.databind.node.ObjectNode o) {
    DecoderKeys.write(o, this, intermediateSize, rmsNormEps, ropeTheta, ropeScaling);
    o.put("hidden_act", "silu");
    o.put("use_sliding_window", windows.stream().anyMatch(w -> w > 0));
    int window = windows.stream().mapToInt(Integer::intValue).max().orElse(0);
    if (window > 0) {
      o.put("sliding_window", window);
    } else {
      o.putNull("sliding_window");
    }
    o.put("max_window_layers", firstSliding());
    DecoderKeys.writeLayerTypes(o, windows);
  }

  private int firstSliding() {
    for (int i = 0; i < windows.size(); i++) {
      if (windows.get(i) > 0) {
        return i;
      }
    }
    return windows.size();
  }
}
