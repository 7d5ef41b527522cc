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

  /** Win rate at the largest n per method (every aggregation), the rest flat; one world, no PPO. */
  private static DemoReport report(Map<String, double[]> winAtMax, Map<String, double[]> cost) {
    return report(winAtMax, cost, new int[SEEDS], Map.of());
  }

  /**
   * As {@link #report(Map, Map)}, the units in worlds {@code world}, and PPO run for the methods of
   * {@code ppoFinal} (mean aggregation; their final win rate per run, run j paired with unit j; 0.5
   * at iteration 0).
   */
  private static DemoReport report(
      Map<String, double[]> winAtMax,
      Map<String, double[]> cost,
      int[] world,
      Map<String, double[]> ppoFinal) {
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
    BestOfNResults bon = new BestOfNResults(methods, NS, SEEDS, curves, members, world);
    List<PpoPhase.PpoRuns> ppo = new java.util.ArrayList<>();
    for (DemoMethod m : methods) {
      double[] fin = ppoFinal.get(m.name());
      if (fin == null) {
        continue;
      }
      MethodAgg reward = m.with(AggregationConfig.mean());
      List<PpoPhase.PpoCurve> runs = new java.util.ArrayList<>();
      for (double f : fin) {
        runs.add(
            new PpoPhase.PpoCurve(
                reward,
                List.of(
                    new PpoPhase.PpoPoint(0, 0.5, 1, 0, 0, Double.NaN),
                    new PpoPhase.PpoPoint(10, f, 1, 0, 1, Double.NaN)),
                1));
      }
      ppo.add(new PpoPhase.PpoRuns(reward, runs, world));
    }
    return new DemoReport(
        s, List.of(), bon, new PpoPhase.PpoResults(ppo, 0), DemoAnalysis.of(bon, ppo), dc);
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
    // The lever rows' gains get verdicts, and Holm's correction over the lever family.
    assertTrue(
        lv.contains(
            "`linear-2-disjoint` vs single 0.070 ± 0.006, positive by more than 4.30 standard errors"
                + " (t, 2 df); vs own members 0.070 ± 0.006"),
        lv);
    assertTrue(lv.contains("(family-wise error 5%): Levers (Best-of-n), 6 tests: "), lv);
    Comparisons family = LeverReport.family(r);
    assertEquals(6, family.tests().size());
    assertEquals(6, family.kept().size(), family.summary());
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
            "not met in this run: 1 shared-trunk row(s) are within both cost bounds, 1 reach the"
                + " Best-of-n gain, none meets the whole goal."),
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

  @Test
  void pairedDifferencesToTheIndependentEnsembleAreTwoStageOverTheWorlds() {
    // Two worlds (units 0 and 1 in world 0, unit 2 in world 1).
    Map<String, double[]> win =
        Map.of(
            "independent-2", new double[] {0.55, 0.57, 0.50},
            "linear-2-disjoint", new double[] {0.57, 0.56, 0.58});
    int[] world = {0, 0, 1};
    DemoReport r = report(win, costs(600), world, Map.of());
    LeverReport.CostLine d = line(r, "linear-2-disjoint");
    // Differences 0.02, -0.01, 0.08: world means 0.005 and 0.08, their mean 0.0425 and standard
    // error |0.08 - 0.005| / 2 = 0.0375 (units as independent would give 0.0273).
    assertEquals(0.0425, d.vsIndependent().mean(), 1e-12);
    assertEquals(0.0375, d.vsIndependent().se(), 1e-12);
    LeverReport.LeverLine lv =
        LeverReport.leverLines(r).stream()
            .filter(l -> l.method().name().equals("linear-2-disjoint"))
            .findFirst()
            .orElseThrow();
    // Against its base linear-2 (0.5 everywhere): 0.07, 0.06, 0.08 -> world means 0.065, 0.08.
    assertEquals(0.0725, lv.vsBase().mean(), 1e-12);
    assertEquals(0.0075, lv.vsBase().se(), 1e-12);
  }

  @Test
  void theGoalNeedsTheIndependentEnsemblesPpoGainWhereTheRowRanInPpo() {
    Map<String, double[]> win =
        Map.of(
            "independent-2", new double[] {0.55, 0.56, 0.57},
            "linear-2", new double[] {0.57, 0.56, 0.58},
            "linear-2-disjoint", new double[] {0.57, 0.56, 0.58});
    Map<String, double[]> ppo =
        Map.of(
            "single", new double[] {0.40, 0.42, 0.44},
            "independent-2", new double[] {0.50, 0.51, 0.55},
            "linear-2", new double[] {0.45, 0.44, 0.46},
            "lora-2", new double[] {0.52, 0.53, 0.54});
    Map<String, double[]> cost = new LinkedHashMap<>(costs(600));
    cost.put("linear-2", new double[] {3, 2, 600});
    cost.put("lora-2", new double[] {4, 2, 600});
    DemoReport r = report(win, cost, new int[SEEDS], ppo);
    LeverReport.CostLine lin = line(r, "linear-2");
    // linear-2 reaches the Best-of-n gain within both cost bounds, but not the PPO gain
    // (0.030 against independent-2's 0.100): the goal is not met by it.
    assertTrue(lin.gainReached() && lin.trainOk() && lin.memoryOk());
    assertEquals(0.03, lin.ppoVsSingle().mean(), 1e-12);
    assertEquals(-0.07, lin.ppoVsIndependent().mean(), 1e-12);
    assertFalse(lin.ppoGainReached());
    assertFalse(lin.meetsGoal());
    LeverReport.CostLine lora = line(r, "lora-2");
    assertTrue(lora.ppoGainReached()); // 0.110 >= 0.100
    // The lever row ran in Best-of-n only: judged on it, and the statement says so.
    LeverReport.CostLine d = line(r, "linear-2-disjoint");
    assertFalse(d.ranPpo());
    assertTrue(d.meetsGoal());
    assertEquals(0.1, line(r, "independent-2").ppoVsSingle().mean(), 1e-12);
    String md = LeverReport.cost(r);
    assertTrue(
        md.contains(
            "**PPO** (final evaluation, mean aggregation, paired by run): independent-2 gains"
                + " 0.100 ± 0.007 win rate over the single model; the shared-trunk ensembles run in"
                + " PPO: linear-2 0.030 ± 0.010 (-0.070 ± 0.012 vs independent-2 paired), lora-2"
                + " 0.110 ± 0.007 (0.010 ± 0.010 vs independent-2 paired). Reaching"
                + " independent-2's mean PPO gain: lora-2 at 0.40 of its training time and 0.30 of"
                + " its inference memory"),
        md);
    assertTrue(md.contains("met by linear-2-disjoint (on Best-of-n alone: not run in PPO)"), md);
    assertTrue(md.contains("| gain ✓, PPO gain ✗, train ✓, memory ✓ |"), md);
    assertTrue(md.contains("| 0.030 ± 0.010 | -0.070 ± 0.012 | gain ✓, PPO gain ✗,"), md);
    assertTrue(md.contains("| not run | — |"), md);
    // The single model ran in PPO: its own gain is "—", not "not run".
    assertTrue(
        md.contains(
            "| single | 15.0 | 0.50 | 3.0 | 0.33 | 0.00 | 0.50 | — | -0.060 ± 0.006 | — | -0.100 ±"
                + " 0.007 | — |"),
        md);
  }

  @Test
  void aLeverRowRunInPpoIsJudgedOnPpoTooAndItsPpoGainIsInTheLeversTable() {
    Map<String, double[]> win =
        Map.of(
            "independent-2", new double[] {0.55, 0.56, 0.57},
            "lora-2-disjoint", new double[] {0.57, 0.56, 0.58});
    Map<String, double[]> ppo =
        Map.of(
            "single", new double[] {0.40, 0.42, 0.44},
            "independent-2", new double[] {0.50, 0.51, 0.55},
            "lora-2-disjoint", new double[] {0.46, 0.47, 0.48});
    DemoReport r = report(win, costs(600), new int[SEEDS], ppo);
    LeverReport.CostLine d = line(r, "lora-2-disjoint");
    assertTrue(d.ranPpo());
    assertEquals(0.05, d.ppoVsSingle().mean(), 1e-12);
    assertEquals(-0.05, d.ppoVsIndependent().mean(), 1e-12);
    // The Best-of-n gain reached, the PPO gain not: judged on both, not on Best-of-n alone.
    assertTrue(d.gainReached());
    assertFalse(d.ppoGainReached());
    assertFalse(d.ppoGoalOk());
    assertFalse(d.meetsGoal());
    String md = LeverReport.cost(r);
    assertTrue(
        md.contains(
            "the shared-trunk ensembles run in PPO: lora-2-disjoint 0.050 ± 0.006 (-0.050 ± 0.010"
                + " vs independent-2 paired). None reaches independent-2's mean PPO gain."),
        md);
    // The rows not run in PPO are named, the lever row run in it is not.
    String notRun = md.substring(md.indexOf("Not run in PPO, so judged on Best-of-n alone: "));
    assertTrue(notRun.contains("linear-2-disjoint"), notRun);
    assertTrue(notRun.contains("linear-2,") || notRun.contains("linear-2."), notRun);
    assertFalse(notRun.contains("lora-2-disjoint"), notRun);
    String levers = LeverReport.levers(r);
    assertTrue(levers.contains("| PPO vs single (final) |"), levers);
    assertTrue(row(levers, "lora-2-disjoint").endsWith("| 0.050 ± 0.006 |"), levers);
    assertTrue(row(levers, "linear-2-disjoint").endsWith("| not run |"), levers);
    assertTrue(row(levers, "independent-2").endsWith("| 0.100 ± 0.006 |"), levers);
  }

  @Test
  void q2ComparesThePapersEnsemblesOnlyEvenWhenALeverRowIsHigher() {
    Map<String, double[]> win =
        Map.of(
            "independent-2", new double[] {0.55, 0.56, 0.57},
            "linear-2", new double[] {0.53, 0.54, 0.55},
            "lora-2-disjoint", new double[] {0.60, 0.61, 0.62});
    String answers = report(win, costs(600)).analysis().answers();
    String q2 = answers.substring(answers.indexOf("**Q2.**"), answers.indexOf("**Q3.**"));
    assertTrue(q2.contains("among the ensembles: independent-2 "), q2);
    assertTrue(q2.contains("Against the best of another ensemble, linear-2 "), q2);
    assertFalse(q2.contains("lora-2-disjoint"), q2);
  }

  @Test
  void theSettingsNoteSaysWhichLeverRowsRunInPpo() {
    DemoSettings s = settings();
    assertTrue(LeverReport.methodsNote(s).endsWith(". Lever rows are not run in PPO\n"));
    DemoSettings one =
        s.toBuilder().ppoIterations(4).ppoLevers(List.of(DemoLever.LORA_DISJOINT)).build();
    assertTrue(
        LeverReport.methodsNote(one)
            .endsWith(
                ". Also run in PPO (mean aggregation): `lora-2-disjoint`; the other lever rows are"
                    + " not\n"),
        LeverReport.methodsNote(one));
    DemoSettings both =
        one.toBuilder()
            .ppoLevers(List.of(DemoLever.LINEAR_DISJOINT, DemoLever.LORA_DISJOINT))
            .build();
    assertTrue(
        LeverReport.methodsNote(both)
            .endsWith(". Every lever row also runs in PPO (mean aggregation)\n"));
    // Without PPO, none is.
    assertTrue(
        LeverReport.methodsNote(both.toBuilder().ppoIterations(0).build())
            .endsWith(". Lever rows are not run in PPO\n"));
    // Only the run's own lever rows can run in PPO; dropping a lever drops it from PPO.
    IllegalArgumentException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class,
            () -> s.toBuilder().ppoLevers(List.of(DemoLever.LORA_PRIOR)).build());
    assertEquals(
        "demo: PPO lever lora-prior is not one of the run's levers [LINEAR_DISJOINT, LORA_DISJOINT]",
        e.getMessage());
    assertEquals(
        List.of(DemoLever.LORA_DISJOINT),
        both.toBuilder().levers(List.of(DemoLever.LORA_DISJOINT)).build().ppoLevers());
  }

  /** The markdown table row of {@code name}. */
  private static String row(String md, String name) {
    return md.lines().filter(l -> l.startsWith("| " + name + " |")).findFirst().orElseThrow();
  }

  private static LeverReport.CostLine line(DemoReport r, String name) {
    return LeverReport.costLines(r).stream()
        .filter(l -> l.method().name().equals(name))
        .findFirst()
        .orElseThrow();
  }
}
