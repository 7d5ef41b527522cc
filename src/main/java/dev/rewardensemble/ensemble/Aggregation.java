package dev.rewardensemble.ensemble;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Max;
import org.tensorflow.op.core.Min;
import org.tensorflow.op.math.Mean;
import org.tensorflow.types.TFloat32;

/**
 * How K member rewards become one reward (uncertainty-penalised RLHF). With {@code mu} the mean and
 * {@code sigma} the <b>population</b> standard deviation over members ({@code sqrt(sum (r - mu)^2 /
 * K)}, divisor K, not K - 1):
 *
 * <ul>
 *   <li>{@link #MEAN}: {@code mu}
 *   <li>{@link #LCB}: lower confidence bound {@code mu - beta * sigma}
 *   <li>{@link #MIN}: worst member, {@code min_k r_k}
 *   <li>{@link #UWO}: uncertainty-weighted optimisation {@code mu - lambda * sigma^2}
 * </ul>
 *
 * <p>The parameters live in {@link AggregationConfig}, which applies the rule in plain Java and in
 * a graph.
 */
public enum Aggregation {
  MEAN,
  LCB,
  MIN,
  UWO;

  /** Mean over members, accumulated in double. */
  public static double mean(float[] members) {
    requireMembers(members);
    double s = 0;
    for (float r : members) {
      s += r;
    }
    return s / members.length;
  }

  /** Population variance over members (divisor K). */
  public static double variance(float[] members) {
    double mu = mean(members);
    double s = 0;
    for (float r : members) {
      s += (r - mu) * (r - mu);
    }
    return s / members.length;
  }

  /** Population standard deviation over members (divisor K). */
  public static double std(float[] members) {
    return Math.sqrt(variance(members));
  }

  /** Smallest member reward. */
  public static double min(float[] members) {
    requireMembers(members);
    double m = Double.POSITIVE_INFINITY;
    for (float r : members) {
      m = Math.min(m, r);
    }
    return m;
  }

  /** {@code members [B, K]} -> mean {@code [B]}. */
  public static Operand<TFloat32> mean(Ops tf, Operand<TFloat32> members) {
    return tf.math.mean(members, tf.constant(1), Mean.keepDims(false)); // [B]
  }

  /** {@code members [B, K]} -> population variance {@code [B]} (divisor K). */
  public static Operand<TFloat32> variance(Ops tf, Operand<TFloat32> members) {
    Operand<TFloat32> mu = tf.math.mean(members, tf.constant(1), Mean.keepDims(true)); // [B, 1]
    Operand<TFloat32> centered = tf.math.sub(members, mu); // [B, K]
    return tf.math.mean(tf.math.square(centered), tf.constant(1), Mean.keepDims(false)); // [B]
  }

  /** {@code members [B, K]} -> population standard deviation {@code [B]} (divisor K). */
  public static Operand<TFloat32> std(Ops tf, Operand<TFloat32> members) {
    return tf.math.sqrt(variance(tf, members)); // [B]
  }

  /** {@code members [B, K]} -> smallest member reward {@code [B]}. */
  public static Operand<TFloat32> min(Ops tf, Operand<TFloat32> members) {
    return tf.min(members, tf.constant(1), Min.keepDims(false)); // [B]
  }

  /** {@code members [B, K]} -> largest member reward {@code [B]}. */
  public static Operand<TFloat32> max(Ops tf, Operand<TFloat32> members) {
    return tf.max(members, tf.constant(1), Max.keepDims(false)); // [B]
  }

  private static void requireMembers(float[] members) {
    if (members == null || members.length == 0) {
      throw new IllegalArgumentException("aggregation needs at least one member reward");
    }
  }
}
