package dev.rewardensemble.model;

import org.tensorflow.Operand;
import org.tensorflow.types.TFloat32;

/**
 * How a forward runs its blocks: the hook every family's one forward calls for each block ({@code x
 * = cx.blocks().run(cx, i, x, body)}), so that training can keep only the blocks' inputs and
 * rebuild each block in the backward pass ({@link Recompute}) without a second forward. {@link
 * #PLAIN} (every graph but a training graph built with recomputation) just builds the block.
 */
@FunctionalInterface
public interface BlockRunner {

  /**
   * One block of a forward: its output rows from its input rows {@code x}, built with {@code cx}. A
   * body reads everything else it needs (weights, geometry, rotary tables, members) from what it
   * captured, and builds every op that depends on {@code x} with {@code cx.tf()} (or through the
   * {@link Weights} gated on {@code x}), so that it can be built again over another input.
   */
  @FunctionalInterface
  interface Block {
    Operand<TFloat32> build(BuildContext cx, Operand<TFloat32> x);
  }

  /**
   * Block {@code layer}'s output for input {@code x} ({@code [rows, H]}; the fork block's output
   * has K times the rows).
   */
  Operand<TFloat32> run(BuildContext cx, int layer, Operand<TFloat32> x, Block body);

  /** Builds every block once, as written. */
  BlockRunner PLAIN = (cx, layer, x, body) -> body.build(cx, x);
}
