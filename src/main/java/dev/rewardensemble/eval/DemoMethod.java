package dev.rewardensemble.eval;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import java.util.List;

/**
 * One reward-model method of the demo.
 *
 * @param name the name in tables and files ({@code single}, {@code linear-3}, ...)
 * @param k members
 * @param clean trained in two phases, the second on the cleaner preference set (LoRA)
 */
public record DemoMethod(String name, EnsembleKind kind, int k, boolean clean) {

  /** The aggregations compared. */
  public static final List<AggregationConfig> AGGREGATIONS =
      List.of(AggregationConfig.mean(), AggregationConfig.lcb(0.1), AggregationConfig.lcb(0.5));

  /** The methods: single, independent, linear, LoRA ensembles and a LoRA K=1 control. */
  public static List<DemoMethod> all(int k) {
    return List.of(
        new DemoMethod("single", EnsembleKind.SINGLE, 1, false),
        new DemoMethod("independent-" + k, EnsembleKind.INDEPENDENT, k, false),
        new DemoMethod("linear-" + k, EnsembleKind.LINEAR, k, false),
        new DemoMethod("lora-" + k, EnsembleKind.LORA, k, true),
        new DemoMethod("lora-1-control", EnsembleKind.LORA, 1, true));
  }

  /** An ensemble of at least two members (the single model and the LoRA control are not). */
  public boolean ensemble() {
    return k >= 2;
  }

  /** This method with the aggregation {@code a}. */
  public MethodAgg with(AggregationConfig a) {
    return new MethodAgg(this, a);
  }
}
