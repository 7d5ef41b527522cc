package dev.rewardensemble.ensemble;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/**
 * An {@link Aggregation} rule with its parameters. Parameters a rule does not use must be 0, so
 * that a mistyped configuration ({@code MEAN} with {@code beta = 1}) fails instead of being
 * ignored.
 *
 * @param beta LCB's weight of the population standard deviation (finite, >= 0)
 * @param lambda UWO's weight of the population variance (finite, >= 0)
 */
public record AggregationConfig(Aggregation rule, double beta, double lambda) {

  public AggregationConfig {
    if (rule == null) {
      throw new IllegalArgumentException("aggregation rule is null (MEAN, LCB, MIN, UWO)");
    }
    if (!Double.isFinite(beta) || beta < 0) {
      throw new IllegalArgumentException("beta must be finite and >= 0, got " + beta);
    }
    if (!Double.isFinite(lambda) || lambda < 0) {
      throw new IllegalArgumentException("lambda must be finite and >= 0, got " + lambda);
    }
    if (rule != Aggregation.LCB && beta != 0) {
      throw new IllegalArgumentException(rule + " does not use beta, got beta = " + beta);
    }
    if (rule != Aggregation.UWO && lambda != 0) {
      throw new IllegalArgumentException(rule + " does not use lambda, got lambda = " + lambda);
    }
  }

  public static AggregationConfig mean() {
    return new AggregationConfig(Aggregation.MEAN, 0, 0);
  }

  /** {@code mean - beta * std} (population std). */
  public static AggregationConfig lcb(double beta) {
    return new AggregationConfig(Aggregation.LCB, beta, 0);
  }

  public static AggregationConfig min() {
    return new AggregationConfig(Aggregation.MIN, 0, 0);
  }

  /** {@code mean - lambda * variance} (population variance). */
  public static AggregationConfig uwo(double lambda) {
    return new AggregationConfig(Aggregation.UWO, 0, lambda);
  }

  /** The aggregated reward of one sequence from its K member rewards (computed in double). */
  public double apply(float[] members) {
    return switch (rule) {
      case MEAN -> Aggregation.mean(members);
      case LCB -> Aggregation.mean(members) - beta * Aggregation.std(members);
      case MIN -> Aggregation.min(members);
      case UWO -> Aggregation.mean(members) - lambda * Aggregation.variance(members);
    };
  }

  /** {@code members [B, K]} -> aggregated rewards {@code [B]}. */
  public Operand<TFloat32> apply(Ops tf, Operand<TFloat32> members) {
    return switch (rule) {
      case MEAN -> Aggregation.mean(tf, members);
      case LCB ->
          tf.math.sub(
              Aggregation.mean(tf, members),
              tf.math.mul(tf.constant((float) beta), Aggregation.std(tf, members)));
      case MIN -> Aggregation.min(tf, members);
      case UWO ->
          tf.math.sub(
              Aggregation.mean(tf, members),
              tf.math.mul(tf.constant((float) lambda), Aggregation.variance(tf, members)));
    };
  }
}
