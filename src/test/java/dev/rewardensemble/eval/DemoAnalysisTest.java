package dev.rewardensemble.eval;

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
                + " positive by more than two standard errors; vs lora-2 (mean): -0.017 ± 0.044,"
                + " within two standard errors of zero."),
        a);
    assertTrue(a.contains("warm-independent-2 (weight average"), a);
  }

  @Test
  void conclusionFlipsWhenTheNumbersFlip() {
    BestOfNResults up = flat();
    win(up, "single", MEAN, 1, 0.50, 0.60, 0.70);
    win(up, "linear-2", MEAN, 1, 0.60, 0.80, 0.75);
    String a = DemoAnalysis.answers(up, List.of());
    assertTrue(
        a.contains(
            "linear-2 (mean) vs single: win-rate difference 0.117 ± 0.044, positive by more than two"
                + " standard errors."),
        a);

    BestOfNResults down = flat();
    win(down, "single", MEAN, 1, 0.60, 0.80, 0.75);
    win(down, "linear-2", MEAN, 1, 0.50, 0.60, 0.70);
    String b = DemoAnalysis.answers(down, List.of());
    assertTrue(
        b.contains(
            "linear-2 (mean) vs single: win-rate difference -0.117 ± 0.044, negative by more than two"
                + " standard errors."),
        b);

    BestOfNResults noisy = flat();
    win(noisy, "single", MEAN, 1, 0.50, 0.60, 0.70);
    // differences 0.20, -0.10, -0.05: mean 0.017, squared deviations 0.0517, se = sqrt(0.0517 / 6)
    // = 0.093
    win(noisy, "linear-2", MEAN, 1, 0.70, 0.50, 0.65);
    String c = DemoAnalysis.answers(noisy, List.of());
    assertTrue(
        c.contains(
            "linear-2 (mean) vs single: win-rate difference 0.017 ± 0.093, within two standard errors"
                + " of zero."),
        c);
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
            "independent-2 LCB 0.5: 0.320 ± 0.012 (positive by more than two standard errors)"),
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
  void ppoAnswerNamesEachRewardsFinalPoint() {
    BestOfNResults bon = flat();
    DemoMethod single = method(bon, "single");
    PpoPhase.PpoCurve a =
        new PpoPhase.PpoCurve(
            single.with(MEAN),
            List.of(
                new PpoPhase.PpoPoint(0, 0.4, 0.2, 0, 0, Double.NaN),
                new PpoPhase.PpoPoint(5, 0.3, 0.1, 0, 1, Double.NaN)),
            1);
    PpoPhase.PpoCurve b =
        new PpoPhase.PpoCurve(
            single.with(MEAN),
            List.of(
                new PpoPhase.PpoPoint(0, 0.4, 0.2, 0, 0, Double.NaN),
                new PpoPhase.PpoPoint(5, 0.5, 0.3, 0, 2, Double.NaN)),
            1);
    PpoPhase.PpoCurve m = PpoPhase.PpoCurve.mean(List.of(a, b));
    assertEquals(2, m.seeds());
    assertEquals(0.4, m.lastPoint().winRate(), 1e-12);
    assertEquals(0.1, m.lastPoint().winRateSe(), 1e-12);
    assertEquals(1.5, m.lastPoint().kl(), 1e-12);
    String text = DemoAnalysis.answers(bon, List.of(m));
    assertTrue(
        text.contains(
            "**Q1 (PPO).** Final win rate vs SFT: single mean 0.400 (gold 0.200); means over 2 PPO seeds"),
        text);
  }

  @Test
  void settingsBuilderValidates() {
    DemoSettings s =
        DemoSettings.tiny(java.nio.file.Path.of("x")).toBuilder().seeds(3).full(true).build();
    assertEquals(3, s.seeds());
    assertEquals(3, s.ppoSeeds());
    assertEquals(DemoSettings.tiny(java.nio.file.Path.of("x")).pool(), s.pool());
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> DemoSettings.tiny(java.nio.file.Path.of("x")).toBuilder().noise(0.7).build());
    assertEquals("demo: noise must be in [0, 0.5], got 0.7", e.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> DemoSettings.fast(java.nio.file.Path.of("x")).toBuilder().pool(1).build());
  }
}
