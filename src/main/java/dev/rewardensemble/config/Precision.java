package dev.rewardensemble.config;

import java.util.Locale;

/**
 * The precision of a graph's weight products. Variables, activations, attention, norms, softmax and
 * losses stay float32 in both; with {@link #BFLOAT16} every product with a weight matrix
 * (projections, LoRA adapters in training, heads; {@code Layers.matMul}) casts its two inputs to
 * bfloat16 and its result back to float32 (mixed precision: float32 master weights, gradients
 * through the casts; no loss scaling is needed with bfloat16's float32 exponent range). On CPUs
 * with AMX or AVX512-BF16 oneDNN runs these products several times faster (3.5x on the measured
 * Sapphire Rapids). The batched products ({@code Layers.batchMatMul}: attention, and the LoRA
 * adapters of scoring builds) stay float32: TensorFlow's batched bfloat16 MatMul measured slower
 * for attention. Rewards then differ from float32 at about 1e-2 relative.
 *
 * <p>A graph's precision is part of its build context ({@code model.BuildContext}), passed to every
 * graph builder: {@code BuildContext.of(graph, exec)} takes {@link ExecConfig#compute}; graphs
 * built with {@code BuildContext.float32} (tests, SavedModel export) compute in float32. Nothing is
 * kept per graph here.
 */
public enum Precision {
  FLOAT32,
  BFLOAT16;

  /** {@code float32} or {@code bfloat16} (also {@code fp32}, {@code bf16}). */
  public static Precision parse(String s) {
    return switch (s.trim().toLowerCase(Locale.ROOT)) {
      case "float32", "fp32", "f32" -> FLOAT32;
      case "bfloat16", "bf16" -> BFLOAT16;
      default ->
          throw new IllegalArgumentException(
              "compute precision must be float32 or bfloat16, got '" + s + "'");
    };
  }

  /** The name used on the command line and in JSON. */
  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }
}
