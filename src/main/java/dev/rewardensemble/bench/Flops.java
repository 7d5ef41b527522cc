package dev.rewardensemble.bench;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.StackedLora;
import dev.rewardensemble.model.Transformers;
import java.util.Map;

/**
 * Analytic FLOP counts (multiply and add counted as 2 FLOPs), the numerator of MFU.
 *
 * <ul>
 *   <li>Matmuls: {@code 2 * P} per token, P = the trunk's 2-D weight matrices (embeddings excluded:
 *       a lookup is no matmul) plus the heads.
 *   <li>Attention: {@code 4 * T * (heads * head_dim)} per token per block ({@code QK^T} and {@code
 *       AV}), counted in FULL, not halved for the causal mask: both implementations compute the
 *       full {@code T x T} scores and mask them.
 *   <li>Norms, softmax, activations, residuals: not counted (a few % at this size).
 *   <li>Training (Bradley-Terry, full finetune): 3x forward (forward, input gradients, weight
 *       gradients).
 *   <li>LoRA phase 2 (frozen trunk): 2x the trunk's forward (no weight gradients for frozen
 *       weights) plus 3x the adapters' forward.
 * </ul>
 */
public final class Flops {
  private Flops() {}

  /** Matmul parameters of one block, of the whole trunk (without embeddings). */
  static long blockMatmulParams(ModelConfig c) {
    long total = 0;
    for (Map.Entry<String, long[]> e : Transformers.parameterShapes(c).entrySet()) {
      String k = e.getKey();
      long[] s = e.getValue();
      if (s.length == 2 && !isEmbedding(k, c)) {
        total += s[0] * s[1];
      }
    }
    return total / c.numLayers();
  }

  private static boolean isEmbedding(String key, ModelConfig c) {
    return key.equals(c.embeddingKey())
        || key.endsWith("wpe.weight")
        || key.endsWith("embed_tokens.weight");
  }

  static long attnWidth(ModelConfig c) {
    return (long) c.numHeads() * c.headDim();
  }

  /** Forward FLOPs of {@code layers} blocks over {@code b} sequences of {@code t} tokens. */
  static double blocks(ModelConfig c, int layers, long b, long t) {
    return layers * (2.0 * blockMatmulParams(c) * b * t + 4.0 * attnWidth(c) * b * t * t);
  }

  /**
   * FLOPs of generating {@code newTokens} tokens for {@code b} prompts of {@code prompt} tokens
   * with a KV cache: the prompt's forward, then per new token one token through the blocks
   * (attention over the cache so far, {@code 4 * pos * width} per block) and the language-model
   * head on every generated position.
   */
  public static double generate(ModelConfig c, long b, int prompt, int newTokens) {
    double f = blocks(c, c.numLayers(), b, prompt) + 2.0 * c.hiddenSize() * c.vocabSize() * b;
    for (int i = 1; i < newTokens; i++) {
      long pos = prompt + i;
      f +=
          c.numLayers() * (2.0 * blockMatmulParams(c) * b + 4.0 * attnWidth(c) * b * pos)
              + 2.0 * c.hiddenSize() * c.vocabSize() * b;
    }
    return f;
  }

  /** Forward FLOPs of one model with {@code heads} heads (head on the last token only). */
  public static double forward(ModelConfig c, long b, long t, int heads) {
    return blocks(c, c.numLayers(), b, t) + 2.0 * heads * c.hiddenSize() * b;
  }

  /** Forward FLOPs of the adapters of one member over {@code b*t} tokens. */
  static double adapters(ModelConfig c, LoraConfig lora, long b, long t) {
    double f = 0;
    for (StackedLora.Module m : StackedLora.modules(c, lora)) {
      f += 2.0 * lora.rank() * (m.in() + m.out()) * b * t;
    }
    return f;
  }

  /**
   * One Bradley-Terry step of full finetuning over {@code pairs} pairs ({@code 2*pairs} sequences).
   */
  public static double btStep(ModelConfig c, long pairs, long t) {
    return 3 * forward(c, 2 * pairs, t, 1);
  }

  /** One LoRA phase-2 step, frozen trunk, K = 1. */
  public static double loraStep(ModelConfig c, LoraConfig lora, long pairs, long t) {
    return 2 * forward(c, 2 * pairs, t, 1) + 3 * adapters(c, lora, 2 * pairs, t);
  }

  /** Scoring FLOPs of a batch of {@code b} for an ensemble kind of {@link BenchModels#KINDS}. */
  public static double ensemble(String kind, ModelConfig c, int k, long b, long t) {
    return switch (kind) {
      case "single" -> forward(c, b, t, 1);
      case "linear" -> forward(c, b, t, k);
      case "independent" -> k * forward(c, b, t, 1);
      case "lora", "lora-top1" -> {
        LoraConfig lora = BenchModels.lora(c, kind.equals("lora") ? 0 : 1);
        int fork = lora.forkLayer(c);
        yield blocks(c, fork, b, t)
            + k * blocks(c, c.numLayers() - fork, b, t)
            + k * adapters(c, lora, b, t)
            + 2.0 * k * c.hiddenSize() * b;
      }
      default -> throw new IllegalArgumentException(kind);
    };
  }
}
