package dev.rewardensemble.lora;

import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.Layers;
import dev.rewardensemble.model.Members;
import dev.rewardensemble.model.Projector.Layout;
import java.util.ArrayList;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.PlaceholderWithDefault;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.TInt64;
import org.tensorflow.types.family.TFloating;

/**
 * Training deltas as plain 2-D products, whose gradients run faster: every row (dropped per module)
 * against all members' A side by side, {@code [rows, in] @ [in, K*R]}, masked to the row's own
 * member's R columns and scaled, then {@code @ B [K*R, out]} (all members' B stacked). It wastes
 * (K-1)/K of the first product, but measured on the 2-core CPU, LoRA steps ran 4-9% faster than
 * with the batched form's gradients. The fork block's rows are copied for every member first (every
 * member drops its own inputs).
 *
 * <p>Dropout is stateless (see {@link StackedLora}): each module's mask is {@code
 * StatelessRandomUniform} seeded by {@code [seed * 1000003 + module index, key]}, with the key the
 * fed {@link StackedLora#DROPOUT_KEY}. Holds the graph's dropout placeholders (when the rate is
 * positive) and its row mask.
 */
public final class MaskedTrainingProduct implements LoraProduct {
  private final int k;
  private final LoraConfig lora;
  private final long seed;

  /**
   * {@link StackedLora#DROPOUT_KEY} and {@link StackedLora#DROPOUT_RATE} (null without dropout).
   */
  private final PlaceholderWithDefault<TInt64> dropoutKey;

  private final PlaceholderWithDefault<TFloat32> dropoutRate;

  /** {@link #rowMask}: a function of the row count only, so built once, from the first rows. */
  private Operand<TFloat32> rowMask;

  MaskedTrainingProduct(BuildContext cx, int k, LoraConfig lora, long seed) {
    this.k = k;
    this.lora = lora;
    this.seed = seed;
    float dropout = (float) lora.dropout();
    Ops tf = cx.tf();
    if (dropout > 0) {
      dropoutKey =
          tf.withName(StackedLora.DROPOUT_KEY)
              .placeholderWithDefault(tf.constant(0L), Shape.scalar());
      dropoutRate =
          tf.withName(StackedLora.DROPOUT_RATE)
              .placeholderWithDefault(tf.constant(dropout), Shape.scalar());
    } else {
      dropoutKey = null;
      dropoutRate = null;
    }
  }

  @Override
  public <T extends TFloating> List<Operand<T>> project(
      BuildContext cx,
      List<StackedLora.Adapter> group,
      Operand<T> x,
      List<Operand<TFloat32>> weights,
      Layout layout) {
    List<Operand<T>> out = new ArrayList<>(group.size());
    for (int index = 0; index < group.size(); index++) {
      out.add(
          cx.tf()
              .math
              .add(layout.apply(cx, x, weights.get(index)), maskedDelta(cx, group.get(index), x)));
    }
    return out;
  }

  /** The rows copied once for every member, then {@link #project}. */
  @Override
  public <T extends TFloating> List<Operand<T>> projectShared(
      BuildContext cx,
      List<StackedLora.Adapter> group,
      Operand<T> x,
      List<Operand<TFloat32>> weights,
      Layout layout,
      Members fork) {
    return project(cx, group, fork.expand(cx.tf(), x), weights, layout);
  }

  /**
   * The delta {@code [rows, out]} of module {@code e} for member-major rows {@code x}, in {@code
   * x}'s dtype.
   */
  private <T extends TFloating> Operand<T> maskedDelta(
      BuildContext cx, StackedLora.Adapter e, Operand<T> x) {
    Ops tf = cx.tf();
    int kr = k * lora.rank();
    Operand<TFloat32> aCat = // [in, K*R], member-major columns
        tf.reshape(
            tf.linalg.transpose(e.readA(), tf.constant(new int[] {1, 0, 2})),
            tf.constant(new int[] {e.module().in(), kr}));
    Operand<T> dropped = dropoutKey != null ? dropout(tf, x, e.index()) : x;
    Operand<T> xa =
        tf.math.mul(
            Layers.matMul(cx, dropped, aCat, false), Layers.cast(tf, rowMask(tf, x), x.type()));
    return Layers.matMul(
        cx, xa, tf.reshape(e.readB(), tf.constant(new int[] {kr, e.module().out()})), false);
  }

  /**
   * {@code [K*B*T, K*R]}: {@code scaling} where the row's member owns the column, else 0. Rows are
   * member-major ({@code rows / K} per member).
   */
  private Operand<TFloat32> rowMask(Ops tf, Operand<?> x) {
    if (rowMask == null) {
      Operand<TInt32> n =
          tf.reshape(
              tf.slice(tf.shape(x), tf.constant(new int[] {0}), tf.constant(new int[] {1})),
              tf.constant(new int[0])); // rows
      Operand<TInt32> member =
          tf.math.floorDiv(
              tf.range(tf.constant(0), n, tf.constant(1)), tf.math.floorDiv(n, tf.constant(k)));
      Operand<TFloat32> oneHot =
          tf.oneHot(
              member,
              tf.constant(k),
              tf.constant((float) lora.scaling()),
              tf.constant(0f)); // [rows, K]
      Operand<TFloat32> perColumn =
          tf.math.mul(
              tf.expandDims(oneHot, tf.constant(2)),
              tf.ones(tf.constant(new int[] {1, 1, lora.rank()}), TFloat32.class)); // [rows, K, R]
      rowMask = tf.reshape(perColumn, tf.constant(new int[] {-1, k * lora.rank()}));
    }
    return rowMask;
  }

  /**
   * Inverted dropout: {@code x * (u >= rate ? 1 / (1 - rate) : 0)} with {@code u ~ U[0, 1)} from
   * {@code StatelessRandomUniform} seeded by {@code [seed * 1000003 + module, key]}: no state, the
   * same masks for the same key. The mask is one {@code SelectV2} of two scalars in {@code x}'s
   * dtype (the same values as casting {@code keep * scale}, with two fewer full-size ops per
   * module: no float mask, no product with the scale, no cast under bfloat16 compute).
   */
  private <T extends TFloating> Operand<T> dropout(Ops tf, Operand<T> x, int module) {
    Operand<TInt64> seeds =
        tf.stack(List.of(tf.constant(seed * 1_000_003L + module), dropoutKey)); // [2]
    Operand<TFloat32> u =
        tf.random.statelessRandomUniform(tf.shape(x), seeds, TFloat32.class); // [rows, in]
    Operand<TFloat32> scale =
        tf.math.div(tf.constant(1f), tf.math.sub(tf.constant(1f), dropoutRate)); // []
    Operand<T> mask =
        tf.select(
            tf.math.greaterEqual(u, dropoutRate),
            Layers.cast(tf, scale, x.type()),
            Layers.cast(tf, tf.constant(0f), x.type())); // [rows, in]
    return tf.math.mul(x, mask);
  }
}
