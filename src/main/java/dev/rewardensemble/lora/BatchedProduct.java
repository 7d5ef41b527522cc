package dev.rewardensemble.lora;

import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.Layers;
import dev.rewardensemble.model.Members;
import dev.rewardensemble.model.Projector.Layout;
import java.util.ArrayList;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.family.TFloating;

/**
 * Scoring deltas as products batched over the members: each member's rows against its own A and B,
 * {@code x [K, B*T, in] @ A [K, in, R] @ (scaling * B) [K, R, out]}, added to the base product
 * {@code x @ W}, as {@code BatchMatMulV2}, which oneDNN runs (the {@code BatchMatMulV3} that TF
 * Java's typed op builds stays on Eigen and was slower; the masked form of {@link
 * MaskedTrainingProduct} is 5% slower end to end). Modules of a group share the A product; the fork
 * block's projections take the batch's rows once. No per-graph constants.
 */
public final class BatchedProduct implements LoraProduct {
  private final int k;
  private final LoraConfig lora;

  BatchedProduct(int k, LoraConfig lora) {
    this.k = k;
    this.lora = lora;
  }

  @Override
  public <T extends TFloating> List<Operand<T>> project(
      BuildContext cx,
      List<StackedLora.Adapter> group,
      Operand<T> x,
      List<Operand<TFloat32>> weights,
      Layout layout) {
    Ops tf = cx.tf();
    int r = lora.rank();
    Operand<T> product =
        group.size() > 1 ? LoraProduct.groupProduct(tf, x, group, k) : null; // [K, B*T, G*R]
    List<Operand<T>> out = new ArrayList<>(group.size());
    for (int index = 0; index < group.size(); index++) {
      StackedLora.Adapter e = group.get(index);
      Operand<T> xa; // [K, B*T, R]
      if (product != null) {
        xa =
            tf.slice(
                product,
                tf.constant(new int[] {0, 0, r * index}),
                tf.constant(new int[] {-1, -1, r}));
      } else {
        xa =
            Layers.batchMatMul(
                tf,
                LoraProduct.byMember(tf, x, k, e.module().in()),
                LoraProduct.a(tf, e, x.type()),
                false);
      }
      Operand<T> delta =
          tf.reshape(
              Layers.batchMatMul(tf, xa, LoraProduct.scaledB(tf, e, lora, x.type()), false),
              tf.constant(new int[] {-1, e.module().out()}));
      out.add(tf.math.add(layout.apply(cx, x, weights.get(index)), delta)); // [rows, out]
    }
    return out;
  }

  /**
   * The base product once on the batch's rows, every member's A on the same rows (a batched product
   * broadcasting the rows), then each member's B, and the base added to every member's delta by
   * broadcasting.
   */
  @Override
  public <T extends TFloating> List<Operand<T>> projectShared(
      BuildContext cx,
      List<StackedLora.Adapter> group,
      Operand<T> x,
      List<Operand<TFloat32>> weights,
      Layout layout,
      Members fork) {
    Ops tf = cx.tf();
    List<Operand<T>> out = new ArrayList<>(group.size());
    for (int index = 0; index < group.size(); index++) {
      StackedLora.Adapter e = group.get(index);
      int in = e.module().in();
      // [1, rows, in] @ [K, in, R] broadcasts the rows over the members.
      Operand<T> xa =
          Layers.batchMatMul(
              tf,
              tf.reshape(x, tf.constant(new int[] {1, -1, in})),
              LoraProduct.a(tf, e, x.type()),
              false);
      Operand<T> delta =
          Layers.batchMatMul(
              tf, xa, LoraProduct.scaledB(tf, e, lora, x.type()), false); // [K, rows, out]
      out.add(
          tf.reshape(
              tf.math.add(delta, layout.apply(cx, x, weights.get(index))),
              tf.constant(new int[] {-1, e.module().out()})));
    }
    return out;
  }
}
