package dev.rewardensemble.config;

import static dev.rewardensemble.config.ModelConfig.check;

import java.util.List;
import java.util.Map;

/**
 * Qwen3: a Llama-style decoder with per-head RMSNorm on the queries and keys ({@code q_norm},
 * {@code k_norm}, applied before the rotary embedding), an explicit {@code head_dim} (128 unless
 * the checkpoint says otherwise, not hidden / heads), usually tied embeddings and optional
 * sliding-window attention as in Qwen2. Field names follow Hugging Face's {@code Qwen3Config}.
 *
 * @param windows per layer, the sliding attention window (0: full causal attention)
 */
public record Qwen3Config(
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

  public Qwen3Config {
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

  static Qwen3Config parse(HfKeys r) {
    int hidden = r.integer("hidden_size", null);
    int heads = r.integer("num_attention_heads", null);
    int vocab = r.integer("vocab_size", null);
    int eos = r.tokenId("eos_token_id", -1, vocab);
    int layers = r.integer("num_hidden_layers", null);
    ModelConfig.checkSize("num_hidden_layers", layers, MAX_LAYERS);
    DecoderKeys.requireActivation(r, "hidden_act", "silu");
    DecoderKeys.refuse(r, "attention_bias");
    return new Qwen3Config(
        vocab,
        hidden,
        r.integer("intermediate_size", null),
        layers,
        heads,
        r.integer("num_key_value_heads", heads),
        r.integer("head_dim", 128),
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
    return "qwen3";
  }

  @Override
  public String hfClassPrefix() {
    return "Qwen3";
  }

  @Override
  public Map<String, long[]> parameterShapes() {
    return DecoderKeys.shapes(this, intermediateSize, false, true, false);
  }

  @Override
  public void writeHf(com.fasterxml.jackson.databind.node.ObjectNode o) {
    DecoderKeys.write(o, this, intermediateSize, rmsNormEps, ropeTheta, ropeScaling);
    o.put("hidden_act", "silu");
    o.put("attention_bias", false);
    DecoderKeys.writeQwenWindows(o, windows);
  }
}
