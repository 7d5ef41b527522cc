package dev.rewardensemble.eval;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Best-of-n on the held-out pools, per reward and unit (a reward-model seed of a world): expected
 * gold score, proxy score and win rate vs SFT for each n of {@code ns}. Arrays indexed {@code
 * [seed]} are indexed by unit, world-major; {@code world[unit]} says which world a unit belongs to,
 * and {@link #stat} turns per-unit values into the hierarchical mean and standard error.
 *
 * @param seeds units (worlds x reward-model seeds per world)
 * @param curves per reward (in table order: methods, then aggregations)
 * @param members per method, its members used alone
 * @param world per unit, its world's index
 */
public record BestOfNResults(
    List<DemoMethod> methods,
    int[] ns,
    int seeds,
    Map<MethodAgg, Curves> curves,
    Map<DemoMethod, Members> members,
    int[] world) {

  public BestOfNResults {
    if (world.length != seeds) {
      throw new IllegalArgumentException(
          "world labels: " + world.length + " for " + seeds + " units");
    }
  }

  /** Results of one world: every unit in world 0. */
  public BestOfNResults(
      List<DemoMethod> methods,
      int[] ns,
      int seeds,
      Map<MethodAgg, Curves> curves,
      Map<DemoMethod, Members> members) {
    this(methods, ns, seeds, curves, members, new int[seeds]);
  }

  /** The worlds' results as one, world {@code i} of the result being {@code parts.get(i)}. */
  public static BestOfNResults concat(List<BestOfNResults> parts) {
    BestOfNResults first = parts.get(0);
    int units = parts.stream().mapToInt(BestOfNResults::seeds).sum();
    int[] world = new int[units];
    int u = 0;
    for (int w = 0; w < parts.size(); w++) {
      for (int i = 0; i < parts.get(w).seeds(); i++) {
        world[u++] = w;
      }
    }
    Map<MethodAgg, Curves> curves = new LinkedHashMap<>();
    for (MethodAgg r : first.curves().keySet()) {
      List<Curves> cs = parts.stream().map(p -> p.curves().get(r)).toList();
      curves.put(
          r,
          new Curves(
              rows(cs.stream().map(Curves::gold).toList()),
              rows(cs.stream().map(Curves::proxy).toList()),
              rows(cs.stream().map(Curves::win).toList()),
              flat(cs.stream().map(Curves::pairAccuracy).toList())));
    }
    Map<DemoMethod, Members> members = new LinkedHashMap<>();
    for (DemoMethod m : first.members().keySet()) {
      List<Members> ms = parts.stream().map(p -> p.members().get(m)).toList();
      members.put(
          m,
          new Members(
              rows(ms.stream().map(Members::win).toList()),
              rows(ms.stream().map(Members::gold).toList()),
              flat(ms.stream().map(Members::correlation).toList())));
    }
    return new BestOfNResults(first.methods(), first.ns(), units, curves, members, world);
  }

  private static double[][] rows(List<double[][]> parts) {
    return parts.stream().flatMap(Arrays::stream).toArray(double[][]::new);
  }

  private static double[] flat(List<double[]> parts) {
    return parts.stream().flatMapToDouble(Arrays::stream).toArray();
  }

  /** Worlds. */
  public int worlds() {
    return Arrays.stream(world).max().orElse(-1) + 1;
  }

  /**
   * The hierarchical mean and standard error of per-unit values ({@link DemoAnalysis#hierarchy}).
   */
  public DemoAnalysis.Stat stat(double[] perUnit) {
    return DemoAnalysis.hierarchy(perUnit, world).stat();
  }

  /** {@code x - y} per unit, paired, as a hierarchical mean and standard error. */
  public DemoAnalysis.Hierarchy diff(double[] x, double[] y) {
    return DemoAnalysis.hierarchy(DemoAnalysis.minus(x, y), world);
  }

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
