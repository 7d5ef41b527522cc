package dev.rewardensemble.config;

import static dev.rewardensemble.config.ModelConfig.check;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Llama: RMSNorm, rotary position embeddings, SwiGLU MLP, grouped-query attention, no biases. Field
 * names follow Hugging Face's {@code LlamaConfig}.
 *
 * @param numKeyValueHeads key/value heads; {@code numHeads} must be a multiple of it (GQA)
 * @param headDim size of one head ({@code hidden_size / num_attention_heads} unless the checkpoint
 *     says otherwise)
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
    boolean tieWordEmbeddings)
    implements ModelConfig {

  public LlamaConfig {
    ModelConfig.checkSize("vocab_size", vocabSize, MAX_VOCAB);
    ModelConfig.checkSize("hidden_size", hiddenSize, MAX_WIDTH);
    ModelConfig.checkSize("intermediate_size", intermediateSize, MAX_WIDTH);
    ModelConfig.checkSize("num_hidden_layers", numLayers, MAX_LAYERS);
    ModelConfig.checkSize("num_attention_heads", numHeads, MAX_HEADS);
    ModelConfig.checkSize("num_key_value_heads", numKeyValueHeads, MAX_HEADS);
    ModelConfig.checkSize("head_dim", headDim, MAX_WIDTH);
    ModelConfig.checkSize("num_attention_heads x head_dim", (long) numHeads * headDim, MAX_WIDTH);
    ModelConfig.checkSize("max_position_embeddings", maxPositionEmbeddings, MAX_POSITIONS);
    check(vocabSize > 0, "vocab_size must be positive, got " + vocabSize);
    check(hiddenSize > 0, "hidden_size must be positive, got " + hiddenSize);
    check(intermediateSize > 0, "intermediate_size must be positive, got " + intermediateSize);
    check(numLayers > 0, "num_hidden_layers must be positive, got " + numLayers);
    check(numHeads > 0, "num_attention_heads must be positive, got " + numHeads);
    check(
        numKeyValueHeads > 0 && numHeads % numKeyValueHeads == 0,
        "num_attention_heads "
            + numHeads
            + " is not a multiple of num_key_value_heads "
            + numKeyValueHeads);
    check(headDim > 0 && headDim % 2 == 0, "head_dim must be positive and even, got " + headDim);
    check(
        maxPositionEmbeddings > 0,
        "max_position_embeddings must be positive, got " + maxPositionEmbeddings);
    check(rmsNormEps > 0 && rmsNormEps < 1, "rms_norm_eps must be in (0, 1), got " + rmsNormEps);
    check(ropeTheta > 1, "rope_theta must be > 1, got " + ropeTheta);
    check(
        padTokenId >= 0 && padTokenId < vocabSize,
        "pad_token_id " + padTokenId + " is outside the vocabulary [0, " + vocabSize + ")");
  }

  @Override
  public String modelType() {
    return "llama";
  }

  @Override
  public int maxPositions() {
    return maxPositionEmbeddings;
  }

  @Override
  public String trunkPrefix() {
    return "model.";
  }

  @Override
  public String embeddingKey() {
    return "model.embed_tokens.weight";
  }

  /** Query heads per key/value head. */
  public int groupSize() {
    return numHeads / numKeyValueHeads;
  }

  /** Modules a LoRA adapter may target in Llama (PEFT names). */
  public static final List<String> LORA_TARGETS =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

  @Override
  public List<String> loraTargets() {
    return LORA_TARGETS;
  }

  /** Checkpoint key to shape of every trunk parameter. */
  @Override
  public Map<String, long[]> parameterShapes() {
    LlamaConfig c = this;
    Map<String, long[]> m = new LinkedHashMap<>();
    long h = c.hiddenSize();
    long f = c.intermediateSize();
    long qd = (long) c.numHeads() * c.headDim();
    long kvd = (long) c.numKeyValueHeads() * c.headDim();
    m.put("model.embed_tokens.weight", new long[] {c.vocabSize(), h});
    for (int i = 0; i < c.numLayers(); i++) {
      String p = "model.layers." + i + ".";
      m.put(p + "input_layernorm.weight", new long[] {h});
      m.put(p + "self_attn.q_proj.weight", new long[] {qd, h});
      m.put(p + "self_attn.k_proj.weight", new long[] {kvd, h});
      m.put(p + "self_attn.v_proj.weight", new long[] {kvd, h});
      m.put(p + "self_attn.o_proj.weight", new long[] {h, qd});
      m.put(p + "post_attention_layernorm.weight", new long[] {h});
      m.put(p + "mlp.gate_proj.weight", new long[] {f, h});
      m.put(p + "mlp.up_proj.weight", new long[] {f, h});
      m.put(p + "mlp.down_proj.weight", new long[] {h, f});
    }
    m.put("model.norm.weight", new long[] {h});
    return m;
  }
}
