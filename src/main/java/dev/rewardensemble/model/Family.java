package dev.rewardensemble.model;

import dev.rewardensemble.config.ModelConfig;
import org.tensorflow.Operand;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * The one forward of a model family (its file in this package, e.g. {@link Llama#forward}), used by
 * scoring, training and decoding alike; registered by its config record's class in {@link
 * Transformers}.
 *
 * @param <C> the family's config record
 */
@FunctionalInterface
public interface Family<C extends ModelConfig> {

  /**
   * The trunk's final hidden rows (after the final norm).
   *
   * @param cx the ops to build with and the precision of the weight products
   * @param c the architecture
   * @param w the weights by checkpoint key (variables, or loop variables inside a decode loop)
   * @param ids {@code [B, T]} token ids (the new tokens only, with a cache)
   * @param g the geometry of {@code ids}: {@link Attention#geometry} of their mask, or {@link
   *     KvCache#extend}'s with a cache
   * @param proj the weight products ({@link Projector#NONE}, or LoRA's)
   * @param members null, or where the trunk forks into ensemble members (not with a cache)
   * @param cache null, or the key/value cache the attention layers write and read
   * @return rows {@code [B*T, H]}, or {@code [K*B*T, H]} when forked into members
   */
  Operand<TFloat32> forward(
      BuildContext cx,
      C c,
      Weights w,
      Operand<TInt32> ids,
      Attention.Geometry g,
      Projector proj,
      Members members,
      KvCache cache);
}
