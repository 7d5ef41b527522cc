package dev.rewardensemble.train;

import dev.rewardensemble.lora.StackedLora;
import java.util.ArrayList;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gradients;
import org.tensorflow.op.core.Variable;
import org.tensorflow.op.linalg.Svd;
import org.tensorflow.types.TFloat32;

/**
 * A diversity regulariser on the members' LoRA adapters (after UP-RLHF, Zhai et al. 2023): for
 * every adapted module, the K members' down-projections {@code lora_A [K, in, R]} are flattened to
 * rows {@code a_k}, each scaled to unit length, and the nuclear norm (sum of singular values) of
 * the stacked rows {@code M = [a_1/|a_1|; ...; a_K/|a_K|]} is maximised: it is K when the members'
 * adapters are mutually orthogonal and 1 when they are all parallel. The objective becomes {@code
 * loss - lambda * sum_modules ||M||_*}. The rows are normalised so that the regulariser cannot grow
 * the nuclear norm by merely growing the adapters (which would be unbounded).
 *
 * <p>TensorFlow's C++ gradient registry has no gradient for {@code Svd}, so the gradient is
 * assembled: the subgradient of the nuclear norm at {@code M = U S V^T} is {@code U V^T} (exact
 * when every singular value is positive, as for K members in a space of {@code in * R >> K}
 * dimensions), computed by a forward {@code Svd} and held constant ({@code StopGradient}); then
 * {@code d/dA sum(U V^T * M(A))} through the normalisation, which {@code tf.gradients} builds from
 * ordinary ops, is exactly {@code d||M(A)||_* / dA}. It is added to the Bradley-Terry gradients
 * before accumulation and clipping, so AdamW sees one gradient.
 */
public final class LoraDiversity {
  private LoraDiversity() {}

  /**
   * {@code grads[i] - lambda * d(sum_modules ||M||_*)/d vars[i]} for every {@code lora_A} variable
   * among {@code vars}; the other gradients unchanged.
   *
   * @param names checkpoint keys of {@code vars}, in the same order
   */
  static List<Operand<TFloat32>> addGradients(
      Ops tf,
      List<Variable<TFloat32>> vars,
      List<String> names,
      List<Operand<TFloat32>> grads,
      double lambda) {
    List<Integer> at = new ArrayList<>();
    List<Operand<TFloat32>> aVars = new ArrayList<>();
    for (int i = 0; i < vars.size(); i++) {
      if (names.get(i).endsWith(StackedLora.A)) {
        at.add(i);
        aVars.add(vars.get(i));
      }
    }
    if (at.isEmpty()) {
      throw new IllegalArgumentException(
          "--diversity-weight needs LoRA adapters to train (--ensemble lora)");
    }
    Ops s = tf.withSubScope("lora_diversity");
    Operand<TFloat32> surrogate = null;
    for (Operand<TFloat32> a : aVars) {
      Operand<TFloat32> term = surrogate(s, s.identity(a));
      surrogate = surrogate == null ? term : s.math.add(surrogate, term);
    }
    Gradients g = s.gradients(surrogate, aVars);
    List<Operand<TFloat32>> out = new ArrayList<>(grads);
    Operand<TFloat32> l = s.constant((float) lambda);
    for (int j = 0; j < at.size(); j++) {
      @SuppressWarnings("unchecked")
      Operand<TFloat32> dj = (Operand<TFloat32>) (Operand<?>) g.dy(j);
      int i = at.get(j);
      out.set(i, s.math.sub(grads.get(i), s.math.mul(l, dj)));
    }
    return out;
  }

  /**
   * {@code sum(StopGradient(U V^T) * M)} of one module's {@code a [K, in, R]}: equal in value to
   * {@link #nuclearNorm} and with its gradient.
   */
  static Operand<TFloat32> surrogate(Ops tf, Operand<TFloat32> a) {
    Operand<TFloat32> m = normalizedRows(tf, a); // [K, D]
    Svd<TFloat32> svd = tf.linalg.svd(m, Svd.computeUv(true), Svd.fullMatrices(false));
    Operand<TFloat32> uvt =
        tf.stopGradient(
            tf.linalg.matMul(svd.u(), svd.v(), org.tensorflow.op.linalg.MatMul.transposeB(true)));
    return tf.reduceSum(tf.math.mul(uvt, m), tf.constant(new int[] {0, 1}));
  }

  /** The nuclear norm of one module's normalised stacked rows, {@code []} (no gradient). */
  public static Operand<TFloat32> nuclearNorm(Ops tf, Operand<TFloat32> a) {
    Svd<TFloat32> svd =
        tf.linalg.svd(normalizedRows(tf, a), Svd.computeUv(false), Svd.fullMatrices(false));
    return tf.reduceSum(svd.s(), tf.constant(0));
  }

  /** {@code a [K, ...]} as rows {@code [K, D]}, each scaled to unit length. */
  private static Operand<TFloat32> normalizedRows(Ops tf, Operand<TFloat32> a) {
    Operand<TFloat32> m = tf.reshape(a, tf.constant(new long[] {a.shape().size(0), -1}));
    Operand<TFloat32> norm =
        tf.math.sqrt(
            tf.math.add(
                tf.reduceSum(
                    tf.math.square(m),
                    tf.constant(1),
                    org.tensorflow.op.core.ReduceSum.keepDims(true)),
                tf.constant(1e-12f)));
    return tf.math.div(m, norm);
  }
}
