package dev.rewardensemble.config;

import static dev.rewardensemble.config.ModelConfig.check;

import java.util.List;
import java.util.Map;

/**
 * Llama: RMSNorm, rotary position embeddings, SwiGLU MLP, grouped-query attention, no biases. Field
 * names follow Hugging Face's {@code LlamaConfig}.
 *
 * @param numKeyValueHeads key/value heads; {@code numHeads} must be a multiple of it (GQA)
 * @param headDim size of one head ({@code hidden_size / num_attention_heads} unless the checkpoint
 *     says otherwise)
 * @param ropeScaling Llama 3's {@code llama3} frequency scaling, {@code linear}, or none
 */
public record LlamaConfig(
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
    RopeScaling ropeScaling)
    implements DecoderConfig {

  public LlamaConfig {
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
  }

  /** A Llama without rope scaling (Llama 2 style). */
  public LlamaConfig(
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
      boolean tieWordEmbeddings) {
    this(
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
        padTokenId,
        bosTokenId,
        eosTokenId,
        tieWordEmbeddings,
        RopeScaling.NONE);
  }

  static LlamaConfig parse(HfKeys r) {
    DecoderKeys.requireActivation(r, "hidden_act", "silu");
    DecoderKeys.refuse(r, "attention_bias");
    DecoderKeys.refuse(r, "mlp_bias");
    int hidden = r.integer("hidden_size", null);
    int heads = r.integer("num_attention_heads", null);
    int vocab = r.integer("vocab_size", null);
    int eos = r.tokenId("eos_token_id", -1, vocab);
    return new LlamaConfig(
        vocab,
        hidden,
        r.integer("intermediate_size", null),
        r.integer("num_hidden_layers", null),
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
        r.ropeScaling());
  }

  @Override
  public void writeHf(com.fasterxml.jackson.databind.node.ObjectNode o) {
    DecoderKeys.write(o, this, intermediateSize, rmsNormEps, ropeTheta, ropeScaling);
    o.put("hidden_act", "silu");
    o.put("attention_bias", false);
    o.put("mlp_bias", false);
  }

  @Override
  public String hfClassPrefix() {
    return "Llama";
  }

  @Override
  public String modelType() {
    return "llama";
  }

  /** Query heads per key/value head. */
  public int groupSize() {
    return numHeads / numKeyValueHeads;
  }

  /** Modules a LoRA adapter may target in Llama (PEFT names). */
  public static final List<String> LORA_TARGETS = DecoderKeys.LORA_TARGETS;

  /** Checkpoint key to shape of every trunk parameter. */
  @Override
  public Map<String, long[]> parameterShapes() {
    return DecoderKeys.shapes(this, intermediateSize, false, false, false);
  }
}
