package dev.rewardensemble.config;

import java.util.List;
import java.util.Map;

/**
 * The architecture of a transformer trunk: one record per model family. Every implementation is an
 * immutable record validated in its compact constructor, whose messages name the bad value.
 */
public sealed interface ModelConfig permits Gpt2Config, DecoderConfig {

  /** Hugging Face's {@code model_type}: {@code "gpt2"}, {@code "llama"}, {@code "qwen2"}, ... */
  String modelType();

  int vocabSize();

  int hiddenSize();

  int numLayers();

  int numHeads();

  /** Largest number of positions a sequence may have. */
  int maxPositions();

  /** Token id used for padding (never read by the graphs, which use the attention mask). */
  int padTokenId();

  /** End-of-sequence id, or -1 when the checkpoint does not say. */
  int eosTokenId();

  /** Whether the language-model head reuses the input embedding matrix. */
  boolean tieWordEmbeddings();

  /** Prefix of the trunk's checkpoint keys, e.g. {@code "transformer."} or {@code "model."}. */
  String trunkPrefix();

  /** Key of the input token embedding, e.g. {@code "transformer.wte.weight"}. */
  String embeddingKey();

  /** Beginning-of-sequence id, or -1 when the checkpoint does not say. */
  int bosTokenId();

  /**
   * Checkpoint key to shape of every trunk parameter (no head), in the Hugging Face layout of the
   * family: what a checkpoint must hold and what the graphs create.
   */
  Map<String, long[]> parameterShapes();

  /** PEFT module names a LoRA adapter may target in this family. */
  List<String> loraTargets();

  /** Size of one attention head. */
  int headDim();

  /** Key/value heads (grouped-query attention); {@link #numHeads()} when every head has its own. */
  default int numKeyValueHeads() {
    return numHeads();
  }

  /**
   * Prefix of the family's Hugging Face class names: {@code GPT2}, {@code Llama}, {@code Qwen2},
   * ...
   */
  String hfClassPrefix();

  /** Hugging Face class of a reward model: {@code LlamaForSequenceClassification}, ... */
  default String sequenceClassificationArchitecture() {
    return hfClassPrefix() + "ForSequenceClassification";
  }

  /** Hugging Face class of a causal language model: {@code LlamaForCausalLM}, ... */
  default String causalLmArchitecture() {
    return hfClassPrefix() + "ForCausalLM";
  }

  /** Hugging Face class of the bare trunk: {@code LlamaModel}, ... */
  default String baseArchitecture() {
    return hfClassPrefix() + "Model";
  }

  /**
   * Whether projection weights are stored {@code [in, out]} (GPT-2's {@code Conv1D}) rather than
   * torch {@code Linear}'s {@code [out, in]}.
   */
  default boolean conv1dWeights() {
    return false;
  }

  /**
   * Sliding attention window of block {@code layer}: a query at index i sees keys j with {@code i -
   * window < j <= i}; 0 for full causal attention.
   */
  default int attentionWindow(int layer) {
    return 0;
  }

  /** Soft-capping of the language-model logits ({@code cap * tanh(logits / cap)}); 0 for none. */
  default double finalLogitSoftcapping() {
    return 0;
  }

  /**
   * The value every norm weight of a fresh model starts at: 1, or 0 for families whose norms scale
   * by {@code (1 + weight)} (Gemma).
   */
  default float initialNormWeight() {
    return 1f;
  }

  /**
   * The size keys with their values, as error messages name them (e.g. {@code vocab_size 300,
   * hidden_size 64, ...}).
   */
  String sizeKeys();

  /**
   * Writes the family's keys of a Hugging Face {@code config.json} into {@code o} (everything but
   * {@code architectures}, labels and {@code dtype}).
   */
  void writeHf(com.fasterxml.jackson.databind.node.ObjectNode o);

  /**
   * Upper bounds of the size keys: far above every published model (vocabularies of 256k, hidden
   * 16k, 126 layers, 10M positions) and low enough that shapes and their products stay exact.
   */
  int MAX_VOCAB = 1 << 24;

  int MAX_WIDTH = 1 << 20;
  int MAX_LAYERS = 4096;
  int MAX_HEADS = 1 << 14;
  int MAX_POSITIONS = 1 << 26;

  /** {@code value} must lie in [1, max]; the error names {@code key}. */
  static void checkSize(String key, long value, long max) {
    if (value < 1 || value > max) {
      throw new IllegalArgumentException(key + " must be in [1, " + max + "], got " + value);
    }
  }

  static void check(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }
}
