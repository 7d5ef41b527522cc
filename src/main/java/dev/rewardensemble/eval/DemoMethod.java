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
 * @param lever the diversity lever of a lever row ({@link DemoLever}), null for the demo's own rows
 */
public record DemoMethod(String name, EnsembleKind kind, int k, boolean clean, DemoLever lever) {

  /** One of the demo's own rows (no lever). */
  public DemoMethod(String name, EnsembleKind kind, int k, boolean clean) {
    this(name, kind, k, clean, null);
  }

  /** The aggregations compared. */
  public static final List<AggregationConfig> AGGREGATIONS =
      List.of(AggregationConfig.mean(), AggregationConfig.lcb(0.1), AggregationConfig.lcb(0.5));

  /**
   * The methods: single, independent, linear, LoRA ensembles, a LoRA K=1 control, and the WARM
   * weight averages of the independent and LoRA ensembles (the linear one's would equal its mean
   * aggregation).
   */
  public static List<DemoMethod> all(int k) {
    return List.of(
        new DemoMethod("single", EnsembleKind.SINGLE, 1, false),
        new DemoMethod("independent-" + k, EnsembleKind.INDEPENDENT, k, false),
        new DemoMethod("linear-" + k, EnsembleKind.LINEAR, k, false),
        new DemoMethod("lora-" + k, EnsembleKind.LORA, k, true),
        new DemoMethod("lora-1-control", EnsembleKind.LORA, 1, true),
        new DemoMethod(WARM + "independent-" + k, EnsembleKind.INDEPENDENT, 1, false),
        new DemoMethod(WARM + "lora-" + k, EnsembleKind.LORA, 1, true));
  }

  /** The methods of a run: {@link #all(int)} and then a row per lever of {@code s}. */
  public static List<DemoMethod> all(DemoSettings s) {
    List<DemoMethod> out = new java.util.ArrayList<>(all(s.k()));
    for (DemoLever l : s.levers()) {
      out.add(l.method(s.k()));
    }
    return List.copyOf(out);
  }

  /** A lever row ({@link #lever} set). */
  public boolean leverRow() {
    return lever != null;
  }

  /** The name prefix of a WARM method: the weight average of the method it names. */
  static final String WARM = "warm-";

  /**
   * A WARM method (Rame et al. 2024): the members of the method {@link #warmSource} names averaged
   * into one model ({@code api.ModelMerge}; LoRA adapters into the trunk), one model's inference
   * cost. Its kind is its source's, K = 1.
   */
  public boolean warm() {
    return name.startsWith(WARM);
  }

  /** The name of the ensemble a WARM method averages. */
  public String warmSource() {
    return name.substring(WARM.length());
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
