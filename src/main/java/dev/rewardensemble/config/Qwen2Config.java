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
    windows = DecoderKeys.checkWindows(windows, numLayers);
  }

  static Qwen2Config parse(HfKeys r) {
    int hidden = r.integer("hidden_size", null);
    int heads = r.integer("num_attention_heads", null);
    int vocab = r.integer("vocab_size", null);
    int eos = r.tokenId("eos_token_id", -1, vocab);
    int layers = r.integer("num_hidden_layers", null);
    ModelConfig.checkSize("num_hidden_layers", layers, MAX_LAYERS);
    DecoderKeys.requireActivation(r, "hidden_act", "silu");
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
        r.padTokenId(eos, vocab),
        r.tokenId("bos_token_id", -1, vocab),
        eos,
        r.bool("tie_word_embeddings", false),
        r.ropeScaling(),
        DecoderKeys.qwenWindows(r, layers));
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
    DecoderKeys.writeQwenWindows(o, windows);
  }
}
