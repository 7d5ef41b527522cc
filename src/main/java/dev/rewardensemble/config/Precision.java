package dev.rewardensemble.config;

import java.util.Locale;

/**
 * The compute precision of a graph. {@link #FLOAT32} computes everything in float32. With {@link
 * #BFLOAT16} the inside of every block runs in bfloat16, as PyTorch runs a bfloat16 model: a block
 * casts its normed input to bfloat16 once ({@code model.Layers#activations}), and its projections
 * (bfloat16 weights multiplied as stored, float32 ones rounded), q/k/v and rotary embeddings, the
 * attention products {@code q k^T} and {@code p v}, the MLP's intermediate and activation and the
 * LoRA deltas are bfloat16, so the activations the backward pass keeps are too. Float32 where
 * accuracy needs it: the residual stream between blocks (as under {@code torch.autocast}; the block
 * inputs {@code --recompute} keeps), norms (statistics and output, cast down after), the attention
 * scores' scaling, soft-capping, mask and softmax (cast down for {@code p v}), the heads (a float32
 * product of bfloat16 inputs), losses, the KV cache of generation (attention over it is float32)
 * and every variable: trained weights keep float32 master copies and gradients reach them through
 * the casts (no loss scaling is needed with bfloat16's float32 exponent range). On CPUs with AMX or
 * AVX512-BF16 oneDNN runs these products several times faster. Rewards differ from float32 at about
 * 1e-2 (measured on every family's fixture: closer to float32 than PyTorch's own bfloat16).
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
