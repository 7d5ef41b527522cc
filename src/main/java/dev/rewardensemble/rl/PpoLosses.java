package dev.rewardensemble.rl;

import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.index.Indices;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TBool;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * PPO losses as graph functions (TRL's {@code PPOTrainer.loss}), each mirrored in plain Java by the
 * tests' {@code PpoReference}:
 *
 * <pre>
 *   logp[n,t]   = log_softmax(logits[n,t])[tokens[n,t]]                      (LogSoftmax + OneHot)
 *   ratio       = exp(logp - oldLogp)
 *   policy      = mean_m( max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)) )
 *   value       = 0.5 * mean_m( max((v - R)^2, (clip(v, vOld - epsV, vOld + epsV) - R)^2) )
 *   total       = policy + valueCoef * value
 *   mean_m(x)   = sum(x * mask) / max(sum(mask), 1)                           over all N*T tokens
 * </pre>
 *
 * Shapes: {@code N} sequences, {@code T} response positions, {@code V} vocabulary. {@code mask} is
 * 1 on response tokens and 0 elsewhere. The inputs of {@link #policyLoss} and {@link #valueLoss}
 * may hold anything at masked positions, even inf or NaN: they are replaced by 0 before any
 * arithmetic, so they change neither the loss nor its gradient. Logits must be finite everywhere.
 * Only ops with registered C++ gradients are used (no SparseSoftmaxCrossEntropy, Gather v1, Where),
 * and LogSoftmax only on rank-2 rows: its C++ gradient is wrong for rank 3 (see {@code
 * rowLogSoftmax}).
 */
public final class PpoLosses {
  private PpoLosses() {}

  /**
   * Log-probability of each given token.
   *
   * <p>{@code logits[n,t]} must already be the distribution of {@code tokens[n,t]} (shift a causal
   * LM's logits by one) and divided by the sampling temperature, so that rollout and training
   * log-probs agree.
   *
   * @param logits {@code [N, T, V]}
   * @param tokens token ids, {@code [N, T]}; ids outside {@code [0, V)} give 0 (use them only under
   *     mask 0)
   * @param mask {@code [N, T]}
   * @return {@code [N, T]}, 0 where {@code mask} is 0; differentiable w.r.t. {@code logits}
   */
  public static Operand<TFloat32> tokenLogProbs(
      Ops tf, Operand<TFloat32> logits, Operand<TInt32> tokens, Operand<TFloat32> mask) {
    checkRank("logits", logits, 3);
    checkRank("tokens", tokens, 2);
    checkRank("mask", mask, 2);
    Ops s = tf.withSubScope("token_log_probs");
    Operand<TInt32> vocab = vocabSize(s, logits);
    Operand<TFloat32> logSoftmax = rowLogSoftmax(s, logits, vocab); // [N*T, V]
    Operand<TFloat32> oneHot =
        s.oneHot(
            s.reshape(tokens, s.constant(new int[] {-1})),
            vocab,
            s.constant(1f),
            s.constant(0f)); // [N*T, V]
    Operand<TFloat32> flat = s.sum(s.math.mul(logSoftmax, oneHot), s.constant(1)); // [N*T]
    Operand<TFloat32> logp = s.reshape(flat, s.shape(tokens)); // [N, T]
    return s.withName("logp").math.mul(logp, mask); // [N, T]
  }

  /**
   * Entropy of each token's distribution, {@code -sum_v p log p} (for reporting).
   *
   * @param logits {@code [N, T, V]}
   * @param mask {@code [N, T]}
   * @return {@code [N, T]}, 0 where {@code mask} is 0
   */
  public static Operand<TFloat32> entropy(
      Ops tf, Operand<TFloat32> logits, Operand<TFloat32> mask) {
    checkRank("logits", logits, 3);
    checkRank("mask", mask, 2);
    Ops s = tf.withSubScope("entropy");
    Operand<TFloat32> logSoftmax = rowLogSoftmax(s, logits, vocabSize(s, logits)); // [N*T, V]
    Operand<TFloat32> plogp = s.math.mul(s.math.exp(logSoftmax), logSoftmax); // [N*T, V]
    Operand<TFloat32> flat = s.math.neg(s.sum(plogp, s.constant(1))); // [N*T]
    Operand<TFloat32> entropy = s.reshape(flat, s.shape(mask)); // [N, T]
    return s.withName("entropy").math.mul(entropy, mask); // [N, T]
  }

  /**
   * {@code sum(x * mask) / max(sum(mask), 1)} over all tokens.
   *
   * @param x {@code [N, T]}
   * @param mask {@code [N, T]}
   * @return {@code []}
   */
  public static Operand<TFloat32> maskedMean(Ops tf, Operand<TFloat32> x, Operand<TFloat32> mask) {
    checkRank("x", x, 2);
    checkRank("mask", mask, 2);
    Operand<TInt32> all = tf.constant(new int[] {0, 1});
    Operand<TFloat32> count = tf.math.maximum(tf.sum(mask, all), tf.constant(1f)); // []
    return tf.math.div(tf.sum(tf.math.mul(x, mask), all), count); // []
  }

  /**
   * The clipped policy loss and its diagnostics.
   *
   * @param loss {@code mean_m(max(-A ratio, -A clip(ratio)))}, {@code []}: the value to
   *     differentiate
   * @param clipFraction fraction of tokens where the clipped term is the larger one (no gradient
   *     flows there), {@code []}
   * @param approxKl {@code 0.5 * mean_m((logp - oldLogp)^2)}, {@code []} (TRL's {@code approxkl})
   * @param approxKlK3 {@code mean_m((ratio - 1) - (logp - oldLogp))}, {@code []}: the k3 estimate
   *     of {@code KL(old || new)}, never negative
   * @param ratio {@code exp(logp - oldLogp)}, 1 at masked positions, {@code [N, T]}
   */
  public record PolicyLoss(
      Operand<TFloat32> loss,
      Operand<TFloat32> clipFraction,
      Operand<TFloat32> approxKl,
      Operand<TFloat32> approxKlK3,
      Operand<TFloat32> ratio) {}

  /**
   * Builds the clipped surrogate policy loss.
   *
   * @param logp current log-probs of the rollout tokens, {@code [N, T]} (differentiable)
   * @param oldLogp log-probs at rollout time, {@code [N, T]} (treated as constants)
   * @param advantages {@code [N, T]} (treated as constants; whiten them on the host)
   * @param mask {@code [N, T]}
   * @param clipRange epsilon, finite and {@code > 0}
   */
  public static PolicyLoss policyLoss(
      Ops tf,
      Operand<TFloat32> logp,
      Operand<TFloat32> oldLogp,
      Operand<TFloat32> advantages,
      Operand<TFloat32> mask,
      float clipRange) {
    checkRank("logp", logp, 2);
    checkRank("oldLogp", oldLogp, 2);
    checkRank("advantages", advantages, 2);
    checkRank("mask", mask, 2);
    checkClip("clipRange", clipRange);
    Ops s = tf.withSubScope("policy_loss");
    Operand<TBool> on = s.math.greater(mask, s.constant(0f)); // [N, T]
    Operand<TFloat32> diff = zeroOff(s, on, s.math.sub(logp, oldLogp)); // [N, T]
    Operand<TFloat32> adv = s.stopGradient(zeroOff(s, on, advantages)); // [N, T]
    Operand<TFloat32> ratio = s.math.exp(diff); // [N, T]
    Operand<TFloat32> clipped = clip(s, ratio, 1f - clipRange, 1f + clipRange); // [N, T]
    Operand<TFloat32> unclippedLoss = s.math.mul(s.math.neg(adv), ratio); // [N, T]
    Operand<TFloat32> clippedLoss = s.math.mul(s.math.neg(adv), clipped); // [N, T]
    // Maximum sends the gradient of a tie to its first argument: the unclipped term.
    Operand<TFloat32> perToken = s.math.maximum(unclippedLoss, clippedLoss); // [N, T]
    Operand<TFloat32> loss = s.withName("loss").identity(maskedMean(s, perToken, mask));
    Operand<TFloat32> clipFraction =
        s.withName("clip_fraction")
            .identity(maskedMean(s, asFloat(s, s.math.greater(clippedLoss, unclippedLoss)), mask));
    Operand<TFloat32> approxKl =
        s.withName("approx_kl")
            .math
            .mul(s.constant(0.5f), maskedMean(s, s.math.square(diff), mask));
    Operand<TFloat32> k3 = s.math.sub(s.math.sub(ratio, s.constant(1f)), diff); // [N, T]
    Operand<TFloat32> approxKlK3 = s.withName("approx_kl_k3").identity(maskedMean(s, k3, mask));
    return new PolicyLoss(
        loss, clipFraction, approxKl, approxKlK3, s.withName("ratio").identity(ratio));
  }

  /**
   * The clipped value loss and its clip fraction.
   *
   * @param loss {@code 0.5 * mean_m(max((v - R)^2, (clip(v, vOld - eps, vOld + eps) - R)^2))},
   *     {@code []}
   * @param clipFraction fraction of tokens where the clipped error is the larger one, {@code []}
   */
  public record ValueLoss(Operand<TFloat32> loss, Operand<TFloat32> clipFraction) {}

  /**
   * Builds the clipped value loss.
   *
   * @param values current value predictions, {@code [N, T]} (differentiable)
   * @param oldValues value predictions at rollout time, {@code [N, T]}
   * @param returns value targets from {@link Gae}, {@code [N, T]}
   * @param mask {@code [N, T]}
   * @param clipRange epsilon, finite and {@code > 0}
   */
  public static ValueLoss valueLoss(
      Ops tf,
      Operand<TFloat32> values,
      Operand<TFloat32> oldValues,
      Operand<TFloat32> returns,
      Operand<TFloat32> mask,
      float clipRange) {
    checkRank("values", values, 2);
    checkRank("oldValues", oldValues, 2);
    checkRank("returns", returns, 2);
    checkRank("mask", mask, 2);
    checkClip("valueClipRange", clipRange);
    Ops s = tf.withSubScope("value_loss");
    Operand<TBool> on = s.math.greater(mask, s.constant(0f)); // [N, T]
    Operand<TFloat32> v = zeroOff(s, on, values); // [N, T]
    Operand<TFloat32> vOld = s.stopGradient(zeroOff(s, on, oldValues)); // [N, T]
    Operand<TFloat32> ret = s.stopGradient(zeroOff(s, on, returns)); // [N, T]
    Operand<TFloat32> eps = s.constant(clipRange);
    Operand<TFloat32> vClipped =
        s.math.minimum(s.math.maximum(v, s.math.sub(vOld, eps)), s.math.add(vOld, eps)); // [N, T]
    Operand<TFloat32> unclippedLoss = s.math.square(s.math.sub(v, ret)); // [N, T]
    Operand<TFloat32> clippedLoss = s.math.square(s.math.sub(vClipped, ret)); // [N, T]
    Operand<TFloat32> perToken = s.math.maximum(unclippedLoss, clippedLoss); // [N, T]
    Operand<TFloat32> loss =
        s.withName("loss").math.mul(s.constant(0.5f), maskedMean(s, perToken, mask));
    Operand<TFloat32> clipFraction =
        s.withName("clip_fraction")
            .identity(maskedMean(s, asFloat(s, s.math.greater(clippedLoss, unclippedLoss)), mask));
    return new ValueLoss(loss, clipFraction);
  }

  /**
   * {@code policyLoss + valueCoef * valueLoss}.
   *
   * @param valueCoef finite, {@code >= 0}
   * @return {@code []}
   */
  public static Operand<TFloat32> total(
      Ops tf, Operand<TFloat32> policyLoss, Operand<TFloat32> valueLoss, float valueCoef) {
    if (!(Float.isFinite(valueCoef) && valueCoef >= 0)) {
      throw new IllegalArgumentException("valueCoef must be finite and >= 0, got " + valueCoef);
    }
    return tf.withName("ppo_total_loss")
        .math
        .add(policyLoss, tf.math.mul(tf.constant(valueCoef), valueLoss));
  }

  /**
   * LogSoftmax over the last axis of {@code [N, T, V]} logits, as rows {@code [N*T, V]}. The C++
   * gradient of LogSoftmax in TensorFlow 2.18 sums the incoming gradient over axis 1, which is the
   * class axis only for rank 2: on {@code [N, T, V]} it silently returns a wrong gradient. Rank 2
   * is the only safe input.
   */
  private static Operand<TFloat32> rowLogSoftmax(
      Ops tf, Operand<TFloat32> logits, Operand<TInt32> vocab) {
    Operand<TInt32> rowsShape = tf.stack(List.of(tf.constant(-1), vocab)); // [2] = (-1, V)
    return tf.nn.logSoftmax(tf.reshape(logits, rowsShape)); // [N*T, V]
  }

  private static Operand<TInt32> vocabSize(Ops tf, Operand<TFloat32> logits) {
    long v = logits.shape().isUnknown() ? -1 : logits.shape().get(2);
    if (v > 0) {
      return tf.constant((int) v);
    }
    return tf.stridedSlice(tf.shape(logits), Indices.at(-1)); // []
  }

  /**
   * {@code x} where {@code on}, else 0: masked garbage (even inf/NaN) never reaches the arithmetic.
   */
  private static Operand<TFloat32> zeroOff(Ops tf, Operand<TBool> on, Operand<TFloat32> x) {
    return tf.select(on, x, tf.zerosLike(x));
  }

  private static Operand<TFloat32> clip(Ops tf, Operand<TFloat32> x, float lo, float hi) {
    return tf.math.minimum(tf.math.maximum(x, tf.constant(lo)), tf.constant(hi));
  }

  private static Operand<TFloat32> asFloat(Ops tf, Operand<TBool> x) {
    return tf.dtypes.cast(x, TFloat32.class);
  }

  private static void checkClip(String name, float eps) {
    if (!(Float.isFinite(eps) && eps > 0)) {
      throw new IllegalArgumentException(name + " must be finite and > 0, got " + eps);
    }
  }

  private static void checkRank(String name, Operand<?> x, int rank) {
    if (!x.shape().isUnknown() && x.shape().numDimensions() != rank) {
      throw new IllegalArgumentException(
          name + " must have rank " + rank + ", got shape " + x.shape());
    }
  }
}
