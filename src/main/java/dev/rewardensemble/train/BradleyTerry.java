package dev.rewardensemble.train;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/**
 * Bradley-Terry pairwise reward loss for an ensemble of {@code K} reward heads (or members), as in
 * TRL's {@code RewardTrainer}:
 *
 * <pre>
 *   d[b,k]       = rChosen[b,k] - rRejected[b,k] - margin[b]                 (margin 0 when absent)
 *   perHead[k]   = mean_b softplus(-d[b,k]) + coef * mean_b (rChosen[b,k] + rRejected[b,k])^2
 *   total        = mean_k perHead[k]
 *   accuracy[k]  = mean_b [rChosen[b,k] &gt; rRejected[b,k]]                   (ties count as wrong)
 * </pre>
 *
 * {@code softplus(-d) = -log sigmoid(d)}; TensorFlow's Softplus is stable for large {@code |d|} and
 * has a registered gradient. The second term is the reward-centering regulariser ({@code
 * center_rewards_coefficient}). Shapes: {@code B} pairs, {@code K} heads ({@code K = 1} for a
 * single model).
 */
public final class BradleyTerry {
  private BradleyTerry() {}

  /**
   * The loss terms.
   *
   * @param perHead loss of each head, {@code [K]}
   * @param total mean of {@code perHead}, {@code []}: the value to differentiate
   * @param accuracy fraction of pairs each head orders correctly, {@code [K]} (no gradient)
   */
  public record Loss(
      Operand<TFloat32> perHead, Operand<TFloat32> total, Operand<TFloat32> accuracy) {}

  /**
   * Builds the loss.
   *
   * @param tf ops of the graph
   * @param rChosen rewards of the chosen responses, {@code [B, K]}
   * @param rRejected rewards of the rejected responses, {@code [B, K]}
   * @param margin per-pair margin {@code [B]}, or {@code null} for none
   * @param centeringCoef weight of the centering term, finite and {@code >= 0} (0 leaves it out)
   * @throws IllegalArgumentException if a known rank or dimension does not fit
   */
  public static Loss loss(
      Ops tf,
      Operand<TFloat32> rChosen,
      Operand<TFloat32> rRejected,
      Operand<TFloat32> margin,
      float centeringCoef) {
    return loss(tf, rChosen, rRejected, margin, null, centeringCoef);
  }

  /**
   * The loss with per-pair, per-head weights {@code [B, K]} (nullable): each head's terms are a
   * weighted mean {@code sum_b w[b,k] * l[b,k] / sum_b w[b,k]}. Integer weights drawn from
   * Poisson(1) train each head on its own bootstrap resample of the batch.
   */
  public static Loss loss(
      Ops tf,
      Operand<TFloat32> rChosen,
      Operand<TFloat32> rRejected,
      Operand<TFloat32> margin,
      Operand<TFloat32> weights,
      float centeringCoef) {
    checkRank("rChosen", rChosen, 2);
    checkRank("rRejected", rRejected, 2);
    if (margin != null) {
      checkRank("margin", margin, 1);
    }
    if (!(Float.isFinite(centeringCoef) && centeringCoef >= 0)) {
      throw new IllegalArgumentException(
          "centeringCoef must be finite and >= 0, got " + centeringCoef);
    }
    Ops s = tf.withSubScope("bradley_terry");
    Operand<TFloat32> diff = s.math.sub(rChosen, rRejected); // [B, K]
    if (margin != null) {
      diff = s.math.sub(diff, s.expandDims(margin, s.constant(1))); // [B, K] - [B, 1]
    }
    Operand<TFloat32> terms = s.math.softplus(s.math.neg(diff)); // [B, K]
    Operand<TFloat32> perHead;
    Operand<TFloat32> norm = null;
    if (weights == null) {
      perHead = s.math.mean(terms, s.constant(0)); // [K]
    } else {
      // sum_b w / max(sum_b w, 1): a head whose resample drew no pair of this batch contributes 0.
      norm = s.math.maximum(s.sum(weights, s.constant(0)), s.constant(1f)); // [K]
      perHead = s.math.div(s.sum(s.math.mul(weights, terms), s.constant(0)), norm); // [K]
    }
    if (centeringCoef != 0) {
      Operand<TFloat32> sq = s.math.square(s.math.add(rChosen, rRejected)); // [B, K]
      Operand<TFloat32> center =
          weights == null
              ? s.math.mean(sq, s.constant(0))
              : s.math.div(s.sum(s.math.mul(weights, sq), s.constant(0)), norm); // [K]
      perHead = s.math.add(perHead, s.math.mul(s.constant(centeringCoef), center));
    }
    perHead = s.withName("per_head").identity(perHead); // [K]
    Operand<TFloat32> total = s.withName("total").math.mean(perHead, s.constant(0)); // []
    return new Loss(perHead, total, accuracy(s, rChosen, rRejected));
  }

  /**
   * Fraction of pairs with {@code rChosen > rRejected}, per head.
   *
   * @param rChosen {@code [B, K]}
   * @param rRejected {@code [B, K]}
   * @return {@code [K]}
   */
  public static Operand<TFloat32> accuracy(
      Ops tf, Operand<TFloat32> rChosen, Operand<TFloat32> rRejected) {
    Operand<TFloat32> correct =
        tf.dtypes.cast(tf.math.greater(rChosen, rRejected), TFloat32.class); // [B, K]
    return tf.math.mean(correct, tf.constant(0)); // [K]
  }

  private static void checkRank(String name, Operand<?> x, int rank) {
    if (!x.shape().isUnknown() && x.shape().numDimensions() != rank) {
      throw new IllegalArgumentException(
          name + " must have rank " + rank + ", got shape " + x.shape());
    }
  }
}
