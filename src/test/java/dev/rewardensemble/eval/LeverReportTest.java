package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.ensemble.AggregationConfig;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The levers and cost sections on hand-made results and costs: fractions and the goal in words. */
class LeverReportTest {
  private static final int[] NS = {1, 4};
  private static final int SEEDS = 3;

  private static double[][] fill(double v) {
    double[][] a = new double[SEEDS][NS.length];
    for (double[] row : a) {
      Arrays.fill(row, v);
    }
    return a;
  }

  private static DemoSettings settings() {
    return DemoSettings.tiny(Path.of("x")).toBuilder()
        .seeds(SEEDS)
        .levers(List.of(DemoLever.LINEAR_DISJOINT, DemoLever.LORA_DISJOINT))
        .build();
  }

  /** Win rate at the largest n per method (every aggregation), the rest flat. */
  private static DemoReport report(Map<String, double[]> winAtMax, Map<String, double[]> cost) {
    DemoSettings s = settings();
    List<DemoMethod> methods = DemoMethod.all(s);
    Map<MethodAgg, BestOfNResults.Curves> curves = new LinkedHashMap<>();
    Map<DemoMethod, BestOfNResults.Members> members = new LinkedHashMap<>();
    DemoCost dc = new DemoCost();
    for (DemoMethod m : methods) {
      double[] w = winAtMax.getOrDefault(m.name(), new double[] {0.5, 0.5, 0.5});
      for (AggregationConfig a : DemoMethod.AGGREGATIONS) {
        double[][] win = fill(0.5);
        for (int sd = 0; sd < SEEDS; sd++) {
          win[sd][1] = w[sd];
        }
        curves.put(
            m.with(a),
            new BestOfNResults.Curves(fill(0), fill(0), win, new double[] {0.6, 0.6, 0.6}));
      }
      members.put(m, new BestOfNResults.Members(fill(0.5), fill(0), new double[] {0.4, 0.5, 0.6}));
      // {train seconds per seed, score seconds per seed, variable bytes}
      double[] c = cost.getOrDefault(m.name(), new double[] {5, 1, 1000});
      for (int sd = 0; sd < SEEDS; sd++) {
        dc.trained(m, c[0]);
        dc.scored(m, 0.1, c[1], (long) c[2]);
      }
    }
    BestOfNResults bon = new BestOfNResults(methods, NS, SEEDS, curves, members);
    return new DemoReport(
        s,
        List.of(),
        bon,
        new PpoPhase.PpoResults(List.of(), 0),
        DemoAnalysis.of(bon, List.of()),
        dc);
  }

  private static Map<String, double[]> costs(double disjointBytes) {
    return Map.of(
        "independent-2", new double[] {10, 3, 2000},
        "linear-2", new double[] {3, 2, 600},
        "linear-2-disjoint", new double[] {3, 2, disjointBytes},
        "lora-2-disjoint", new double[] {8, 3, 900});
  }

  @Test
  void aLeverRowWithinBothBoundsThatReachesTheGainMeetsTheGoal() {
    Map<String, double[]> win =
        Map.of(
            "independent-2", new double[] {0.55, 0.56, 0.57},
            "linear-2", new double[] {0.51, 0.52, 0.53},
            "linear-2-disjoint", new double[] {0.57, 0.56, 0.58},
            "lora-2-disjoint", new double[] {0.60, 0.60, 0.60});
    DemoReport r = report(win, costs(600));
    Map<String, LeverReport.CostLine> lines = new LinkedHashMap<>();
    for (LeverReport.CostLine l : LeverReport.costLines(r)) {
      lines.put(l.method().name(), l);
    }
    LeverReport.CostLine d = lines.get("linear-2-disjoint");
    assertEquals(0.3, d.trainFraction(), 1e-12);
    assertEquals(2.0 / 3, d.scoreFraction(), 1e-12);
    assertEquals(0.3, d.memoryFraction(), 1e-12);
    assertEquals(0.07, d.vsSingle().mean(), 1e-12);
    assertEquals(0.01, d.vsIndependent().mean(), 1e-12);
    assertTrue(d.meetsGoal());
    // lora-2-disjoint gains more, but trains for 0.8 of the independent ensemble's time.
    assertTrue(lines.get("lora-2-disjoint").gainReached());
    assertFalse(lines.get("lora-2-disjoint").trainOk());
    assertFalse(lines.get("lora-2-disjoint").meetsGoal());
    assertFalse(lines.get("linear-2").gainReached());
    assertFalse(lines.get("independent-2").candidate());
    String md = LeverReport.cost(r);
    assertTrue(
        md.contains(
            "met by linear-2-disjoint (the lever made the difference: the noisy set dealt into 2"
                + " disjoint parts (no Poisson), whose base linear-2 gains 0.020 ± 0.006)"),
        md);
    assertTrue(md.contains("| linear-2-disjoint | 9.0 | 0.30 | 6.0 | 0.67 | 0.00 | 0.30 |"), md);
    String lv = LeverReport.levers(r);
    assertTrue(
        lv.contains(
            "| lora-2-disjoint | phase 2: the cleaner set dealt into 2 disjoint parts | 2 | reused (lora-2) | 0.500 |"),
        lv);
  }

  @Test
  void withoutSuchARowTheStatementSaysNoneAndGivesTheNumbers() {
    Map<String, double[]> win =
        Map.of(
            "independent-2", new double[] {0.55, 0.56, 0.57},
            "linear-2-disjoint", new double[] {0.57, 0.56, 0.58});
    // 700 bytes: more than a third of the independent ensemble's 2000.
    String md = LeverReport.cost(report(win, costs(700)));
    assertTrue(
        md.contains(
            "**Cost statement.** independent-2 gains 0.060 ± 0.006 win rate over the single model"),
        md);
    assertTrue(
        md.contains(
            "Shared-trunk ensembles whose mean gain is at least that: linear-2-disjoint 0.070"),
        md);
    assertTrue(
        md.contains(
            "not met in this run: 1 shared-trunk row(s) are within both cost bounds, 1 reach the gain, none both."),
        md);
    assertFalse(md.contains("Near it"), "5% over a third is not near it: " + md);
  }

  @Test
  void oneTrunkWithItsExtraHeadsIsReportedNearTheMemoryBoundNotWithinIt() {
    Map<String, double[]> win =
        Map.of(
            "independent-2", new double[] {0.55, 0.56, 0.57},
            "linear-2-disjoint", new double[] {0.57, 0.56, 0.58});
    // 670 bytes: 0.335 of 2000, 4 bytes over a third.
    DemoReport r = report(win, costs(670));
    LeverReport.CostLine d =
        LeverReport.costLines(r).stream()
            .filter(l -> l.method().name().equals("linear-2-disjoint"))
            .findFirst()
            .orElseThrow();
    assertFalse(d.memoryOk());
    assertTrue(d.memoryNear());
    assertFalse(d.meetsGoal());
    assertEquals(4, d.bytesOverBound());
    String md = LeverReport.cost(r);
    assertTrue(md.contains("memory ≈ (0.335)"), md);
    assertTrue(
        md.contains(
            "Near it: linear-2-disjoint reaches the gain (0.070 ± 0.006; 0.010 ± 0.006 vs"
                + " independent-2 paired) at 0.30 of the training time with 0.335 of the inference"
                + " memory, 4 bytes over a third (its 2 heads against one trunk), where its base"
                + " linear-2 does not (0.000 ± 0.000): the lever (the noisy set dealt into 2"
                + " disjoint parts (no Poisson)) made that difference."),
        md);
  }
}
