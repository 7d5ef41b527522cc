package dev.rewardensemble.io;

import java.util.Locale;

/**
 * How an exported ensemble turns its K member rewards into the one {@code reward} output of a
 * SavedModel. A minimal stand-in kept in one place until it is unified with the ensemble package.
 *
 * <ul>
 *   <li>{@code mean}: mean of the members;
 *   <li>{@code lcb}: {@code mean - beta * std} (population std, the lower confidence bound);
 *   <li>{@code min}: worst-case member;
 *   <li>{@code uwo}: {@code mean - lambda * var} (uncertainty-weighted optimisation, population
 *       variance).
 * </ul>
 *
 * With K = 1 every kind gives the single member's reward.
 *
 * @param kind {@code mean}, {@code lcb}, {@code min} or {@code uwo}
 * @param beta weight of the std in {@code lcb} (>= 0)
 * @param lambda weight of the variance in {@code uwo} (>= 0)
 */
public record AggregationSpec(String kind, double beta, double lambda) {
  public AggregationSpec {
    if (kind == null) {
      throw new IllegalArgumentException("aggregation kind is missing (mean, lcb, min, uwo)");
    }
    kind = kind.toLowerCase(Locale.ROOT);
    if (!(kind.equals("mean") || kind.equals("lcb") || kind.equals("min") || kind.equals("uwo"))) {
      throw new IllegalArgumentException(
          "aggregation '" + kind + "' is not supported (mean, lcb, min, uwo)");
    }
    if (!(beta >= 0) || Double.isInfinite(beta)) {
      throw new IllegalArgumentException("aggregation beta must be finite and >= 0, got " + beta);
    }
    if (!(lambda >= 0) || Double.isInfinite(lambda)) {
      throw new IllegalArgumentException("aggregation lambda must be finite and >= 0, got " + lambda);
    }
  }

  public static AggregationSpec mean() {
    return new AggregationSpec("mean", 0, 0);
  }

  public static AggregationSpec lcb(double beta) {
    return new AggregationSpec("lcb", beta, 0);
  }

  public static AggregationSpec min() {
    return new AggregationSpec("min", 0, 0);
  }

  public static AggregationSpec uwo(double lambda) {
    return new AggregationSpec("uwo", 0, lambda);
  }

  /** Plain-Java reference of the aggregation of one example's member rewards. */
  public double apply(float[] members) {
    int k = members.length;
    if (k == 0) {
      throw new IllegalArgumentException("no member rewards to aggregate");
    }
    double mean = 0;
    double min = Double.POSITIVE_INFINITY;
    for (float m : members) {
      mean += m;
      min = Math.min(min, m);
    }
    mean /= k;
    double var = 0;
    for (float m : members) {
      var += (m - mean) * (m - mean);
    }
    var /= k;
    return switch (kind) {
      case "mean" -> mean;
      case "lcb" -> mean - beta * Math.sqrt(var);
      case "min" -> min;
      case "uwo" -> mean - lambda * var;
      default -> throw new IllegalStateException(kind);
    };
  }
}
