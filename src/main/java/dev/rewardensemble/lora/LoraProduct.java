package dev.rewardensemble.lora;

import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.Layers;
import dev.rewardensemble.model.Members;
import dev.rewardensemble.model.Projector.Layout;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.family.TFloating;

/**
 * How {@link StackedLora} computes adapted projections: the frozen base product plus every member's
 * low-rank delta, {@code W + BA} never formed. Three formulations of the same function, chosen once
 * per graph:
 *
 * <ul>
 *   <li>{@link BatchedProduct}: K-batched products {@code [K, B*T, in] @ A [K, in, R] @ B [K, R,
 *       out]} (oneDNN's {@code BatchMatMulV2}); scoring under XLA, which fuses the delta's add into
 *       its consumer;
 *   <li>{@link FoldedProduct}: for modules at least twice as wide as their input, the deltas folded
 *       into the base product, {@code [x | xA] @ [W ; B]} (TensorFlow's own kernels), narrower ones
 *       batched; scoring without XLA;
 *   <li>{@link MaskedTrainingProduct}: masked 2-D products, whose gradients run faster; training,
 *       with the stateless adapter dropout.
 * </ul>
 *
 * <p>An instance belongs to one graph: it holds that graph's constants (member masks, the dropout
 * placeholders) and nothing that depends on the inputs it is applied to.
 */
public sealed interface LoraProduct permits BatchedProduct, FoldedProduct, MaskedTrainingProduct {

  /**
   * The outputs of adapted modules of one block that read the same member-major rows.
   *
   * @param group the adapted modules, in checkpoint order
   * @param x rows {@code [K*B*T, in]}, member-major
   * @param weights the modules' base weights, in the order of {@code group}
   * @return one output {@code [K*B*T, out]} per module, without bias, in {@code x}'s dtype (the
   *     adapters, float32 variables, are cast to it)
   */
  <T extends TFloating> List<Operand<T>> project(
      BuildContext cx,
      List<StackedLora.Adapter> group,
      Operand<T> x,
      List<Operand<TFloat32>> weights,
      Layout layout);

  /**
   * The same for the fork block's first projections, whose input is the batch's rows once, {@code
   * [B*T, in]}, shared by {@code fork}'s members; the outputs are {@code [K*B*T, out]},
   * member-major.
   */
  <T extends TFloating> List<Operand<T>> projectShared(
      BuildContext cx,
      List<StackedLora.Adapter> group,
      Operand<T> x,
      List<Operand<TFloat32>> weights,
      Layout layout,
      Members fork);

  /** Batched products (see {@link BatchedProduct}). */
  static LoraProduct batched(int k, LoraConfig lora) {
    return new BatchedProduct(k, lora);
  }

  /** Folded products for wide modules, batched ones for the others (see {@link FoldedProduct}). */
  static LoraProduct folded(BuildContext cx, int k, LoraConfig lora) {
    return new FoldedProduct(cx, k, lora);
  }

  /**
   * Masked 2-D products with {@code lora}'s adapter dropout, seeded by {@code seed} (see {@link
   * MaskedTrainingProduct}); creates the dropout placeholders when the rate is positive.
   */
  static LoraProduct maskedTraining(BuildContext cx, int k, LoraConfig lora, long seed) {
    return new MaskedTrainingProduct(cx, k, lora, seed);
  }

  /**
   * The scoring formulation for a graph built in {@code cx}: batched under XLA (which fuses the
   * delta's add into its consumer but copies a concatenation), folded otherwise (fastest with
   * TensorFlow's own kernels).
   */
  static LoraProduct forScoring(BuildContext cx, int k, LoraConfig lora) {
    return cx.xla() ? batched(k, lora) : folded(cx, k, lora);
  }

  /** Member-major rows {@code [K*B*T, in]} as {@code [K, B*T, in]}. */
  static <T extends TFloating> Operand<T> byMember(Ops tf, Operand<T> x, int k, int in) {
    return tf.reshape(x, tf.constant(new int[] {k, -1, in}));
  }

  /**
   * The group's product {@code x @ [A_1 | .. | A_G]} per member, {@code [K, B*T, G*R]}, in {@code
   * x}'s dtype.
   */
  static <T extends TFloating> Operand<T> groupProduct(
      Ops tf, Operand<T> x, List<StackedLora.Adapter> group, int k) {
    List<Operand<TFloat32>> as = group.stream().map(StackedLora.Adapter::readA).toList();
    Operand<TFloat32> a =
        as.size() == 1 ? as.get(0) : tf.concat(as, tf.constant(2)); // [K, in, G*R]
    return Layers.batchMatMul(
        tf, byMember(tf, x, k, group.get(0).module().in()), Layers.cast(tf, a, x.type()), false);
  }

  /** {@code A} of {@code e} as {@code type}, {@code [K, in, R]} (small). */
  static <T extends TFloating> Operand<T> a(Ops tf, StackedLora.Adapter e, Class<T> type) {
    return Layers.cast(tf, e.readA(), type);
  }

  /** {@code B * scaling} as {@code type}, {@code [K, R, out]} (small). */
  static <T extends TFloating> Operand<T> scaledB(
      Ops tf, StackedLora.Adapter e, LoraConfig lora, Class<T> type) {
    return Layers.cast(tf, tf.math.mul(e.readB(), tf.constant((float) lora.scaling())), type);
  }
}
