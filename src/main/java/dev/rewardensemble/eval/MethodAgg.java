package dev.rewardensemble.eval;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.Diagnostics;

/** A reward of the demo: a method's reward model read with one aggregation of its members. */
public record MethodAgg(DemoMethod method, AggregationConfig agg) {

  /** The aggregation's label in tables: {@code mean}, {@code lcb(0.5)}. */
  public String aggLabel() {
    return label(agg);
  }

  /** {@code "linear-3 lcb(0.5)"}. */
  @Override
  public String toString() {
    return method.name() + " " + aggLabel();
  }

  public static String label(AggregationConfig a) {
    return Diagnostics.label(a);
  }
}
