package dev.rewardensemble.lora;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.model.Gpt2;
import dev.rewardensemble.model.Llama;
import dev.rewardensemble.model.Transformers;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * LoRA hyperparameters of an ensemble: every member has its own adapter with these settings.
 *
 * <p>The adapter of a targeted projection adds {@code (dropout(x) @ A @ B) * scaling()} to the
 * frozen base output, with {@code A [in, R]}, {@code B [R, out]} and {@code scaling() = alpha / r}
 * (PEFT's default, not rsLoRA).
 *
 * @param rank R, the rank of every adapter (> 0)
 * @param alpha PEFT's {@code lora_alpha} (> 0)
 * @param dropout dropout rate on the adapter input during training, in {@code [0, 1)}; inference
 *     graphs never drop
 * @param targetModules PEFT module names, a subset of the family's {@code LORA_TARGETS} (checked by
 *     {@link #checkFor})
 * @param loraLayers adapters only in the top {@code loraLayers} blocks (0 = every block); the
 *     ensemble forks at block {@code numLayers - loraLayers}, so lower blocks run once for all
 *     members
 */
public record LoraConfig(
    int rank, double alpha, double dropout, List<String> targetModules, int loraLayers) {

  public LoraConfig {
    if (rank <= 0) {
      throw new IllegalArgumentException("LoRA rank r must be > 0, got " + rank);
    }
    if (!(alpha > 0) || Double.isInfinite(alpha)) {
      throw new IllegalArgumentException("lora_alpha must be finite and > 0, got " + alpha);
    }
    if (!(dropout >= 0 && dropout < 1)) {
      throw new IllegalArgumentException("lora_dropout must be in [0, 1), got " + dropout);
    }
    if (targetModules == null || targetModules.isEmpty()) {
      throw new IllegalArgumentException("target_modules must name at least one module");
    }
    targetModules = List.copyOf(targetModules);
    Set<String> seen = new HashSet<>();
    for (String m : targetModules) {
      if (!seen.add(m)) {
        throw new IllegalArgumentException(
            "target module '" + m + "' is listed twice in " + targetModules);
      }
    }
    if (loraLayers < 0) {
      throw new IllegalArgumentException(
          "loraLayers must be >= 0 (0 = all blocks), got " + loraLayers);
    }
  }

  /** r 8, alpha 16, dropout 0.05, every projection of the family, every block. */
  public static LoraConfig defaults(ModelConfig c) {
    return new LoraConfig(8, 16, 0.05, Transformers.loraTargets(c), 0);
  }

  /** Defaults for Llama (every one of {@link Llama#LORA_TARGETS}). */
  public static LoraConfig llama() {
    return new LoraConfig(8, 16, 0.05, Llama.LORA_TARGETS, 0);
  }

  /** Defaults for GPT-2 (every one of {@link Gpt2#LORA_TARGETS}). */
  public static LoraConfig gpt2() {
    return new LoraConfig(8, 16, 0.05, Gpt2.LORA_TARGETS, 0);
  }

  /** PEFT's scaling {@code alpha / r}. */
  public double scaling() {
    return alpha / rank;
  }

  public LoraConfig withRank(int r, double alpha) {
    return new LoraConfig(r, alpha, dropout, targetModules, loraLayers);
  }

  public LoraConfig withDropout(double rate) {
    return new LoraConfig(rank, alpha, rate, targetModules, loraLayers);
  }

  public LoraConfig withTargets(List<String> modules) {
    return new LoraConfig(rank, alpha, dropout, modules, loraLayers);
  }

  public LoraConfig withLoraLayers(int n) {
    return new LoraConfig(rank, alpha, dropout, targetModules, n);
  }

  /**
   * Checks the settings against a model: every target module is one of the family's LoRA targets
   * and {@code loraLayers <= numLayers}.
   *
   * @return this
   */
  public LoraConfig checkFor(ModelConfig c) {
    List<String> allowed = Transformers.loraTargets(c);
    for (String m : targetModules) {
      if (!allowed.contains(m)) {
        throw new IllegalArgumentException(
            "target module '"
                + m
                + "' is not a LoRA target of "
                + c.modelType()
                + " (allowed: "
                + String.join(", ", allowed)
                + ")");
      }
    }
    if (loraLayers > c.numLayers()) {
      throw new IllegalArgumentException(
          "loraLayers " + loraLayers + " exceeds the model's " + c.numLayers() + " blocks");
    }
    return this;
  }

  /** First block with adapters: where the ensemble forks ({@code numLayers - loraLayers}, or 0). */
  public int forkLayer(ModelConfig c) {
    return loraLayers == 0 ? 0 : c.numLayers() - loraLayers;
  }
}
