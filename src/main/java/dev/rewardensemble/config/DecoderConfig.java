package dev.rewardensemble.config;

import java.util.List;

/**
 * The Llama-style decoder families (Llama, Qwen2, Qwen3, Mistral, Gemma 2): what their records
 * share beyond {@link ModelConfig} — the {@code model.} key layout, PEFT's module names, rotary
 * embeddings with optional scaling, RMSNorm and per-layer sliding windows. Each record keeps only
 * what is its own (its keys, validation, parameter shapes, {@code config.json} spelling).
 */
public sealed interface DecoderConfig extends ModelConfig
    permits LlamaConfig, Qwen2Config, Qwen3Config, MistralConfig, Gemma2Config {

  int intermediateSize();

  int maxPositionEmbeddings();

  double rmsNormEps();

  double ropeTheta();

  RopeScaling ropeScaling();

  /** Per layer, the sliding attention window (0: full causal attention); empty: none anywhere. */
  default List<Integer> windows() {
    return List.of();
  }

  @Override
  default int maxPositions() {
    return maxPositionEmbeddings();
  }

  @Override
  default String trunkPrefix() {
    return "model.";
  }

  @Override
  default String embeddingKey() {
    return "model.embed_tokens.weight";
  }

  @Override
  default List<String> loraTargets() {
    return DecoderKeys.LORA_TARGETS;
  }

  @Override
  default String sizeKeys() {
    return DecoderKeys.sizeKeys(this, intermediateSize());
  }

  @Override
  default int attentionWindow(int layer) {
    return windows().isEmpty() ? 0 : windows().get(layer);
  }

  /** Inverse rotary frequencies {@code [head_dim / 2]}, scaled as {@link #ropeScaling} says. */
  default float[] inverseFrequencies() {
    return ropeScaling().inverseFrequencies(headDim(), ropeTheta());
  }
}
