package dev.rewardensemble.lora;

import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.Layers;
import dev.rewardensemble.model.Members;
import dev.rewardensemble.model.Projector.Layout;
import java.util.ArrayList;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.family.TFloating;

/**
 * Scoring deltas folded into the base product where that pays: for a group whose modules' outputs
 * are all at least twice as wide as their input (Llama's gate/up, GPT-2's c_attn and c_fc), {@code
 * [x | xA_1 | .. | xA_G] @ [W ; 0 ; B ; 0]}, one product per module with the delta never written
 * and added (fastest with TensorFlow's own kernels; XLA copies the concatenation, see {@link
 * LoraProduct#forScoring}). Folding saves writing and adding each {@code [rows, out]} delta and
 * costs a copy of the {@code [rows, in]} input and of the weights; measured on the 2-core CPU,
 * folding q/k/v as well bought no time and raised the ensemble's peak memory by ~5%, so narrower
 * groups, and the fork block's shared projections, take the {@link BatchedProduct} form.
 *
 * <p>Holds the graph's member mask, {@code [K, 1, 1, K, 1]}.
 */
public final class FoldedProduct implements LoraProduct {
  private final int k;
  private final LoraConfig lora;
  private final BatchedProduct batched;

  /**
   * {@code scaling} where the member (first axis) owns the column block (fourth axis), else 0.
   * Times a product {@code [K, B*T, G, 1, R]} it spreads each member's R columns into its own block
   * of {@code K*R}.
   */
  private final Operand<TFloat32> memberMask;

  FoldedProduct(BuildContext cx, int k, LoraConfig lora) {
    this.k = k;
    this.lora = lora;
    this.batched = new BatchedProduct(k, lora);
    float[] m = new float[k * k];
    for (int i = 0; i < k; i++) {
      m[i * k + i] = (float) lora.scaling();
    }
    memberMask = cx.tf().constant(Shape.of(k, 1, 1, k, 1), DataBuffers.of(m));
  }

  /**
   * Whether to fold a group: every module's output is at least twice as wide as the shared input.
   */
  static boolean foldable(List<StackedLora.Adapter> group) {
    return group.stream().allMatch(g -> g.module().out() >= 2 * g.module().in());
  }

  @Override
  public <T extends TFloating> List<Operand<T>> project(
      BuildContext cx,
      List<StackedLora.Adapter> group,
      Operand<T> x,
      List<Operand<TFloat32>> weights,
      Layout layout) {
    if (!foldable(group)) {
      return batched.project(cx, group, x, weights, layout);
    }
    Ops tf = cx.tf();
    int r = lora.rank();
    int size = group.size();
    int kr = k * r;
    // [x | xA_1 | .. | xA_G], [rows, in + G*K*R]: each xA_g is [rows, K*R] with the row's own
    // member's R columns
    // (times scaling) and zeros elsewhere.
    Class<T> type = x.type();
    Operand<T> product = LoraProduct.groupProduct(tf, x, group, k); // [K, B*T, G*R]
    Operand<T> spread =
        tf.math.mul(
            tf.reshape(product, tf.constant(new int[] {k, -1, size, 1, r})),
            Layers.cast(tf, memberMask, type)); // [K, B*T, G, K, R]
    Operand<T> masked = tf.reshape(spread, tf.constant(new int[] {-1, size * kr}));
    Operand<T> xExt = tf.concat(List.of(x, masked), tf.constant(1));
    boolean linear = layout == Layout.LINEAR;
    List<Operand<T>> out = new ArrayList<>(size);
    for (int index = 0; index < size; index++) {
      StackedLora.Adapter e = group.get(index);
      int outDim = e.module().out();
      // [W ; 0 ; B ; 0]: the other modules' columns meet zeros and the other members' rows of B
      // meet the mask's
      // zeros.
      Operand<T> bCat =
          Layers.cast(
              tf,
              tf.reshape(e.readB(), tf.constant(new int[] {kr, outDim})),
              type); // [K*R, out], member-major
      List<Operand<T>> parts = new ArrayList<>();
      parts.add(Layers.weightAs(tf, weights.get(index), type));
      if (index > 0) {
        parts.add(zeros(tf, linear ? outDim : kr * index, linear ? kr * index : outDim, type));
      }
      parts.add(linear ? tf.linalg.transpose(bCat, tf.constant(new int[] {1, 0})) : bCat);
      int after = size - 1 - index;
      if (after > 0) {
        parts.add(zeros(tf, linear ? outDim : kr * after, linear ? kr * after : outDim, type));
      }
      // [W ; 0 ; B ; 0] depends only on weights, so the executor could build every module's copy at
      // the start of a
      // run and hold them all; tying it to the input rows builds each one just before its product.
      Operand<T> wExt =
          tf.withControlDependencyOps(List.of(xExt.op()))
              .concat(parts, tf.constant(linear ? 1 : 0));
      out.add(product(cx, xExt, wExt, linear));
    }
    return out;
  }

  @Override
  public <T extends TFloating> List<Operand<T>> projectShared(
      BuildContext cx,
      List<StackedLora.Adapter> group,
      Operand<T> x,
      List<Operand<TFloat32>> weights,
      Layout layout,
      Members fork) {
    return batched.projectShared(cx, group, x, weights, layout, fork);
  }

  private static <T extends TFloating> Operand<T> zeros(Ops tf, int rows, int cols, Class<T> type) {
    return tf.zeros(tf.constant(new int[] {rows, cols}), type);
  }

  /**
   * {@code xExt @ wExt} (or {@code @ wExt^T}): a float32 pair as every weight product ({@link
   * Layers#matMul}, in the context's precision), a pair of another dtype as it is.
   */
  @SuppressWarnings("unchecked")
  private static <T extends TFloating> Operand<T> product(
      BuildContext cx, Operand<T> xExt, Operand<T> wExt, boolean transposeB) {
    if (wExt.type() == TFloat32.class) {
      return Layers.matMul(cx, xExt, (Operand<TFloat32>) wExt, transposeB);
    }
    return Layers.product(cx.tf(), xExt, wExt, transposeB);
  }
}
