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

  static Gpt2Config parse(HfKeys r) {
    int nEmbd = r.integer("n_embd", null);
    int vocab = r.integer("vocab_size", null);
    int eos = r.tokenId("eos_token_id", -1, vocab);
    int pad = r.padTokenId(eos, vocab);
    return new Gpt2Config(
        vocab,
        r.integer("n_positions", null),
        nEmbd,
        r.integer("n_layer", null),
        r.integer("n_head", null),
        r.integer("n_inner", 4 * nEmbd),
        r.number("layer_norm_epsilon", 1e-5),
        r.text("activation_function", "gelu_new"),
        pad,
        r.tokenId("bos_token_id", -1, vocab),
        eos,
        r.bool("tie_word_embeddings", true));
  }

  @Override
  public void writeHf(com.fasterxml.jackson.databind.node.ObjectNode o) {
    o.put("vocab_size", vocabSize);
    o.put("n_positions", nPositions);
    o.put("n_embd", nEmbd);
    o.put("n_layer", nLayer);
    o.put("n_head", nHead);
    o.put("n_inner", nInner);
    o.put("layer_norm_epsilon", layerNormEpsilon);
    o.put("activation_function", activation);
    o.put("resid_pdrop", 0.0);
    o.put("embd_pdrop", 0.0);
    o.put("attn_pdrop", 0.0);
    o.put("scale_attn_weights", true);
    o.put("pad_token_id", padTokenId);
    DecoderKeys.putId(o, "bos_token_id", bosTokenId);
    DecoderKeys.putId(o, "eos_token_id", eosTokenId);
  }

  @Override
  public String sizeKeys() {
    return "vocab_size "
        + vocabSize
        + ", n_embd "
        + nEmbd
        + ", n_inner "
        + nInner
        + ", n_layer "
        + nLayer
        + ", n_positions "
        + nPositions;
  }

  @Override
  public String hfClassPrefix() {
    return "GPT2";
  }

  @Override
  public String causalLmArchitecture() {
    return "GPT2LMHeadModel";
  }

  @Override
  public boolean conv1dWeights() {
    return true;
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

  @Override
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
