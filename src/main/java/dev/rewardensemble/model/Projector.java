package dev.rewardensemble.model;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/**
 * A hook around every weight projection of a trunk, so that LoRA can add its low-rank delta to the
 * frozen base projection without the model families knowing about it (PEFT's wrapper pattern).
 */
@FunctionalInterface
public interface Projector {
  /**
   * @param module Hugging Face module key, e.g. {@code model.layers.0.self_attn.q_proj}
   * @param layer block index
   * @param x input rows {@code [rows, in]}
   * @param base the base projection's output {@code [rows, out]}
   * @return the projection's output {@code [rows, out]}
   */
  Operand<TFloat32> project(Ops tf, String module, int layer, Operand<TFloat32> x, Operand<TFloat32> base);

  /** Plain projections. */
  Projector NONE = (tf, module, layer, x, base) -> base;
}
