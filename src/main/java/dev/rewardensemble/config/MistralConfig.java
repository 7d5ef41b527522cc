package dev.rewardensemble.config;

import static dev.rewardensemble.config.ModelConfig.check;

import java.util.List;
import java.util.Map;

/**
 * Mistral: a Llama-style decoder whose every layer may attend through a sliding window ({@code
 * sliding_window}: a token sees the previous {@code window} positions, itself included, exactly as
 * transformers' mask does; null for full attention), explicit {@code head_dim}. Field names follow
 * Hugging Face's {@code MistralConfig}.
 *
 * @param windows per layer, the sliding attention window (0: full causal attention)
 */
public record MistralConfig(
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

  public MistralConfig {
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

  static MistralConfig parse(HfKeys r) {
    int hidden = r.integer("hidden_size", null);
    int heads = r.integer("num_attention_heads", null);
    int vocab = r.integer("vocab_size", null);
    int eos = r.tokenId("eos_token_id", -1, vocab);
    int layers = r.integer("num_hidden_layers", null);
    ModelConfig.checkSize("num_hidden_layers", layers, MAX_LAYERS);
    DecoderKeys.requireActivation(r, "hidden_act", "silu");
    int window = r.integer("sliding_window", 4096, 0);
    List<Boolean> sliding = DecoderKeys.all(layers, window > 0);
    return new MistralConfig(
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
        DecoderKeys.windows("sliding_window", layers, sliding, window));
  }

  @Override
  public String modelType() {
    return "mistral";
  }

  @Override
  public String hfClassPrefix() {
    return "Mistral";
  }

  @Override
  public Map<String, long[]> parameterShapes() {
    return DecoderKeys.shapes(this, intermediateSize, false, false, false);
  }

  @Override
  public void writeHf(com.fasterxml.jackson.databind.node.ObjectNode o) {
    DecoderKeys.write(o, this, intermediateSize, rmsNormEps, ropeTheta, ropeScaling);
    o.put("hidden_act", "silu");
    DecoderKeys.putWindow(o, windows); // one window for every layer
  }
}
