package dev.rewardensemble.model;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/**
 * A hook around every weight projection of a trunk, so that LoRA can adapt the frozen base projection without
 * the model families knowing about it (PEFT's wrapper pattern). The family passes the input rows and the base
 * weight; the projector computes the product (the family adds biases afterwards).
 */
@FunctionalInterface
public interface Projector {

  /** How a checkpoint stores a projection weight. */
  enum Layout {
    /** torch {@code nn.Linear}: {@code [out, in]}, applied as {@code x @ w^T} (Llama). */
    LINEAR,
    /** Hugging Face {@code Conv1D}: {@code [in, out]}, applied as {@code x @ w} (GPT-2). */
    CONV1D;

    /** The plain product {@code [rows, in] x w -> [rows, out]}, in the graph's precision. */
    public Operand<TFloat32> apply(Ops tf, Operand<TFloat32> x, Operand<TFloat32> w) {
      return Layers.matMul(tf, x, w, this == LINEAR);
    }
  }

  /**
   * @param module Hugging Face module key, e.g. {@code model.layers.0.self_attn.q_proj}
   * @param layer block index
   * @param x input rows {@code [rows, in]}
   * @param weight the base weight, stored as {@code layout} says
   * @return the projection's output {@code [rows, out]}, without bias
   */
  Operand<TFloat32> project(
      Ops tf, String module, int layer, Operand<TFloat32> x, Operand<TFloat32> weight, Layout layout);

  /**
   * The projection of rows that every ensemble member shares: the first projections of the block where the trunk
   * forks into members ({@link Members#fromLayer()}), whose input no member-specific weight has touched yet.
   * Returns what {@link #project} returns for {@code members.expand(x)}, but a projector may compute the shared
   * part once: here the base product on the batch's rows, then each member's own part.
   *
   * @param x input rows {@code [rows, in]}, the batch once
   * @return {@code [K*rows, out]}, member-major
   */
  default Operand<TFloat32> projectShared(
      Ops tf, String module, int layer, Operand<TFloat32> x, Operand<TFloat32> weight, Layout layout,
      Members members) {
    return members.expand(tf, project(tf, module, layer, x, weight, layout));
  }

  /**
   * The family's one call: {@link #projectShared} when {@code fork} is not null ({@code x} is the batch's rows once,
   * shared by {@code fork}'s members), else {@link #project}.
   */
  default Operand<TFloat32> project(
      Ops tf, String module, int layer, Operand<TFloat32> x, Operand<TFloat32> weight, Layout layout, Members fork) {
    return fork == null
        ? project(tf, module, layer, x, weight, layout)
        : projectShared(tf, module, layer, x, weight, layout, fork);
  }

  /** Plain projections. */
  Projector NONE = (tf, module, layer, x, weight, layout) -> layout.apply(tf, x, weight);
}
