package dev.rewardensemble.rl;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gather;
import org.tensorflow.op.core.Max;
import org.tensorflow.op.math.Cumsum;
import org.tensorflow.op.nn.TopK;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * Token choice and token log-probabilities as graph ops. No gradients are needed here, so TopKV2
 * and cumulative sums are fine; the draw is an inverse-CDF lookup with one uniform number per row
 * fed from the host, which makes a row's draws depend only on its own seed.
 */
public final class Sampling {
  private Sampling() {}

  /**
   * Chooses one token per row.
   *
   * <p>Sorts the {@code k} largest logits (TopKV2 puts the lower index first among equals, as
   * arg-max does), divides them by {@code temperature}, keeps the sorted prefix whose mass before
   * each token is below {@code topP}, and returns the token where the cumulative kept mass first
   * exceeds {@code u * total}. With {@code k = 1} (or {@code u = 0}) this is greedy decoding.
   *
   * @param logits {@code [B, V]} raw logits
   * @param u {@code [B]} uniform numbers in [0, 1)
   * @param temperature scalar, positive
   * @param topP scalar in (0, 1]
   * @param k scalar in [1, V]: how many of the most likely tokens are candidates
   * @return {@code [B]} token ids
   */
  public static Operand<TInt32> choose(
      Ops tf,
      Operand<TFloat32> logits,
      Operand<TFloat32> u,
      Operand<TFloat32> temperature,
      Operand<TFloat32> topP,
      Operand<TInt32> k) {
    TopK<TFloat32, TInt32> top = tf.nn.topK(logits, k, new TopK.Options[0]); // [B, k] each
    Operand<TFloat32> probs = tf.nn.softmax(tf.math.div(top.values(), temperature)); // [B, k]
    Operand<TFloat32> before =
        tf.math.cumsum(probs, tf.constant(1), Cumsum.exclusive(true)); // [B, k]
    Operand<TFloat32> keep = tf.dtypes.cast(tf.math.less(before, topP), TFloat32.class); // [B, k]
    Operand<TFloat32> cum = tf.math.cumsum(tf.math.mul(probs, keep), tf.constant(1)); // [B, k]
    Operand<TFloat32> total =
        tf.max(cum, tf.constant(1), Max.keepDims(true)); // [B, 1] (cum is non-decreasing)
    Operand<TFloat32> target = tf.math.mul(tf.expandDims(u, tf.constant(1)), total); // [B, 1]
    Operand<TInt32> rank =
        tf.sum(tf.dtypes.cast(tf.math.lessEqual(cum, target), TInt32.class), tf.constant(1)); // [B]
    Operand<TInt32> kept = tf.dtypes.cast(tf.sum(keep, tf.constant(1)), TInt32.class); // [B]
    rank = tf.math.minimum(rank, tf.math.sub(kept, tf.constant(1))); // guards float round-off
    Operand<TInt32> picked =
        tf.gather(
            top.indices(),
            tf.expandDims(rank, tf.constant(1)),
            tf.constant(1),
            Gather.batchDims(1L)); // [B, 1]
    return tf.reshape(picked, tf.constant(new int[] {-1})); // [B]
  }

  /**
   * {@code log_softmax(logits)[b, ids[b]]}: the log-probability of each chosen token under the
   * unmodified distribution.
   *
   * @param logits {@code [B, V]}
   * @param ids {@code [B]}
   * @return {@code [B]}
   */
  public static Operand<TFloat32> logProb(Ops tf, Operand<TFloat32> logits, Operand<TInt32> ids) {
    Operand<TFloat32> logp = tf.nn.logSoftmax(logits); // [B, V]
    Operand<TFloat32> picked =
        tf.gather(
            logp,
            tf.expandDims(ids, tf.constant(1)),
            tf.constant(1),
            Gather.batchDims(1L)); // [B, 1]
    return tf.reshape(picked, tf.constant(new int[] {-1})); // [B]
  }
}
