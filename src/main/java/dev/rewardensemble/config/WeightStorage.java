package dev.rewardensemble.config;

import java.util.Locale;

/**
 * The dtype frozen weights are stored in ({@link ExecConfig#weights}): the trunk when scoring, the
 * trunk of a LoRA ensemble. Trained weights (heads, adapters, a fine-tuned trunk) always keep
 * float32 variables. A bfloat16 weight is widened to float32 at the point of use (a {@code Cast}
 * feeding its product, which TensorFlow frees after the op), so for a checkpoint stored in bfloat16
 * both storages give exactly the same rewards (bfloat16 to float32 is exact); a float32 checkpoint
 * stored as bfloat16 is rounded to nearest even (rewards within about 1e-2 relative).
 */
public enum WeightStorage {
  FLOAT32,
  BFLOAT16,
  /** bfloat16 when every frozen tensor of the checkpoint is BF16 (lossless), else float32. */
  AUTO;

  /** {@code float32}, {@code bfloat16} or {@code auto} (also {@code fp32}, {@code bf16}). */
  public static WeightStorage parse(String s) {
    return switch (s.trim().toLowerCase(Locale.ROOT)) {
      case "float32", "fp32", "f32" -> FLOAT32;
      case "bfloat16", "bf16" -> BFLOAT16;
      case "auto" -> AUTO;
      default ->
          throw new IllegalArgumentException(
              "weight storage must be float32, bfloat16 or auto, got '" + s + "'");
    };
  }

  /**
   * The precision frozen weights are stored in: {@link #AUTO} resolves to bfloat16 exactly when
   * {@code checkpointIsBf16}.
   */
  public Precision resolve(boolean checkpointIsBf16) {
    return switch (this) {
      case FLOAT32 -> Precision.FLOAT32;
      case BFLOAT16 -> Precision.BFLOAT16;
      case AUTO -> checkpointIsBf16 ? Precision.BFLOAT16 : Precision.FLOAT32;
    };
  }

  /** The name used on the command line and in JSON. */
  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }
}
