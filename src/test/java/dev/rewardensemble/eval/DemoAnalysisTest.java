package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.ensemble.AggregationConfig;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The demo's analysis on hand-made per-seed numbers, checked against values computed by hand. */
class DemoAnalysisTest {
  private static final AggregationConfig MEAN = AggregationConfig.mean();
  private static final int[] NS = {1, 4};
  private static final int SEEDS = 3;

  /** Every reward at win 0.5, gold 0 for every seed and n; members alone the same. */
  private static BestOfNResults flat() {
    List<DemoMethod> methods = DemoMethod.all(2);
    Map<MethodAgg, BestOfNResults.Curves> curves = new LinkedHashMap<>();
    Map<DemoMethod, BestOfNResults.Members> members = new LinkedHashMap<>();
    for (DemoMethod m : methods) {
      for (AggregationConfig a : DemoMethod.AGGREGATIONS) {
        curves.put(
            m.with(a),
            new BestOfNResults.Curves(fill(0), fill(0), fill(0.5), new double[] {0.6, 0.6, 0.6}));
      }
      members.put(m, new BestOfNResults.Members(fill(0.5), fill(0), new double[] {0.3, 0.3, 0.3}));
    }
    return new BestOfNResults(methods, NS, SEEDS, curves, members);
  }

  private static double[][] fill(double v) {
    double[][] a = new double[SEEDS][NS.length];
    for (double[] row : a) {
      java.util.Arrays.fill(row, v);
    }
    return a;
  }

  private static DemoMethod method(BestOfNResults bon, String name) {
    return bon.methods().stream().filter(m -> m.name().equals(name)).findFirst().orElseThrow();
  }

  /** Sets the win rate per seed of {@code name} with {@code a} at n index {@code ni}. */
  private static void win(
      BestOfNResults bon, String name, AggregationConfig a, int ni, double... perSeed) {
    double[][] w = bon.of(method(bon, name), a).win();
    for (int s = 0; s < SEEDS; s++) {
      w[s][ni] = perSeed[s];
    }
  }

  @Test
  void standardErrorIsTheSampleStdOverSqrtN() {
    DemoAnalysis.Stat s = DemoAnalysis.Stat.of(new double[] {1, 2, 3, 4});
    assertEquals(2.5, s.mean(), 1e-15);
    // sample variance 5/3, divided by n = 4, square root
    assertEquals(Math.sqrt(5.0 / 12.0), s.se(), 1e-15);
    assertTrue(
        Double.isNaN(DemoAnalysis.Stat.of(new double[] {0.7}).se()), "one seed: no standard error");
    assertEquals("0.700", DemoAnalysis.Stat.of(new double[] {0.7}).fmt());
    assertEquals("2.500 ± 0.645", s.fmt());
  }

  @Test
  void pairedDifferenceAgainstSingleAndOwnMembersByHand() {
    BestOfNResults bon = flat();
    win(bon, "single", MEAN, 1, 0.50, 0.60, 0.70);
    win(bon, "linear-2", MEAN, 1, 0.60, 0.80, 0.75);
    double[][] alone = bon.members().get(method(bon, "linear-2")).win();
    alone[0][1] = 0.55;
    alone[1][1] = 0.70;
    alone[2][1] = 0.75;

    Map<String, DemoAnalysis.Paired> rows = new LinkedHashMap<>();
    for (DemoAnalysis.Paired p : DemoAnalysis.paired(bon)) {
      rows.put(p.reward() + "|" + p.versus(), p);
    }
    // differences 0.10, 0.20, 0.05: mean 0.35/3; squared deviations 1/3600 + 1/144 + 1/225 = 7/600,
    // divided by (n - 1) n = 6: 7/3600, so se = sqrt(7)/60
    DemoAnalysis.Paired vsSingle = rows.get("linear-2 mean|single");
    assertEquals(0.35 / 3, vsSingle.win().mean(), 1e-12);
    assertEquals(Math.sqrt(7) / 60, vsSingle.win().se(), 1e-12);
    assertEquals(4, vsSingle.n());
    // against its own members alone: 0.05, 0.10, 0.00: mean 0.05, squared deviations 0.005, se =
    // sqrt(0.005 / 6)
    DemoAnalysis.Paired vsMembers = rows.get("linear-2 mean|own members alone");
    assertEquals(0.05, vsMembers.win().mean(), 1e-12);
    assertEquals(Math.sqrt(0.005 / 6), vsMembers.win().se(), 1e-12);
    // gold is 0 everywhere: no difference, no spread
    assertEquals(0, vsSingle.gold().mean(), 0);
    assertEquals(0, vsSingle.gold().se(), 0);

    // the single model is not compared with itself; K = 1 methods have no "own members" row
    assertFalse(
        rows.keySet().stream().anyMatch(k -> k.startsWith("single ")), rows.keySet().toString());
    assertFalse(rows.containsKey("lora-1-control mean|own members alone"));
    assertTrue(rows.containsKey("lora-1-control mean|single"));
    // 6 methods (4 + the two WARM averages) x 3 aggregations against single, 3 ensembles x 3
    // aggregations against their members
    assertTrue(rows.containsKey("warm-lora-2 mean|single"));
    assertFalse(rows.containsKey("warm-lora-2 mean|own members alone"));
    assertEquals(6 * 3 + 3 * 3, rows.size());
  }

  @Test
  void aWarmAverageIsComparedWithTheSingleModelAndWithItsOwnEnsemble() {
    BestOfNResults bon = flat();
    win(bon, "single", MEAN, 1, 0.50, 0.60, 0.70);
    win(bon, "lora-2", MEAN, 1, 0.60, 0.80, 0.75);
    win(bon, "warm-lora-2", MEAN, 1, 0.60, 0.70, 0.80);
    String a = DemoAnalysis.answers(bon, List.of());
    // vs single: 0.10, 0.10, 0.10 (no spread); vs lora-2: 0.00, -0.10, 0.05, mean -0.0167, squared
    // deviations 0.0117, se = sqrt(0.0117 / 6) = 0.044
    assertTrue(
        a.contains(
            "warm-lora-2 (weight average, one model's inference cost) vs single: 0.100 ± 0.000,"
                + " positive by more than 4.30 standard errors (t, 2 df); vs lora-2 (mean): -0.017 ±"
                + " 0.044, within 4.30 standard errors (t, 2 df) of zero."),
        a);
    assertTrue(a.contains("warm-independent-2 (weight average"), a);
  }

  @Test
  void conclusionFlipsWhenTheNumbersFlip() {
    // differences 0.11, 0.10, 0.11: mean 0.107, squared deviations 2/30000 over 2, se = 0.0033;
    // with 3 seeds (2 degrees of freedom) a difference counts beyond 4.30 standard errors
    BestOfNResults up = flat();
    win(up, "single", MEAN, 1, 0.50, 0.60, 0.70);
    win(up, "linear-2", MEAN, 1, 0.61, 0.70, 0.81);
    String a = DemoAnalysis.answers(up, List.of());
    assertTrue(
        a.contains(
            "linear-2 (mean) vs single: win-rate difference 0.107 ± 0.003, positive by more than 4.30"
                + " standard errors (t, 2 df)."),
        a);

    BestOfNResults down = flat();
    win(down, "single", MEAN, 1, 0.61, 0.70, 0.81);
    win(down, "linear-2", MEAN, 1, 0.50, 0.60, 0.70);
    String b = DemoAnalysis.answers(down, List.of());
    assertTrue(
        b.contains(
            "linear-2 (mean) vs single: win-rate difference -0.107 ± 0.003, negative by more than 4.30"
                + " standard errors (t, 2 df)."),
        b);

    // 0.117 ± 0.044 is beyond two standard errors but not beyond t(2 df) = 4.30 of them
    BestOfNResults two = flat();
    win(two, "single", MEAN, 1, 0.50, 0.60, 0.70);
    win(two, "linear-2", MEAN, 1, 0.60, 0.80, 0.75);
    String c = DemoAnalysis.answers(two, List.of());
    assertTrue(
        c.contains(
            "linear-2 (mean) vs single: win-rate difference 0.117 ± 0.044, within 4.30 standard errors"
                + " (t, 2 df) of zero."),
        c);
    assertEquals(4.303, DemoAnalysis.Stat.of(new double[] {1, 2, 3}).threshold(), 0);
    assertEquals(2.776, DemoAnalysis.Stat.of(new double[] {1, 2, 3, 4, 5}).threshold(), 0);
    assertEquals(2, new DemoAnalysis.Stat(0.1, 0.01).threshold(), 0, "unknown df: two");
    assertEquals(2, DemoAnalysis.Stat.of(new double[100]).threshold(), 0, "never below two");
  }

  @Test
  void bestEnsembleAndLcbAnswerFollowTheNumbers() {
    BestOfNResults bon = flat();
    AggregationConfig lcb05 = AggregationConfig.lcb(0.5);
    win(bon, "independent-2", lcb05, 1, 0.80, 0.82, 0.84);
    String a = DemoAnalysis.answers(bon, List.of());
    assertTrue(
        a.contains("among the ensembles: independent-2 lcb(0.5) (0.820; single: 0.500 ± 0.000)"),
        a);
    // LCB 0.5 minus mean: 0.30, 0.32, 0.34: mean 0.32, se = sqrt(0.0008 / 6)
    assertTrue(
        a.contains(
            "independent-2 LCB 0.5: 0.320 ± 0.012 (positive by more than 4.30 standard errors (t, 2"
                + " df))"),
        a);

    win(bon, "lora-2", lcb05, 1, 0.90, 0.91, 0.92);
    String b = DemoAnalysis.answers(bon, List.of());
    assertTrue(b.contains("among the ensembles: lora-2 lcb(0.5) (0.910;"), b);
  }

  @Test
  void peakBelowTheLargestNIsCalledOverOptimisation() {
    BestOfNResults bon = flat();
    for (DemoMethod m : bon.methods()) {
      win(bon, m.name(), MEAN, 1, 0.6, 0.6, 0.6);
    }
    assertEquals(1, DemoAnalysis.peak(bon, method(bon, "single")));
    assertFalse(DemoAnalysis.answers(bon, List.of()).contains("over-optimisation"));

    win(bon, "single", MEAN, 0, 0.7, 0.7, 0.7);
    assertEquals(0, DemoAnalysis.peak(bon, method(bon, "single")));
    String a = DemoAnalysis.answers(bon, List.of());
    assertTrue(a.contains("single 0.700 ± 0.000 at n = 1;"), a);
    assertTrue(a.contains("over-optimisation"), a);
  }

  /**
   * The paper's rewards pooled: per unit the mean of single, independent, linear and LoRA (mean
   * aggregation) at the pooled peak minus at the largest n; the K = 1 control, the WARM averages
   * and other aggregations are left out. In PPO per run, with the proxy's rise.
   */
  @Test
  void overOptimisationIsTestedOnThePaperRewardsPooled() {
    BestOfNResults bon = flat();
    win(bon, "single", MEAN, 0, 0.60, 0.62, 0.64);
    win(bon, "single", MEAN, 1, 0.50, 0.50, 0.52);
    win(bon, "independent-2", MEAN, 0, 0.6, 0.6, 0.6);
    win(bon, "independent-2", MEAN, 1, 0.5, 0.5, 0.5);
    win(bon, "lora-1-control", MEAN, 0, 0.9, 0.9, 0.9); // not pooled
    win(bon, "warm-independent-2", MEAN, 0, 0.9, 0.9, 0.9); // not pooled
    win(bon, "linear-2", AggregationConfig.lcb(0.5), 0, 0.9, 0.9, 0.9); // not pooled
    MethodAgg single = method(bon, "single").with(MEAN);
    MethodAgg lin = method(bon, "linear-2").with(MEAN);
    MethodAgg linLcb = method(bon, "linear-2").with(AggregationConfig.lcb(0.5));
    PpoPhase.PpoRuns s = risesThenFalls(single);
    PpoPhase.PpoRuns l = risesToTheEnd(lin);
    PpoPhase.PpoRuns lcb =
        new PpoPhase.PpoRuns(
            linLcb,
            List.of(
                run(linLcb, new double[] {0.9, 0.1, 0.1}, new double[] {0, 9, 9}),
                run(linLcb, new double[] {0.9, 0.1, 0.1}, new double[] {0, 9, 9}),
                run(linLcb, new double[] {0.9, 0.1, 0.1}, new double[] {0, 9, 9})),
            new int[] {0, 1, 2});
    List<DemoAnalysis.Pooled> pooled = DemoAnalysis.pooled(bon, List.of(s, l, lcb));
    assertEquals(2, pooled.size());
    DemoAnalysis.Pooled b = pooled.get(0);
    assertEquals(4, b.rewards().size());
    assertEquals("n = 1", b.peak());
    assertEquals("n = 4", b.end());
    // per unit (0.60 + 0.6 + 0.5 + 0.5) / 4 - (0.50 + 0.5 + 0.5 + 0.5) / 4 = 0.05, then 0.055,
    // 0.055
    assertEquals(0.16 / 3, b.winDrop().mean(), 1e-12);
    assertEquals(Math.sqrt(0.5e-4 / 6) / Math.sqrt(3), b.winDrop().se(), 1e-12);
    assertTrue(b.shown());
    assertEquals(null, b.proxyRise());
    DemoAnalysis.Pooled p = pooled.get(1);
    assertEquals(List.of(single, lin), p.rewards());
    assertEquals("iteration 10", p.peak()); // pooled 0.655 at 10, 0.635 at 20
    assertEquals("iteration 20", p.end());
    // per run (0.70 + 0.60) / 2 - (0.55 + 0.70) / 2 = 0.025, then 0.0, 0.035
    assertEquals(0.02, p.winDrop().mean(), 1e-12);
    assertEquals(Math.sqrt(3.25e-4) / Math.sqrt(3), p.winDrop().se(), 1e-12);
    assertEquals(3.1 / 3, p.proxyRise().mean(), 1e-12);
    assertFalse(p.shown()); // 0.020 +- 0.010: within 4.30 standard errors
    String a = DemoAnalysis.answers(bon, List.of(s, l, lcb));
    assertTrue(
        a.startsWith(
            "**Over-optimisation, the paper's rewards pooled** (single, independent-2, linear-2,"
                + " lora-2, averaged per unit in Best-of-n and per run in PPO"),
        a);
    assertTrue(
        a.contains(
            "Best-of-n: the win rate falls from n = 1 (the pooled curve's peak) to n = 4 by 0.053 ±"
                + " 0.002 (positive by more than 4.30 standard errors (t, 2 df)): over-optimisation."),
        a);
    assertTrue(
        a.contains(
            "PPO: the win rate falls from iteration 10 (the pooled curve's peak) to iteration 20 by"
                + " 0.020 ± 0.010 (within 4.30 standard errors (t, 2 df) of zero) while the proxy"
                + " rises by 1.033 ± 0.033 (positive by more than 4.30 standard errors (t, 2 df))."),
        a);
    assertTrue(
        a.contains("- Over-optimisation (the paper's rewards pooled), 3 tests: Best-of-n pooled"),
        a);

    // a reward's runs in other worlds than the others' are not pooled silently
    PpoPhase.PpoRuns shifted = new PpoPhase.PpoRuns(lin, l.runs(), new int[] {2, 1, 0});
    assertThrows(
        IllegalArgumentException.class, () -> DemoAnalysis.pooled(bon, List.of(s, shifted)));
    // without PPO, Best-of-n alone
    assertEquals(1, DemoAnalysis.pooled(bon, List.of()).size());
  }

  @Test
  void aResolvedWinRateDifferenceBelowTheMinimumIsNegligible() {
    // -0.003 +- 0.0005 with 3 df: beyond 3.18 standard errors, but a few thousandths
    DemoAnalysis.Stat tiny = new DemoAnalysis.Stat(-0.003, 0.0005, 3);
    assertEquals(
        DemoAnalysis.verdict(tiny) + ", but smaller than 0.01 in win rate: negligible",
        DemoAnalysis.winVerdict(tiny));
    assertTrue(DemoAnalysis.verdict(tiny).startsWith("negative by more than"));
    DemoAnalysis.Stat real = new DemoAnalysis.Stat(0.05, 0.01, 3);
    assertEquals(DemoAnalysis.verdict(real), DemoAnalysis.winVerdict(real));
    DemoAnalysis.Stat unresolved = new DemoAnalysis.Stat(0.005, 0.01, 3);
    assertEquals(DemoAnalysis.verdict(unresolved), DemoAnalysis.winVerdict(unresolved));
    assertTrue(DemoAnalysis.winVerdict(unresolved).startsWith("within"));
  }

  @Test
  void oneSeedIsNeverAConclusion() {
    assertEquals(
        "positive (one seed: no standard error, so not a conclusion)",
        DemoAnalysis.verdict(DemoAnalysis.Stat.of(new double[] {0.2})));
    assertEquals(
        "not positive (one seed: no standard error)",
        DemoAnalysis.verdict(DemoAnalysis.Stat.of(new double[] {-0.2})));
  }

  @Test
  void hierarchyIsTwoStageOverWorldsWithBetweenAndWithinPartsByHand() {
    // worlds 7: {1, 3}, 8: {4, 6}, 9: {8, 10}, units interleaved to show that labels, not
    // positions,
    // group them
    double[] x = {1, 4, 8, 3, 6, 10};
    int[] world = {7, 8, 9, 7, 8, 9};
    DemoAnalysis.Hierarchy h = DemoAnalysis.hierarchy(x, world);
    // world means 2, 5, 9: mean 16/3; their sample variance (121/9 + 1/9 + 121/9) / 2 = 37/3,
    // divided by 3 worlds: se = sqrt(37/9)
    assertEquals(16.0 / 3, h.mean(), 1e-12);
    assertEquals(Math.sqrt(37.0 / 9), h.se(), 1e-12);
    assertEquals(3, h.worlds());
    assertEquals(6, h.units());
    assertTrue(h.hierarchical());
    // within: squared deviations 1 + 1 in each world = 6 over 3 degrees of freedom: variance 2;
    // between: 37/3 - 2 / 2 (two units per world) = 34/3
    assertEquals(Math.sqrt(2), h.withinSd(), 1e-12);
    assertEquals(Math.sqrt(34.0 / 3), h.betweenSd(), 1e-12);
    // the same six values as if independent: mean 16/3, squared deviations 166/3, sample variance
    // 166/15, over 6 units
    assertEquals(Math.sqrt(166.0 / 15 / 6), h.seUnits(), 1e-12);
    assertTrue(h.se() > h.seUnits(), "a world effect makes the independent-units error too small");
    // worlds of 2 seeds for a target standard error: (34/3 + 2/2) / target^2 = 37/3 / target^2
    assertEquals(13, DemoAnalysis.worldsFor(h, 2, 1.0));
    assertEquals(4, DemoAnalysis.worldsFor(h, 2, 2.0));
    // more seeds per world only shrink the within part: (34/3 + 2/8) / 1 = 11.58
    assertEquals(12, DemoAnalysis.worldsFor(h, 8, 1.0));

    // the between part is clamped at 0 when the world means vary less than their seeds predict,
    // and the standard error is then the one the seeds' own spread implies, not the world means'
    // (equal here: their spread alone would give 0, and any difference would look resolved):
    // within variance 2, half of it per world mean of 2 seeds, over 2 worlds: sqrt(2 / 2 / 2)
    DemoAnalysis.Hierarchy flatWorlds =
        DemoAnalysis.hierarchy(new double[] {0, 2, 2, 0}, new int[] {0, 0, 1, 1});
    assertEquals(0, flatWorlds.betweenSd(), 0);
    assertEquals(Math.sqrt(0.5), flatWorlds.se(), 1e-12);
    assertEquals(Math.sqrt(2), flatWorlds.withinSd(), 1e-12);

    // one world: the standard error over its seeds, flagged as not hierarchical
    DemoAnalysis.Hierarchy one = DemoAnalysis.hierarchy(new double[] {1, 2, 3, 4}, new int[4]);
    assertFalse(one.hierarchical());
    assertEquals(-1, DemoAnalysis.worldsFor(one, 2, 0.01), "no between part: no estimate");
    assertEquals(Math.sqrt(5.0 / 12.0), one.se(), 1e-15);
    assertTrue(Double.isNaN(one.betweenSd()));
    // one unit per world: no within part, the world means are the units
    DemoAnalysis.Hierarchy single =
        DemoAnalysis.hierarchy(new double[] {1, 2, 3, 4}, new int[] {0, 1, 2, 3});
    assertEquals(Math.sqrt(5.0 / 12.0), single.se(), 1e-15);
    assertTrue(Double.isNaN(single.withinSd()));

    // paired: differences first, then the hierarchy
    DemoAnalysis.Hierarchy d = DemoAnalysis.paired(new double[] {2, 5, 9, 4, 7, 11}, x, world);
    assertEquals(1, d.mean(), 1e-12);
    assertEquals(0, d.se(), 1e-12);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> DemoAnalysis.hierarchy(new double[] {1, 2}, new int[] {0}));
    assertTrue(e.getMessage().contains("2 values for 1 world labels"), e.getMessage());
  }

  @Test
  void worldsJoinIntoUnitsAndTheAnalysisUsesTheHierarchy() {
    BestOfNResults w0 = flat(), w1 = flat();
    win(w0, "single", MEAN, 1, 0.50, 0.50, 0.50);
    win(w0, "linear-2", MEAN, 1, 0.60, 0.62, 0.64);
    win(w1, "single", MEAN, 1, 0.50, 0.50, 0.50);
    win(w1, "linear-2", MEAN, 1, 0.50, 0.52, 0.54);
    BestOfNResults bon = BestOfNResults.concat(List.of(w0, w1));
    assertEquals(6, bon.seeds());
    assertEquals(2, bon.worlds());
    assertArrayEquals(new int[] {0, 0, 0, 1, 1, 1}, bon.world());
    assertArrayEquals(
        new double[] {0.60, 0.62, 0.64, 0.50, 0.52, 0.54},
        bon.win(method(bon, "linear-2"), MEAN, 1),
        0);
    DemoAnalysis.Paired p =
        DemoAnalysis.paired(bon).stream()
            .filter(
                x ->
                    x.reward().toString().equals("linear-2 mean")
                        && x.versus() == DemoAnalysis.Versus.SINGLE)
            .findFirst()
            .orElseThrow();
    // world means of the difference 0.12 and 0.02: mean 0.07, se = 0.05 (sd 0.0707 / sqrt 2)
    assertEquals(0.07, p.win().mean(), 1e-12);
    assertEquals(0.05, p.win().se(), 1e-12);
    // within each world the seeds spread by 0.02 (sd), and as if independent the six units give
    // sd 0.0559 / sqrt 6
    assertEquals(0.02, p.winParts().withinSd(), 1e-12);
    assertEquals(Math.sqrt(0.0166 / 5 / 6), p.winParts().seUnits(), 1e-12);
    // positive over the 6 units as if independent (0.07 vs 2 x 0.023), but not over 2 worlds
    String a = DemoAnalysis.answers(bon, List.of());
    assertTrue(
        a.contains(
            "linear-2 (mean) vs single: win-rate difference 0.070 ± 0.050, within 12.71 standard errors"
                + " (t, 1 df) of zero."),
        a);
    assertTrue(
        a.contains(
            "exceeds the two-sided 95% Student t quantile for 1 degrees of freedom (12.71) times its"
                + " standard error over the 2 worlds"),
        a);
  }

  private static PpoPhase.PpoCurve run(MethodAgg r, double[] win, double[] proxy) {
    List<PpoPhase.PpoPoint> pts = new java.util.ArrayList<>();
    for (int i = 0; i < win.length; i++) {
      pts.add(new PpoPhase.PpoPoint(10 * i, win[i], 2 * win[i], proxy[i], i, Double.NaN));
    }
    return new PpoPhase.PpoCurve(r, pts, 1);
  }

  /** 3 runs in 3 worlds that rise to iteration 10 and fall, the proxy rising throughout. */
  private static PpoPhase.PpoRuns risesThenFalls(MethodAgg r) {
    return new PpoPhase.PpoRuns(
        r,
        List.of(
            run(r, new double[] {0.5, 0.70, 0.55}, new double[] {0, 1, 2}),
            run(r, new double[] {0.5, 0.72, 0.60}, new double[] {0, 1, 2.2}),
            run(r, new double[] {0.5, 0.68, 0.56}, new double[] {0, 1.1, 2.1})),
        new int[] {0, 1, 2});
  }

  /** 3 runs in 3 worlds that rise to the end. */
  private static PpoPhase.PpoRuns risesToTheEnd(MethodAgg r) {
    return new PpoPhase.PpoRuns(
        r,
        List.of(
            run(r, new double[] {0.5, 0.60, 0.70}, new double[] {0, 1, 2}),
            run(r, new double[] {0.5, 0.62, 0.74}, new double[] {0, 1, 2}),
            run(r, new double[] {0.5, 0.61, 0.66}, new double[] {0, 1, 2})),
        new int[] {0, 1, 2});
  }

  /**
   * A reward whose paired difference is nearly constant over 3 runs gets the pooled standard error
   * of all rewards' differences, not its own chance-small one.
   */
  @Test
  void ppoDifferencesAreNeverJudgedOnAStandardErrorBelowThePooledOne() {
    BestOfNResults bon = flat();
    MethodAgg single = method(bon, "single").with(MEAN);
    MethodAgg lin = method(bon, "linear-2").with(MEAN);
    MethodAgg ind = method(bon, "independent-2").with(MEAN);
    double[] p = {0, 1, 2};
    PpoPhase.PpoRuns s =
        new PpoPhase.PpoRuns(
            single,
            List.of(
                run(single, new double[] {0.5, 0.6, 0.50}, p),
                run(single, new double[] {0.5, 0.6, 0.60}, p),
                run(single, new double[] {0.5, 0.6, 0.70}, p)),
            new int[] {0, 1, 2});
    // linear: final differences 0.065, 0.066, 0.064 (own se 0.000577)
    PpoPhase.PpoRuns l =
        new PpoPhase.PpoRuns(
            lin,
            List.of(
                run(lin, new double[] {0.5, 0.6, 0.565}, p),
                run(lin, new double[] {0.5, 0.6, 0.666}, p),
                run(lin, new double[] {0.5, 0.6, 0.764}, p)),
            new int[] {0, 1, 2});
    // independent: final differences 0.1, -0.1, 0.0 (own se 0.1 / sqrt 3)
    PpoPhase.PpoRuns i =
        new PpoPhase.PpoRuns(
            ind,
            List.of(
                run(ind, new double[] {0.5, 0.6, 0.6}, p),
                run(ind, new double[] {0.5, 0.6, 0.5}, p),
                run(ind, new double[] {0.5, 0.6, 0.7}, p)),
            new int[] {0, 1, 2});
    List<DemoAnalysis.PpoPaired> pp = DemoAnalysis.ppoPaired(List.of(s, l, i));
    DemoAnalysis.PpoPaired linFinal = pp.get(0), indFinal = pp.get(2);
    assertEquals("final", linFinal.at());
    double ownLin = 0.001 / Math.sqrt(3), ownInd = 0.1 / Math.sqrt(3);
    assertEquals(ownLin, linFinal.winSeRuns(), 1e-12);
    assertEquals(ownInd, indFinal.winSeRuns(), 1e-12);
    double pooled = Math.sqrt((ownLin * ownLin + ownInd * ownInd) / 2);
    assertEquals(pooled, linFinal.win().se(), 1e-12);
    assertEquals(ownInd, indFinal.win().se(), 1e-12); // above the pool: its own
    assertEquals(pooled, DemoAnalysis.ppoSeFloor(pp, "final", false), 1e-12);
    assertEquals(0.065, linFinal.win().mean(), 1e-12);
    // 112 own standard errors, 1.6 pooled ones: no conclusion
    String text = DemoAnalysis.answers(bon, List.of(s, l, i));
    assertTrue(
        text.contains(
            "linear-2 mean at final (iteration 20 vs 20): win rate 0.065 ± 0.041, within 4.30 standard"
                + " errors (t, 2 df) of zero"),
        text);
  }

  @Test
  void ppoRunsArePairedAtTheFinalAndTheBestEvaluationAndOverOptimisationIsTested() {
    BestOfNResults bon = flat();
    MethodAgg single = method(bon, "single").with(MEAN);
    MethodAgg lin = method(bon, "linear-2").with(MEAN);
    // single: rises to iteration 10 and falls, proxy keeps rising; 3 runs in 3 worlds
    PpoPhase.PpoRuns s = risesThenFalls(single);
    // linear: rises to the end
    PpoPhase.PpoRuns l = risesToTheEnd(lin);
    List<PpoPhase.PpoStats> st = s.stats();
    assertEquals(0.70, st.get(1).win().mean(), 1e-12);
    // 0.70, 0.72, 0.68: sd 0.02, se 0.02 / sqrt 3
    assertEquals(0.02 / Math.sqrt(3), st.get(1).win().se(), 1e-12);
    assertEquals(1.4, st.get(1).gold().mean(), 1e-12);
    assertEquals(1, st.get(1).kl().mean(), 1e-12);
    assertEquals(1, DemoAnalysis.bestPoint(s));
    assertEquals(2, DemoAnalysis.bestPoint(l));

    List<DemoAnalysis.PpoPaired> pp = DemoAnalysis.ppoPaired(List.of(s, l));
    assertEquals(2, pp.size());
    // final: 0.70 - 0.55, 0.74 - 0.60, 0.66 - 0.56 = 0.15, 0.14, 0.10: mean 0.13, sd sqrt(0.0007)
    DemoAnalysis.PpoPaired fin = pp.get(0);
    assertEquals("final", fin.at());
    assertEquals(20, fin.iteration());
    assertEquals(0.13, fin.win().mean(), 1e-12);
    assertEquals(Math.sqrt(0.0007 / 3), fin.win().se(), 1e-12);
    // best: linear at 20 vs single at 10: 0.00, 0.02, -0.02
    DemoAnalysis.PpoPaired best = pp.get(1);
    assertEquals("best", best.at());
    assertEquals(20, best.iteration());
    assertEquals(10, best.singleIteration());
    assertEquals(0, best.win().mean(), 1e-12);
    assertEquals(0.02 / Math.sqrt(3), best.win().se(), 1e-12);

    DemoAnalysis.OverOptimisation o = DemoAnalysis.overOptimisation(List.of(s, l)).get(0);
    // win drop 0.15, 0.12, 0.12; proxy rise 1, 1.2, 1.0
    assertEquals(0.13, o.winDrop().mean(), 1e-12);
    assertEquals(16.0 / 15, o.proxyRise().mean(), 1e-12);
    assertTrue(o.shown());
    assertFalse(DemoAnalysis.overOptimisation(List.of(s, l)).get(1).shown());
    String text = DemoAnalysis.answers(bon, List.of(s, l));
    assertTrue(
        text.contains(
            "single mean: win rate from its peak at iteration 10 to iteration 20 falls by 0.130 ± 0.010"
                + " (positive by more than 4.30 standard errors (t, 2 df))"),
        text);
    assertTrue(text.contains(": over-optimisation."), text);
    assertTrue(
        text.contains(
            "linear-2 mean at final (iteration 20 vs 20): win rate 0.130 ± 0.015, positive by more than"
                + " 4.30 standard errors (t, 2 df)"),
        text);
    assertTrue(text.contains("linear-2 mean: the win rate peaks at the last evaluation."), text);

    // the mean curve carries the win rate's standard error; one run has none
    PpoPhase.PpoCurve m = s.mean();
    assertEquals(3, m.seeds());
    assertEquals(0.02 / Math.sqrt(3), m.points().get(1).winRateSe(), 1e-12);
    PpoPhase.PpoRuns one = new PpoPhase.PpoRuns(single, List.of(s.runs().get(0)), new int[1]);
    assertTrue(Double.isNaN(one.mean().points().get(1).winRateSe()));
    assertTrue(
        DemoAnalysis.answers(bon, List.of(one))
            .contains("One PPO run per reward, so no standard errors"));
    assertThrows(
        IllegalArgumentException.class, () -> new PpoPhase.PpoRuns(single, s.runs(), new int[2]));
  }

  @Test
  void settingsBuilderValidates() {
    DemoSettings s =
        DemoSettings.tiny(java.nio.file.Path.of("x")).toBuilder().seeds(3).full(true).build();
    assertEquals(3, s.seeds());
    assertEquals(6, s.units());
    // PPO run j: world j mod 2, seed j div 2
    assertEquals(0, s.ppoUnit(0));
    assertEquals(3, s.ppoUnit(1));
    assertEquals(1, s.ppoUnit(2));
    assertEquals(5, s.ppoUnit(5));
    assertEquals(8, s.worldSeed(7));
    assertEquals(DemoSettings.tiny(java.nio.file.Path.of("x")).pool(), s.pool());
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> DemoSettings.tiny(java.nio.file.Path.of("x")).toBuilder().noise(0.7).build());
    assertEquals("demo: noise must be in [0, 0.5], got 0.7", e.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> DemoSettings.fast(java.nio.file.Path.of("x")).toBuilder().pool(1).build());
    DemoSettings.Builder fast = DemoSettings.fast(java.nio.file.Path.of("x")).toBuilder();
    assertBad("demo: worlds must be >= 1, got 0", fast.worlds(0));
    fast = DemoSettings.fast(java.nio.file.Path.of("x")).toBuilder();
    assertBad(
        "demo: PPO seeds must be <= worlds x seeds = 8 (each PPO run uses its own reward models), got 9",
        fast.ppoSeeds(9));
    // without PPO the PPO seeds do not matter
    assertEquals(9, fast.ppoIterations(0).build().ppoSeeds());
    fast = DemoSettings.fast(java.nio.file.Path.of("x")).toBuilder();
    assertBad("demo: PPO seeds must be >= 1, got 0", fast.ppoSeeds(0));
    fast = DemoSettings.fast(java.nio.file.Path.of("x")).toBuilder();
    assertBad("demo: PPO KL coefficient must be finite and >= 0, got -0.1", fast.ppoKlCoef(-0.1));
    assertEquals(0, fast.ppoKlCoef(0).build().ppoKlCoef(), 0, "KL 0 is allowed");
    fast = DemoSettings.fast(java.nio.file.Path.of("x")).toBuilder();
    assertBad("demo: PPO lr must be finite and > 0, got 0.0", fast.ppoLr(0));
    fast = DemoSettings.fast(java.nio.file.Path.of("x")).toBuilder();
    assertBad("demo: PPO max new tokens must be >= 1, got 0", fast.ppoMaxNewTokens(0));
    // the presets: at least 3 worlds and 3 PPO runs per reward in fast mode, more in full
    DemoSettings f = DemoSettings.fast(java.nio.file.Path.of("x"));
    DemoSettings full = DemoSettings.fullRun(java.nio.file.Path.of("x"));
    assertTrue(f.worlds() >= 3 && f.ppoSeeds() >= 3, f.toString());
    assertTrue(full.units() > f.units() && full.ppoSeeds() >= f.ppoSeeds(), full.toString());
  }

  private static void assertBad(String message, DemoSettings.Builder b) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, b::build);
    assertEquals(message, e.getMessage());
  }
}
