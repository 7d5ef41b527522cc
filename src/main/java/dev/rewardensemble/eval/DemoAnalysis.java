package dev.rewardensemble.eval;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The demo's statistics over its seed hierarchy, computed from the per-unit results only (no I/O,
 * no models): means and standard errors, differences paired by unit, and the answers to Q1-Q3 in
 * words.
 *
 * <p>A unit is one reward-model seed of one world (world = prompt split, demonstrations and SFT
 * policy). Every standard error is {@link #hierarchy}'s: two-stage, over worlds.
 */
public final class DemoAnalysis {
  private DemoAnalysis() {}

  /**
   * A mean over a two-level design: units (reward-model seeds, or PPO runs) nested in worlds.
   *
   * <p>Two-stage estimate: each world's mean over its units, then the mean and the standard error
   * (sample standard deviation / sqrt(worlds)) of those world means. The world mean's variance is
   * {@code between + within / units per world}, so the spread of the world means estimates exactly
   * the variance of the grand mean, whatever the two parts are, with no model of them; a difference
   * paired within units (two methods on the same world and seed) is summarised the same way. The
   * parts are reported beside it (method of moments, one-way ANOVA): {@code withinSd}, the pooled
   * standard deviation of units around their world mean; {@code betweenSd}, the standard deviation
   * of the world effect, {@code sqrt(max(0, var(world means) - within^2 * mean(1 / units)))}. When
   * the world means agree more closely than their units' spread within worlds implies (the between
   * part truncated at zero), the standard error is that implied one, {@code sqrt(within^2 * mean(1
   * / units) / worlds)}: the moment estimate from the same truncated parts, never below the noise
   * of the units themselves. With 4 worlds the spread of the means alone came out below it by
   * chance (a 0.053 +- 0.013 win-rate difference on one CPU where another CPU's run of the same
   * seeds gave 0.001 +- 0.007; with the floor, 0.053 +- 0.022).
   *
   * @param mean the mean of the world means (the grand mean when every world has the same units)
   * @param se the standard error over worlds (floored as above); with one world, the standard error
   *     over its units (which ignores the world's own draw: {@link #hierarchical()} is then false);
   *     NaN with one unit
   * @param worlds worlds
   * @param units units in all
   * @param betweenSd the between-world standard deviation (NaN with one world or no within-world
   *     replication)
   * @param withinSd the pooled within-world standard deviation (NaN when no world has 2 units)
   * @param seUnits the standard error treating every unit as independent (what the single-world
   *     demo reported)
   */
  public record Hierarchy(
      double mean,
      double se,
      int worlds,
      int units,
      double betweenSd,
      double withinSd,
      double seUnits) {

    /** Over worlds (at least two). */
    public boolean hierarchical() {
      return worlds >= 2;
    }

    /**
     * The mean and the standard error, with {@code worlds - 1} degrees of freedom (over one world:
     * {@code units - 1}).
     */
    public Stat stat() {
      return new Stat(mean, se, worlds >= 2 ? worlds - 1 : units - 1);
    }
  }

  /**
   * The demo's one statistic: the {@link Hierarchy} of per-unit {@code values}, unit {@code i}
   * being in world {@code world[i]} (any labels; units of a world need not be adjacent).
   */
  public static Hierarchy hierarchy(double[] values, int[] world) {
    if (values.length != world.length || values.length == 0) {
      throw new IllegalArgumentException(
          "hierarchy: " + values.length + " values for " + world.length + " world labels");
    }
    java.util.Map<Integer, List<Double>> byWorld = new java.util.LinkedHashMap<>();
    for (int i = 0; i < values.length; i++) {
      byWorld.computeIfAbsent(world[i], k -> new ArrayList<>()).add(values[i]);
    }
    int W = byWorld.size();
    double[] means = new double[W];
    double ssWithin = 0, invUnits = 0;
    int dfWithin = 0, w = 0;
    for (List<Double> xs : byWorld.values()) {
      double m = xs.stream().mapToDouble(Double::doubleValue).average().orElseThrow();
      means[w++] = m;
      for (double x : xs) {
        ssWithin += (x - m) * (x - m);
      }
      dfWithin += xs.size() - 1;
      invUnits += 1.0 / xs.size() / W;
    }
    Stat overWorlds = Stat.of(means);
    Stat overUnits = Stat.of(values);
    double withinVar = dfWithin > 0 ? ssWithin / dfWithin : Double.NaN;
    double betweenSd = Double.NaN;
    double se = W >= 2 ? overWorlds.se() : overUnits.se();
    if (W >= 2 && dfWithin > 0) {
      double varMeans = overWorlds.se() * overWorlds.se() * W;
      betweenSd = Math.sqrt(Math.max(0, varMeans - withinVar * invUnits));
      // The grand mean's variance from the same truncated parts: (between^2 + within^2 / units) /
      // worlds, i.e. the spread of the world means, but never below what the units' own spread
      // within their worlds implies when the world means happen to agree more closely than that.
      se = Math.sqrt((betweenSd * betweenSd + withinVar * invUnits) / W);
    }
    return new Hierarchy(
        overWorlds.mean(), se, W, values.length, betweenSd, Math.sqrt(withinVar), overUnits.se());
  }

  /**
   * Worlds of {@code seeds} reward-model seeds each that would bring the standard error of {@code
   * h}'s mean to {@code targetSe}, from its estimated parts: {@code ceil((between^2 + within^2 /
   * seeds) / targetSe^2)}, at least 2; -1 when the parts are not estimated (one world, or one seed
   * per world).
   */
  public static int worldsFor(Hierarchy h, int seeds, double targetSe) {
    if (Double.isNaN(h.betweenSd()) || Double.isNaN(h.withinSd())) {
      return -1;
    }
    double perWorld = h.betweenSd() * h.betweenSd() + h.withinSd() * h.withinSd() / seeds;
    return Math.max(2, (int) Math.ceil(perWorld / (targetSe * targetSe) - 1e-9));
  }

  /** {@code x[i] - y[i]}. */
  public static double[] minus(double[] x, double[] y) {
    if (x.length != y.length) {
      throw new IllegalArgumentException("paired: " + x.length + " vs " + y.length + " values");
    }
    double[] d = new double[x.length];
    for (int i = 0; i < d.length; i++) {
      d[i] = x[i] - y[i];
    }
    return d;
  }

  /** {@code x - y} paired by unit, as a {@link #hierarchy}. */
  public static Hierarchy paired(double[] x, double[] y, int[] world) {
    return hierarchy(minus(x, y), world);
  }

  /**
   * Mean and standard error (sample std / sqrt(n); NaN for n < 2), with the standard error's
   * degrees of freedom ({@code 0}: unknown, then a difference counts beyond two standard errors).
   */
  public record Stat(double mean, double se, int df) {
    public Stat(double mean, double se) {
      this(mean, se, 0);
    }

    public static Stat of(double[] xs) {
      double m = Arrays.stream(xs).average().orElse(Double.NaN);
      if (xs.length < 2) {
        return new Stat(m, Double.NaN, 0);
      }
      double v = 0;
      for (double x : xs) {
        v += (x - m) * (x - m);
      }
      return new Stat(m, Math.sqrt(v / (xs.length - 1) / xs.length), xs.length - 1);
    }

    /**
     * How many standard errors a difference must exceed to count: the two-sided 95% Student t
     * quantile for {@link #df} (4.30 with 2 degrees of freedom, 2.78 with 4), never below 2; 2 when
     * df is unknown.
     */
    public double threshold() {
      return df <= 0 ? 2 : Math.max(2, tQuantile975(df));
    }

    /** {@code "0.512 ± 0.013"}, or just the mean when there is no standard error. */
    public String fmt() {
      return Double.isNaN(se)
          ? String.format(Locale.ROOT, "%.3f", mean)
          : String.format(Locale.ROOT, "%.3f ± %.3f", mean, se);
    }
  }

  /** What a reward is compared with, seed by seed. */
  public enum Versus {
    SINGLE("single"),
    OWN_MEMBERS("own members alone");

    private final String text;

    Versus(String text) {
      this.text = text;
    }

    @Override
    public String toString() {
      return text;
    }
  }

  /**
   * A difference paired by unit at n = {@code n}: {@code reward} minus what it is compared with.
   *
   * @param win the win-rate difference (hierarchical mean and standard error)
   * @param gold the gold-score difference
   * @param winParts the win-rate difference's {@link Hierarchy}: between- and within-world parts
   */
  public record Paired(
      MethodAgg reward, Versus versus, int n, Stat win, Stat gold, Hierarchy winParts) {
    public Paired(MethodAgg reward, Versus versus, int n, Hierarchy win, Hierarchy gold) {
      this(reward, versus, n, win.stat(), gold.stat(), win);
    }
  }

  /**
   * A PPO reward against the single model, paired by PPO run (same world, reward-model seed and PPO
   * seed).
   *
   * <p>Its standard errors are floored ({@link #ppoPaired}): never below the pooled standard error
   * of every PPO reward's difference to the single model at the same point ({@link #ppoSeFloor}). A
   * few PPO runs give each difference a standard error of 2-3 degrees of freedom, which can come
   * out small by chance: in the fast run of session 11, lora-3's final gain was +0.065 +- 0.004
   * over 3 runs (15 standard errors), and -0.085 +- 0.032 on four other worlds. The paired
   * differences of all rewards share PPO's run-to-run noise, so their pooled standard error is the
   * better estimate of how far a single difference can move by chance.
   *
   * @param at {@code "final"} (both at the last evaluation) or {@code "best"} (each at the
   *     evaluation where its mean win rate over runs peaks)
   * @param iteration the reward's evaluation
   * @param singleIteration the single model's evaluation
   * @param win the win-rate difference, its standard error floored
   * @param gold the gold-score difference, its standard error floored
   * @param winSeRuns the win-rate difference's own standard error over its runs (before the floor)
   * @param goldSeRuns the gold difference's own standard error over its runs
   */
  public record PpoPaired(
      MethodAgg reward,
      String at,
      int iteration,
      int singleIteration,
      Hierarchy win,
      Hierarchy gold,
      double winSeRuns,
      double goldSeRuns) {}

  /**
   * Over-optimisation of one PPO reward: from the evaluation where its mean win rate peaks to the
   * last one, paired by run.
   *
   * @param winDrop peak minus final win rate
   * @param goldDrop peak minus final gold score
   * @param proxyRise final minus peak proxy reward
   */
  public record OverOptimisation(
      MethodAgg reward,
      int peakIteration,
      int finalIteration,
      Hierarchy winDrop,
      Hierarchy goldDrop,
      Hierarchy proxyRise) {
    /**
     * The win rate fell and the proxy rose, each beyond its t threshold ({@link Stat#threshold}),
     * the win rate by at least {@link #MIN_WIN_DIFFERENCE}.
     */
    public boolean shown() {
      return beyondWin(winDrop) && beyond(proxyRise);
    }
  }

  /**
   * Over-optimisation of the paper's rewards taken together ({@link #pooledReward}: the single
   * model and the independent, linear and LoRA ensembles, mean aggregation): per unit (Best-of-n)
   * or per PPO run, the rewards' mean win rate at the pooled curve's peak minus the one at the end.
   * One reward's drop can fall short of its threshold in one run and pass it in another (every
   * reward's drop was positive in every run of sessions 12-15, but which were resolved changed with
   * the CPU); the rewards' average has a fraction of the noise, so this is the finding a run on
   * another CPU should repeat.
   *
   * @param setting {@code "Best-of-n"} or {@code "PPO"}
   * @param rewards the rewards averaged
   * @param peak where the pooled mean curve peaks ({@code "n = 8"}, {@code "iteration 10"})
   * @param end the last point ({@code "n = 200"}, {@code "iteration 40"})
   * @param winDrop the win rate at the peak minus at the end
   * @param proxyRise PPO: the proxy reward at the end minus at the peak; null for Best-of-n, where
   *     the chosen response's proxy rises with n by construction
   */
  public record Pooled(
      String setting,
      List<MethodAgg> rewards,
      String peak,
      String end,
      Hierarchy winDrop,
      Hierarchy proxyRise) {
    /** The win rate fell beyond its threshold (and, in PPO, the proxy rose beyond its own). */
    public boolean shown() {
      return beyondWin(winDrop) && (proxyRise == null || beyond(proxyRise));
    }
  }

  /** The analysis the report prints. */
  public record Analysis(
      List<Paired> paired,
      List<PpoPaired> ppoPaired,
      List<OverOptimisation> overOptimisation,
      List<Pooled> pooled,
      String answers,
      List<Comparisons> families) {}

  public static Analysis of(BestOfNResults bon, List<PpoPhase.PpoRuns> ppo) {
    List<Comparisons> families = new ArrayList<>();
    String answers = answers(bon, ppo, families);
    return new Analysis(
        paired(bon),
        ppoPaired(ppo),
        overOptimisation(ppo),
        pooled(bon, ppo),
        answers,
        List.copyOf(families));
  }

  /**
   * A reward of the paper's question Q1, pooled by {@link Pooled}: the single model and the demo's
   * own ensembles (not the K = 1 control, the WARM averages or the lever rows, which vary with the
   * run's settings).
   */
  static boolean pooledReward(DemoMethod m) {
    return !m.leverRow() && !m.warm() && (m.kind() == EnsembleKind.SINGLE || m.ensemble());
  }

  /** Best-of-n's and (with PPO runs of at least two pooled rewards) PPO's {@link Pooled}. */
  public static List<Pooled> pooled(BestOfNResults bon, List<PpoPhase.PpoRuns> ppo) {
    List<Pooled> out = new ArrayList<>();
    AggregationConfig mean = AggregationConfig.mean();
    List<DemoMethod> ms = bon.methods().stream().filter(DemoAnalysis::pooledReward).toList();
    int[] ns = bon.ns();
    double[][] perN = new double[ns.length][];
    for (int ni = 0; ni < ns.length; ni++) {
      final int n = ni;
      perN[ni] = average(ms.stream().map(m -> bon.win(m, mean, n)).toList());
    }
    int peak = highest(perN, x -> bon.stat(x).mean()); // as one reward's peak(bon, m)
    int last = bon.last();
    out.add(
        new Pooled(
            "Best-of-n",
            ms.stream().map(m -> m.with(mean)).toList(),
            "n = " + ns[peak],
            "n = " + ns[last],
            bon.diff(perN[peak], perN[last]),
            null));
    List<PpoPhase.PpoRuns> rs =
        ppo.stream()
            .filter(r -> pooledReward(r.reward().method()) && r.reward().agg().equals(mean))
            .toList();
    if (rs.size() >= 2 && rs.get(0).runs().size() >= 2) {
      int[] world = rs.get(0).world();
      int points = rs.get(0).points();
      for (PpoPhase.PpoRuns r : rs) {
        if (!java.util.Arrays.equals(r.world(), world) || r.points() != points) {
          throw new IllegalArgumentException(
              "PPO runs of " + r.reward() + " are not paired with " + rs.get(0).reward() + "'s");
        }
      }
      double[][] win = new double[points][], proxy = new double[points][];
      for (int i = 0; i < points; i++) {
        final int p = i;
        win[i] = average(rs.stream().map(r -> r.win(p)).toList());
        proxy[i] = average(rs.stream().map(r -> r.proxy(p)).toList());
      }
      int best = highest(win, DemoAnalysis::mean); // as one reward's bestPoint
      int end = points - 1;
      out.add(
          new Pooled(
              "PPO",
              rs.stream().map(PpoPhase.PpoRuns::reward).toList(),
              "iteration " + rs.get(0).iteration(best),
              "iteration " + rs.get(0).iteration(end),
              paired(win[best], win[end], world),
              paired(proxy[end], proxy[best], world)));
    }
    return out;
  }

  /** Element-wise mean of equally long arrays. */
  private static double[] average(List<double[]> xs) {
    double[] out = new double[xs.get(0).length];
    for (double[] x : xs) {
      for (int i = 0; i < out.length; i++) {
        out[i] += x[i] / xs.size();
      }
    }
    return out;
  }

  /** Positive by more than two (real) standard errors. */
  static boolean beyond(Hierarchy h) {
    return beyond(h.stat());
  }

  /** Positive by more than its t threshold ({@link Stat#threshold}) of (real) standard errors. */
  static boolean beyond(Stat st) {
    return !Double.isNaN(st.se()) && st.mean() > st.threshold() * st.se();
  }

  /**
   * The smallest win-rate difference the report counts as a finding: half the +-0.02 the fast mode
   * is sized to resolve. A smaller difference is printed as negligible even when its standard error
   * resolves it: in session 13 Q3's LCB-minus-mean differences of a few thousandths (standard
   * errors of one or two thousandths) were resolved on one CPU and of the other sign on another.
   */
  public static final double MIN_WIN_DIFFERENCE = 0.01;

  /**
   * A win-rate difference positive beyond its t threshold and at least {@link #MIN_WIN_DIFFERENCE}.
   */
  static boolean beyondWin(Hierarchy h) {
    return beyondWin(h.stat());
  }

  /** {@link #beyondWin(Hierarchy)} of a difference's statistic. */
  static boolean beyondWin(Stat st) {
    return beyond(st) && st.mean() >= MIN_WIN_DIFFERENCE;
  }

  /** Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom. */
  private static final double[] T975 = {
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042
  };

  /** The 97.5% quantile of Student's t with {@code df >= 1} degrees of freedom (2.0 beyond 60). */
  static double tQuantile975(int df) {
    if (df <= T975.length) {
      return T975[df - 1];
    }
    return df < 60 ? 2.042 : 2.0;
  }

  /** {@code "two standard errors"} or {@code "4.30 standard errors (t, 2 df)"}. */
  static String thresholdText(Stat d) {
    return d.df() <= 0
        ? "two standard errors"
        : String.format(Locale.ROOT, "%.2f standard errors (t, %d df)", d.threshold(), d.df());
  }

  /** The evaluation index where the mean win rate over runs peaks (the first on ties). */
  public static int bestPoint(PpoPhase.PpoRuns r) {
    return highest(
        java.util.stream.IntStream.range(0, r.points()).mapToObj(r::win).toArray(double[][]::new),
        DemoAnalysis::mean);
  }

  /**
   * The index of the point whose {@code centre} is highest, of a curve given per point (each
   * point's per-unit or per-run values); the first on ties. Every peak the analysis reports comes
   * from here: one reward's (Best-of-n over n, PPO over evaluations) and the pooled curves'.
   */
  private static int highest(
      double[][] curve, java.util.function.ToDoubleFunction<double[]> centre) {
    int bi = 0;
    for (int i = 1; i < curve.length; i++) {
      if (centre.applyAsDouble(curve[i]) > centre.applyAsDouble(curve[bi])) {
        bi = i;
      }
    }
    return bi;
  }

  private static double mean(double[] x) {
    return Arrays.stream(x).average().orElse(Double.NaN);
  }

  /** Every PPO reward but the single model against it, at the final and at the best evaluation. */
  public static List<PpoPaired> ppoPaired(List<PpoPhase.PpoRuns> ppo) {
    List<PpoPaired> out = new ArrayList<>();
    PpoPhase.PpoRuns single =
        ppo.stream()
            .filter(r -> r.reward().method().kind() == EnsembleKind.SINGLE)
            .findFirst()
            .orElse(null);
    if (single == null) {
      return out;
    }
    int last = single.points() - 1;
    int sBest = bestPoint(single);
    List<PpoPaired> own = new ArrayList<>(); // standard errors as measured, before the floor
    for (PpoPhase.PpoRuns r : ppo) {
      if (r == single) {
        continue;
      }
      int rBest = bestPoint(r);
      own.add(
          ownSe(
              r.reward(),
              "final",
              r.iteration(last),
              single.iteration(last),
              paired(r.win(last), single.win(last), r.world()),
              paired(r.gold(last), single.gold(last), r.world())));
      own.add(
          ownSe(
              r.reward(),
              "best",
              r.iteration(rBest),
              single.iteration(sBest),
              paired(r.win(rBest), single.win(sBest), r.world()),
              paired(r.gold(rBest), single.gold(sBest), r.world())));
    }
    java.util.Map<String, double[]> floors = new java.util.HashMap<>(); // at -> {win, gold}
    for (String at : List.of("final", "best")) {
      floors.put(at, new double[] {ppoSeFloor(own, at, false), ppoSeFloor(own, at, true)});
    }
    for (PpoPaired p : own) {
      double[] f = floors.get(p.at());
      out.add(
          new PpoPaired(
              p.reward(),
              p.at(),
              p.iteration(),
              p.singleIteration(),
              floorSe(p.win(), f[0]),
              floorSe(p.gold(), f[1]),
              p.winSeRuns(),
              p.goldSeRuns()));
    }
    return out;
  }

  private static PpoPaired ownSe(
      MethodAgg reward,
      String at,
      int iteration,
      int singleIteration,
      Hierarchy win,
      Hierarchy gold) {
    return new PpoPaired(reward, at, iteration, singleIteration, win, gold, win.se(), gold.se());
  }

  /**
   * The floor {@link #ppoPaired} applies to the differences at {@code at} ({@code "final"} or
   * {@code "best"}), win rate or {@code gold}: the root mean square of their own standard errors
   * (over runs, equal runs each; NaN when none has one). Also the floor of other PPO comparisons of
   * the same runs.
   */
  public static double ppoSeFloor(List<PpoPaired> paired, String at, boolean gold) {
    double sum = 0;
    int n = 0;
    for (PpoPaired p : paired) {
      double se = gold ? p.goldSeRuns() : p.winSeRuns();
      if (p.at().equals(at) && !Double.isNaN(se)) {
        sum += se * se;
        n++;
      }
    }
    return n == 0 ? Double.NaN : Math.sqrt(sum / n);
  }

  /** {@code h} with its standard error raised to {@code floor} (unchanged when either is NaN). */
  public static Hierarchy floorSe(Hierarchy h, double floor) {
    if (Double.isNaN(h.se()) || Double.isNaN(floor) || h.se() >= floor) {
      return h;
    }
    return new Hierarchy(
        h.mean(), floor, h.worlds(), h.units(), h.betweenSd(), h.withinSd(), h.seUnits());
  }

  /** For every PPO reward: the drop from its win-rate peak to the end, paired by run. */
  public static List<OverOptimisation> overOptimisation(List<PpoPhase.PpoRuns> ppo) {
    List<OverOptimisation> out = new ArrayList<>();
    for (PpoPhase.PpoRuns r : ppo) {
      int last = r.points() - 1;
      int b = bestPoint(r);
      out.add(
          new OverOptimisation(
              r.reward(),
              r.iteration(b),
              r.iteration(last),
              paired(r.win(b), r.win(last), r.world()),
              paired(r.gold(b), r.gold(last), r.world()),
              paired(r.proxy(last), r.proxy(b), r.world())));
    }
    return out;
  }

  /**
   * At the largest n, every reward against the single model (mean aggregation) and every ensemble
   * against its own members used alone, paired by unit (same world and reward-model seed).
   */
  public static List<Paired> paired(BestOfNResults bon) {
    int last = bon.last();
    DemoMethod single = bon.single();
    AggregationConfig mean = AggregationConfig.mean();
    List<Paired> out = new ArrayList<>();
    for (DemoMethod mt : bon.methods()) {
      BestOfNResults.Members alone = bon.members().get(mt);
      for (AggregationConfig a : DemoMethod.AGGREGATIONS) {
        double[] w = bon.win(mt, a, last), g = bon.gold(mt, a, last);
        double[] ws = bon.win(single, mean, last), gs = bon.gold(single, mean, last);
        double[] wa = BestOfNResults.column(alone.win(), last);
        double[] ga = BestOfNResults.column(alone.gold(), last);
        if (mt.kind() != EnsembleKind.SINGLE) {
          out.add(
              new Paired(
                  mt.with(a), Versus.SINGLE, bon.ns()[last], bon.diff(w, ws), bon.diff(g, gs)));
        }
        if (mt.ensemble()) {
          out.add(
              new Paired(
                  mt.with(a),
                  Versus.OWN_MEMBERS,
                  bon.ns()[last],
                  bon.diff(w, wa),
                  bon.diff(g, ga)));
        }
      }
    }
    return out;
  }

  /**
   * How a paired difference reads: positive or negative only beyond {@link Stat#threshold} standard
   * errors (the 95% t quantile for its degrees of freedom, at least two).
   */
  public static String verdict(Stat d) {
    if (Double.isNaN(d.se())) {
      return d.mean() > 0
          ? "positive (one seed: no standard error, so not a conclusion)"
          : "not positive (one seed: no standard error)";
    }
    double c = d.threshold();
    if (d.mean() > c * d.se()) {
      return "positive by more than " + thresholdText(d);
    }
    if (d.mean() < -c * d.se()) {
      return "negative by more than " + thresholdText(d);
    }
    return "within " + thresholdText(d) + " of zero";
  }

  /**
   * {@link #verdict} of a win-rate difference, which also says when a resolved difference is
   * smaller than {@link #MIN_WIN_DIFFERENCE}: negligible, not a finding.
   */
  public static String winVerdict(Stat d) {
    String v = verdict(d);
    boolean resolved = !Double.isNaN(d.se()) && Math.abs(d.mean()) > d.threshold() * d.se();
    if (resolved && Math.abs(d.mean()) < MIN_WIN_DIFFERENCE) {
      return String.format(
          Locale.ROOT, "%s, but smaller than %.2f in win rate: negligible", v, MIN_WIN_DIFFERENCE);
    }
    return v;
  }

  /**
   * The index of the n with the highest mean win rate of {@code m} (mean aggregation); the first on
   * ties.
   */
  public static int peak(BestOfNResults bon, DemoMethod m) {
    AggregationConfig mean = AggregationConfig.mean();
    return highest(
        java.util.stream.IntStream.range(0, bon.ns().length)
            .mapToObj(ni -> bon.win(m, mean, ni))
            .toArray(double[][]::new),
        x -> bon.stat(x).mean());
  }

  /** The answers to Q1-Q3 in words (markdown). */
  public static String answers(BestOfNResults bon, List<PpoPhase.PpoRuns> ppo) {
    return answers(bon, ppo, new ArrayList<>());
  }

  /**
   * {@link #answers(BestOfNResults, List)}, adding each question's comparisons to {@code families}
   * ({@link Comparisons}: Holm's correction within each).
   */
  static String answers(
      BestOfNResults bon, List<PpoPhase.PpoRuns> ppo, List<Comparisons> families) {
    Comparisons pooledFamily = new Comparisons("Over-optimisation (the paper's rewards pooled)");
    Comparisons q1 = new Comparisons("Q1 (Best-of-n)");
    Comparisons q1Ppo = new Comparisons("Q1 (PPO)");
    Comparisons q2 = new Comparisons("Q2");
    Comparisons q3 = new Comparisons("Q3");
    StringBuilder a = new StringBuilder(pooledAnswer(pooled(bon, ppo), pooledFamily));
    int last = bon.last();
    int[] ns = bon.ns();
    int nMax = ns[last];
    AggregationConfig mean = AggregationConfig.mean();
    DemoMethod single = bon.single();
    // Q1: each ensemble (mean) vs single.
    a.append(String.format(Locale.ROOT, "**Q1 (Best-of-n, n = %d).** ", nMax));
    MethodAgg best = null;
    double bestWin = Double.NEGATIVE_INFINITY;
    DemoMethod lora = null;
    for (DemoMethod mt : bon.methods()) {
      if (!mt.ensemble() || mt.leverRow()) { // lever rows: their own section
        continue;
      }
      if (mt.kind() == EnsembleKind.LORA) {
        lora = mt;
      }
      for (AggregationConfig ag : DemoMethod.AGGREGATIONS) {
        double w = bon.stat(bon.win(mt, ag, last)).mean();
        if (w > bestWin) {
          bestWin = w;
          best = mt.with(ag);
        }
      }
      Stat d = bon.diff(bon.win(mt, mean, last), bon.win(single, mean, last)).stat();
      a.append(
          String.format(
              Locale.ROOT,
              "%s (mean) vs single: win-rate difference %s, %s. ",
              mt.name(),
              d.fmt(),
              q1.winVerdict(mt.name() + " (mean) vs single", d)));
    }
    if (lora != null) {
      Stat ctl =
          bon.diff(bon.win(lora, mean, last), bon.win(bon.find(EnsembleKind.LORA, 1), mean, last))
              .stat();
      a.append(
          String.format(
              Locale.ROOT,
              "The LoRA ensemble vs its K = 1 control (same data, so the effect of ensembling alone): %s, %s. ",
              ctl.fmt(),
              q1.winVerdict(lora.name() + " vs its K = 1 control", ctl)));
    }
    for (DemoMethod mt : bon.methods()) {
      if (!mt.warm()) {
        continue;
      }
      DemoMethod src =
          bon.methods().stream()
              .filter(m -> m.name().equals(mt.warmSource()))
              .findFirst()
              .orElse(null);
      Stat vs = bon.diff(bon.win(mt, mean, last), bon.win(single, mean, last)).stat();
      a.append(
          String.format(
              Locale.ROOT,
              "%s (weight average, one model's inference cost) vs single: %s, %s",
              mt.name(),
              vs.fmt(),
              q1.winVerdict(mt.name() + " vs single", vs)));
      if (src != null) {
        Stat own = bon.diff(bon.win(mt, mean, last), bon.win(src, mean, last)).stat();
        a.append(
            String.format(
                Locale.ROOT,
                "; vs %s (mean): %s, %s",
                src.name(),
                own.fmt(),
                q1.winVerdict(mt.name() + " vs " + src.name(), own)));
      }
      a.append(". ");
    }
    a.append("Peak of the win-rate curve over n (mean aggregation): ");
    boolean overOptimised = false;
    for (DemoMethod mt : bon.methods()) {
      if (mt.leverRow()) {
        continue;
      }
      int bi = peak(bon, mt);
      a.append(
          String.format(
              Locale.ROOT,
              "%s %s at n = %d; ",
              mt.name(),
              bon.stat(bon.win(mt, mean, bi)).fmt(),
              ns[bi]));
      overOptimised |=
          bi < last && beyondWin(bon.diff(bon.win(mt, mean, bi), bon.win(mt, mean, last)));
    }
    a.setLength(a.length() - 2);
    a.append(
        overOptimised
            ? ". Where the win rate at the peak exceeds the one at the largest n by more than the t threshold,"
                + " choosing harder against the proxy lowered the gold win rate: over-optimisation.\n\n"
            : ".\n\n");
    if (!ppo.isEmpty()) {
      a.append(ppoAnswer(ppo, q1Ppo));
    }
    a.append(
        String.format(
            Locale.ROOT,
            "**Q2.** Highest Best-of-n win rate at n = %d among the ensembles: %s (%.3f; single: %s). ",
            nMax,
            best == null ? "-" : best.toString(),
            bestWin,
            bon.stat(bon.win(single, mean, last)).fmt()));
    MethodAgg second = null;
    double secondWin = Double.NEGATIVE_INFINITY;
    for (DemoMethod mt : bon.methods()) {
      if (!mt.ensemble() || mt.leverRow() || best == null || mt.equals(best.method())) {
        continue; // the paper's ensembles only, as for the best
      }
      for (AggregationConfig ag : DemoMethod.AGGREGATIONS) {
        double w = bon.stat(bon.win(mt, ag, last)).mean();
        if (w > secondWin) {
          secondWin = w;
          second = mt.with(ag);
        }
      }
    }
    if (second != null) {
      Stat d =
          bon.diff(
                  bon.win(best.method(), best.agg(), last),
                  bon.win(second.method(), second.agg(), last))
              .stat();
      a.append(
          String.format(
              Locale.ROOT,
              "Against the best of another ensemble, %s: %s, %s%s.\n\n",
              second,
              d.fmt(),
              q2.winVerdict(best + " vs " + second, d),
              beyondWin(d) ? "" : ", so no ensemble is shown best"));
    } else {
      a.append("\n\n");
    }
    a.append("**Q3.** LCB minus mean (win rate, paired by unit): ");
    for (DemoMethod mt : bon.methods()) {
      if (!mt.ensemble() || mt.leverRow()) {
        continue;
      }
      for (double beta : new double[] {0.1, 0.5}) {
        Stat d =
            bon.diff(bon.win(mt, AggregationConfig.lcb(beta), last), bon.win(mt, mean, last))
                .stat();
        a.append(
            String.format(
                Locale.ROOT,
                "%s LCB %.1f: %s (%s); ",
                mt.name(),
                beta,
                d.fmt(),
                q3.winVerdict(
                    String.format(Locale.ROOT, "%s LCB %.1f - mean", mt.name(), beta), d)));
      }
    }
    a.setLength(a.length() - 2);
    a.append(".\n\n");
    families.add(pooledFamily);
    families.add(q1);
    if (!ppo.isEmpty()) {
      families.add(q1Ppo);
    }
    families.add(q2);
    families.add(q3);
    a.append(multipleComparisons(families));
    a.append(
        bon.worlds() >= 2
            ? String.format(
                Locale.ROOT,
                "A difference counts as real here only when it exceeds the two-sided 95%% Student t quantile"
                    + " for %d degrees of freedom (%.2f) times its standard error over the %d worlds (two-stage: each"
                    + " world's mean over its reward-model seeds, then the spread of those means; never fewer than"
                    + " two standard errors), so a conclusion printed here allows for draws of the world and of the"
                    + " SFT policy, which is what a different CPU's float rounding changes. Two standard errors"
                    + " over 3 worlds were not enough: two small runs on disjoint world seeds disagreed on most"
                    + " such conclusions. A win-rate difference below %.2f is called negligible even when resolved:"
                    + " differences of a few thousandths were resolved with opposite signs on two CPUs. The report"
                    + " makes dozens of comparisons, so at 95%% each a few can still pass by chance (the"
                    + " multiple-comparisons paragraph says which survive a correction): trust a conclusion that"
                    + " a run on other world seeds (--world-seed) repeats.%n",
                bon.worlds() - 1,
                tQuantile975(bon.worlds() - 1),
                bon.worlds(),
                MIN_WIN_DIFFERENCE)
            : "One world: the standard errors cover reward-model seeds only and understate the uncertainty of"
                + " a new world or SFT policy (a different CPU trains a different one); run more worlds for"
                + " conclusions.\n");
    return a.toString();
  }

  /**
   * The paragraph on multiple comparisons: per question, the verdicts that Holm's correction keeps.
   */
  static String multipleComparisons(List<Comparisons> families) {
    StringBuilder b =
        new StringBuilder(
            "**Multiple comparisons.** Each verdict above is a 95% test of its own, and a question"
                + " that makes several can pass some by chance. Corrected with Holm's step-down"
                + " procedure within each question (family-wise error 5%; two-sided Student t"
                + " p-values with each difference's degrees of freedom), the differences from zero"
                + " that remain are:\n\n");
    for (Comparisons f : families) {
      b.append("- ").append(f.summary()).append('\n');
    }
    return b.append('\n').toString();
  }

  /** The paragraph on {@link Pooled} over-optimisation, its tests recorded in {@code family}. */
  static String pooledAnswer(List<Pooled> pooled, Comparisons family) {
    StringBuilder a =
        new StringBuilder(
            String.format(
                Locale.ROOT,
                "**Over-optimisation, the paper's rewards pooled** (%s, averaged per %s: each"
                    + " reward's own drop below passes its threshold in some runs and not in others,"
                    + " with the CPU; their average has a fraction of the noise). ",
                pooled.get(0).rewards().stream()
                    .map(r -> r.method().name())
                    .collect(java.util.stream.Collectors.joining(", ")),
                pooled.size() > 1 ? "unit in Best-of-n and per run in PPO" : "unit"));
    for (Pooled p : pooled) {
      if (p.peak().equals(p.end())) {
        a.append(
            String.format(
                Locale.ROOT, "%s: the pooled win rate is highest at %s. ", p.setting(), p.end()));
        continue;
      }
      a.append(
          String.format(
              Locale.ROOT,
              "%s: the win rate falls from %s (the pooled curve's peak) to %s by %s (%s)",
              p.setting(),
              p.peak(),
              p.end(),
              p.winDrop().stat().fmt(),
              family.winVerdict(p.setting() + " pooled win-rate drop", p.winDrop().stat())));
      if (p.proxyRise() != null) {
        a.append(
            String.format(
                Locale.ROOT,
                " while the proxy rises by %s (%s)",
                p.proxyRise().stat().fmt(),
                family.verdict(p.setting() + " pooled proxy rise", p.proxyRise().stat())));
      }
      a.append(p.shown() ? ": over-optimisation. " : ". ");
    }
    return a.append(
            "The peak is chosen from the same numbers, which favours a drop by about the points'"
                + " noise; the threshold asks for several times that.\n\n")
        .toString();
  }

  /** Q1 for PPO: over-optimisation of each reward, and each ensemble against the single model. */
  static String ppoAnswer(List<PpoPhase.PpoRuns> ppo, Comparisons family) {
    StringBuilder a = new StringBuilder("**Q1 (PPO).** ");
    int runs = ppo.get(0).runs().size();
    if (runs < 2) {
      a.append(
          "One PPO run per reward, so no standard errors and no conclusions; final win rate vs SFT: ");
      for (PpoPhase.PpoRuns r : ppo) {
        int last = r.points() - 1;
        a.append(
            String.format(
                Locale.ROOT,
                "%s %.3f (gold %.3f); ",
                r.reward(),
                mean(r.win(last)),
                mean(r.gold(last))));
      }
      a.setLength(a.length() - 2);
      return a.append(".\n\n").toString();
    }
    a.append(
        String.format(
            Locale.ROOT,
            "%d PPO runs per reward (run j: its world's SFT policy, that unit's reward models, PPO seed j). ",
            runs));
    for (OverOptimisation o : overOptimisation(ppo)) {
      if (o.peakIteration() == o.finalIteration()) {
        a.append(
            String.format(
                Locale.ROOT, "%s: the win rate peaks at the last evaluation. ", o.reward()));
        continue;
      }
      a.append(
          String.format(
              Locale.ROOT,
              "%s: win rate from its peak at iteration %d to iteration %d falls by %s (%s), gold by %s,"
                  + " while the proxy rises by %s (%s)%s. ",
              o.reward(),
              o.peakIteration(),
              o.finalIteration(),
              o.winDrop().stat().fmt(),
              family.winVerdict(o.reward() + " win-rate drop from its peak", o.winDrop().stat()),
              o.goldDrop().stat().fmt(),
              o.proxyRise().stat().fmt(),
              family.verdict(o.reward() + " proxy rise", o.proxyRise().stat()),
              o.shown() ? ": over-optimisation" : ""));
    }
    a.append("Against the single model, paired by run: ");
    for (PpoPaired p : ppoPaired(ppo)) {
      a.append(
          String.format(
              Locale.ROOT,
              "%s at %s (iteration %d vs %d): win rate %s, %s; ",
              p.reward(),
              p.at(),
              p.iteration(),
              p.singleIteration(),
              p.win().stat().fmt(),
              family.winVerdict(
                  p.reward() + " vs single at the " + p.at() + " point", p.win().stat())));
    }
    a.setLength(a.length() - 2);
    a.append(
        ". The best evaluation is chosen from the same runs (the peak of the mean curve), so the"
            + " differences at the best point lean towards the noisier reward.\n\n");
    return a.toString();
  }
}
