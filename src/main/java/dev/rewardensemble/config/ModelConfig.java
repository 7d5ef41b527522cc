package dev.rewardensemble.config;

import java.util.List;
import java.util.Map;

/**
 * The architecture of a transformer trunk: one record per model family. Every implementation is an
 * immutable record validated in its compact constructor, whose messages name the bad value.
 */
public sealed interface ModelConfig permits Gpt2Config, LlamaConfig {

  /** {@code "gpt2"} or {@code "llama"}: Hugging Face's {@code model_type}. */
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
