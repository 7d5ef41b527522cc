package dev.rewardensemble.config;

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

  static void check(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }
}
