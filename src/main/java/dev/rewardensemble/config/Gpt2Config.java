package dev.rewardensemble.config;

import static dev.rewardensemble.config.ModelConfig.check;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * GPT-2: learned positions, pre-LayerNorm blocks, {@code gelu_new} MLP, fused {@code c_attn} and
 * Conv1D weights stored {@code [in, out]}. Field names follow Hugging Face's {@code GPT2Config}.
 *
 * @param nInner MLP width ({@code n_inner}; 4 * n_embd when the checkpoint says null)
 */
public record Gpt2Config(
    int vocabSize,
    int nPositions,
    int nEmbd,
    int nLayer,
    int nHead,
    int nInner,
    double layerNormEpsilon,
    String activation,
    int padTokenId,
    int bosTokenId,
    int eosTokenId,
    boolean tieWordEmbeddings)
    implements ModelConfig {

  public Gpt2Config {
    ModelConfig.checkSize("vocab_size", vocabSize, MAX_VOCAB);
    ModelConfig.checkSize("n_embd", nEmbd, MAX_WIDTH);
    ModelConfig.checkSize("n_inner", nInner, MAX_WIDTH);
    ModelConfig.checkSize("n_layer", nLayer, MAX_LAYERS);
    ModelConfig.checkSize("n_head", nHead, MAX_HEADS);
    ModelConfig.checkSize("n_positions", nPositions, MAX_POSITIONS);
    check(vocabSize > 0, "vocab_size must be positive, got " + vocabSize);
    check(nPositions > 0, "n_positions must be positive, got " + nPositions);
    check(nEmbd > 0, "n_embd must be positive, got " + nEmbd);
    check(nLayer > 0, "n_layer must be positive, got " + nLayer);
    check(nHead > 0, "n_head must be positive, got " + nHead);
    check(nEmbd % nHead == 0, "n_embd " + nEmbd + " is not divisible by n_head " + nHead);
    check(nInner > 0, "n_inner must be positive, got " + nInner);
    check(
        layerNormEpsilon > 0 && layerNormEpsilon < 1,
        "layer_norm_epsilon must be in (0, 1), got " + layerNormEpsilon);
    check(
        activation.equals("gelu_new") || activation.equals("gelu") || activation.equals("relu"),
        "activation_function '" + activation + "' is not supported (gelu_new, gelu, relu)");
    check(
        padTokenId >= 0 && padTokenId < vocabSize,
        "pad_token_id " + padTokenId + " is outside the vocabulary [0, " + vocabSize + ")");
  }

  /** A GPT-2 of the given size with GPT-2's defaults elsewhere. */
  public static Gpt2Config of(int vocab, int positions, int hidden, int layers, int heads) {
    return new Gpt2Config(
        vocab, positions, hidden, layers, heads, 4 * hidden, 1e-5, "gelu_new", 0, -1, -1, true);
  }

  @Override
  public String modelType() {
    return "gpt2";
  }

  @Override
  public int hiddenSize() {
    return nEmbd;
  }

  @Override
  public int numLayers() {
    return nLayer;
  }

  @Override
  public int numHeads() {
    return nHead;
  }

  @Override
  public int maxPositions() {
    return nPositions;
  }

  @Override
  public String trunkPrefix() {
    return "transformer.";
  }

  @Override
  public String embeddingKey() {
    return "transformer.wte.weight";
  }

  public int headDim() {
    return nEmbd / nHead;
  }

  /** Modules a LoRA adapter may target in GPT-2 (PEFT names). */
  public static final List<String> LORA_TARGETS = List.of("c_attn", "c_proj", "c_fc");

  @Override
  public List<String> loraTargets() {
    return LORA_TARGETS;
  }

  /** Checkpoint key to shape of every trunk parameter. */
  @Override
  public Map<String, long[]> parameterShapes() {
    Gpt2Config c = this;
    Map<String, long[]> m = new LinkedHashMap<>();
    long h = c.nEmbd();
    long f = c.nInner();
    m.put("transformer.wte.weight", new long[] {c.vocabSize(), h});
    m.put("transformer.wpe.weight", new long[] {c.nPositions(), h});
    for (int i = 0; i < c.nLayer(); i++) {
      String p = "transformer.h." + i + ".";
      m.put(p + "ln_1.weight", new long[] {h});
      m.put(p + "ln_1.bias", new long[] {h});
      m.put(p + "attn.c_attn.weight", new long[] {h, 3 * h});
      m.put(p + "attn.c_attn.bias", new long[] {3 * h});
      m.put(p + "attn.c_proj.weight", new long[] {h, h});
      m.put(p + "attn.c_proj.bias", new long[] {h});
      m.put(p + "ln_2.weight", new long[] {h});
      m.put(p + "ln_2.bias", new long[] {h});
      m.put(p + "mlp.c_fc.weight", new long[] {h, f});
      m.put(p + "mlp.c_fc.bias", new long[] {f});
      m.put(p + "mlp.c_proj.weight", new long[] {f, h});
      m.put(p + "mlp.c_proj.bias", new long[] {h});
    }
    m.put("transformer.ln_f.weight", new long[] {h});
    m.put("transformer.ln_f.bias", new long[] {h});
    return m;
  }
}
