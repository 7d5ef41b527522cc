package dev.rewardensemble.eval;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import java.util.List;
import java.util.Map;

/**
 * Best-of-n on the held-out pool, per reward and seed: expected gold score, proxy score and win
 * rate vs SFT for each n of {@code ns}.
 *
 * @param curves per reward (in table order: methods, then aggregations)
 * @param members per method, its members used alone
 */
public record BestOfNResults(
    List<DemoMethod> methods,
    int[] ns,
    int seeds,
    Map<MethodAgg, Curves> curves,
    Map<DemoMethod, Members> members) {

  /**
   * One reward's results, indexed {@code [seed][n index]}.
   *
   * @param proxy the mean of the members' raw rewards of the chosen response
   * @param pairAccuracy per seed, the fraction of the pool's within-prompt pairs ordered like gold
   */
  public record Curves(double[][] gold, double[][] proxy, double[][] win, double[] pairAccuracy) {}

  /**
   * A method's members, each used alone as the reward (mean over members), {@code [seed][n index]}.
   *
   * @param correlation per seed, the mean Pearson correlation of the members' raw rewards on the
   *     pool (NaN for K = 1)
   */
  public record Members(double[][] win, double[][] gold, double[] correlation) {}

  public Curves of(DemoMethod m, AggregationConfig a) {
    Curves c = curves.get(m.with(a));
    if (c == null) {
      throw new IllegalArgumentException("no Best-of-n results for " + m.with(a));
    }
    return c;
  }

  /** The win rate per seed of {@code m} with {@code a} at n = {@code ns[ni]}. */
  public double[] win(DemoMethod m, AggregationConfig a, int ni) {
    return column(of(m, a).win(), ni);
  }

  public double[] gold(DemoMethod m, AggregationConfig a, int ni) {
    return column(of(m, a).gold(), ni);
  }

  public double[] proxy(DemoMethod m, AggregationConfig a, int ni) {
    return column(of(m, a).proxy(), ni);
  }

  /** Index of the largest n. */
  public int last() {
    return ns.length - 1;
  }

  /** The single reward model. */
  public DemoMethod single() {
    return find(EnsembleKind.SINGLE, 1);
  }

  /** The method of {@code kind} with {@code k} members. */
  public DemoMethod find(EnsembleKind kind, int k) {
    return methods.stream()
        .filter(m -> m.kind() == kind && m.k() == k)
        .findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no " + kind + " method with K = " + k));
  }

  /** {@code [seed][ni]} -> the column {@code ni}. */
  static double[] column(double[][] perSeed, int ni) {
    double[] out = new double[perSeed.length];
    for (int sd = 0; sd < perSeed.length; sd++) {
      out[sd] = perSeed[sd][ni];
    }
    return out;
  }
}
