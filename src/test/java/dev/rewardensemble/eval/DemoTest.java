package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.ensemble.AggregationConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A reduced {@code rme demo} end to end: every phase runs for real on tiny settings. */
class DemoTest {
  /** A CSV as rows of named fields; every row has as many fields as the header, empty ones too. */
  static List<Map<String, String>> csv(Path file) throws Exception {
    List<String> lines = Files.readAllLines(file);
    String[] header = lines.get(0).split(",", -1);
    List<Map<String, String>> rows = new ArrayList<>();
    for (String line : lines.subList(1, lines.size())) {
      String[] f = line.split(",", -1);
      assertEquals(header.length, f.length, file + ": " + line);
      Map<String, String> row = new LinkedHashMap<>();
      for (int i = 0; i < f.length; i++) {
        row.put(header[i], f[i]);
      }
      rows.add(row);
    }
    return rows;
  }

  static double num(Map<String, String> row, String key) {
    return Double.parseDouble(row.get(key));
  }

  /** The markdown section that starts with {@code heading}, up to the next heading of its level. */
  static String section(String md, String heading) {
    int a = md.indexOf(heading);
    assertTrue(a >= 0, "report has " + heading);
    int b = md.indexOf("\n## ", a + heading.length());
    return md.substring(a, b < 0 ? md.length() : b);
  }

  @Test
  void reducedDemoWritesAConsistentReport(@TempDir Path dir) throws Exception {
    // A full-mode run on tiny settings: 2 worlds (each its own SFT policy) x 1 reward-model seed,
    // PPO over 2 runs (one per world) with standard errors, as --full does with 5.
    DemoSettings s = DemoSettings.tiny(dir.resolve("demo")).toBuilder().full(true).build();
    assertEquals(2, s.ppoSeeds());
    assertEquals(2, s.worlds());
    int units = s.units();
    Demo.Result r = Demo.run(s, msg -> System.err.println(msg));
    Path out = r.report().getParent();
    String md = Files.readString(r.report());
    JsonNode root = new ObjectMapper().readTree(r.results().toFile());
    List<DemoMethod> methods = DemoMethod.all(s.k());
    int[] ns = BestOfNPhase.nsFor(s.pool());
    int nMax = ns[ns.length - 1];

    // Every reward's per-seed Best-of-n numbers, from bon.csv.
    Map<String, double[]> winAtMax = new LinkedHashMap<>(), goldAtMax = new LinkedHashMap<>();
    Map<String, double[]> goldByN = new LinkedHashMap<>();
    List<Map<String, String>> bon = csv(out.resolve("bon.csv"));
    assertEquals(methods.size() * DemoMethod.AGGREGATIONS.size() * ns.length * units, bon.size());
    int[] worldOf = new int[units];
    for (Map<String, String> row : bon) {
      String key = row.get("method") + " " + row.get("aggregation");
      int seed = Integer.parseInt(row.get("unit"));
      worldOf[seed] = Integer.parseInt(row.get("world"));
      assertEquals(seed % s.seeds(), Integer.parseInt(row.get("seed")), row.toString());
      int n = Integer.parseInt(row.get("n"));
      if (n == 1) {
        assertEquals(
            0.5, num(row, "win_rate"), 1e-9, "Best-of-1 is the SFT policy: win rate 1/2, " + row);
      }
      if (n == nMax) {
        winAtMax.computeIfAbsent(key, k -> new double[units])[seed] = num(row, "win_rate");
        goldAtMax.computeIfAbsent(key, k -> new double[units])[seed] = num(row, "gold");
      }
      double[] g = goldByN.computeIfAbsent(key, k -> new double[ns.length]);
      for (int i = 0; i < ns.length; i++) {
        if (ns[i] == n) {
          g[i] += num(row, "gold") / units;
        }
      }
    }
    assertEquals(
        methods.size() * DemoMethod.AGGREGATIONS.size(),
        winAtMax.size(),
        winAtMax.keySet().toString());

    // Best-of-n works in this world: choosing by the single reward model raises the gold score from
    // n = 1 to the
    // peak of its win-rate curve, and the win rate at the largest n is well above the SFT policy's
    // 1/2.
    double[] single = goldByN.get("single mean");
    int peak = 0;
    List<Map<String, String>> summary = csv(out.resolve("bon_summary.csv"));
    double[] singleWin = new double[ns.length];
    for (Map<String, String> row : summary) {
      if (row.get("method").equals("single") && row.get("aggregation").equals("mean")) {
        for (int i = 0; i < ns.length; i++) {
          if (ns[i] == Integer.parseInt(row.get("n"))) {
            singleWin[i] = num(row, "win_mean");
          }
        }
      }
    }
    for (int i = 0; i < ns.length; i++) {
      peak = singleWin[i] > singleWin[peak] ? i : peak;
    }
    assertTrue(
        peak > 0 && single[peak] > single[0] + 0.02,
        "gold rises from n = 1 to the peak: " + java.util.Arrays.toString(single));
    assertTrue(singleWin[ns.length - 1] > 0.55, java.util.Arrays.toString(singleWin));

    // The paired analysis on the run's own numbers equals an independent recomputation from
    // bon.csv.
    List<Map<String, String>> paired = csv(out.resolve("paired.csv"));
    int checked = 0;
    for (Map<String, String> row : paired) {
      if (!row.get("versus").equals("single")) {
        continue;
      }
      String key = row.get("method") + " " + row.get("aggregation");
      double[] w = winAtMax.get(key), ws = winAtMax.get("single mean");
      double[] g = goldAtMax.get(key), gs = goldAtMax.get("single mean");
      double[] dw = new double[w.length], dg = new double[w.length];
      for (int i = 0; i < w.length; i++) {
        dw[i] = w[i] - ws[i];
        dg[i] = g[i] - gs[i];
      }
      // bon.csv has 6 decimals: the recomputation agrees to rounding. The standard error is over
      // the worlds' means (here one seed per world, so over the units' differences).
      double[] wmw = worldMeans(dw, worldOf), wmg = worldMeans(dg, worldOf);
      assertEquals(s.worlds(), wmw.length);
      assertEquals(mean(wmw), num(row, "win_diff_mean"), 3e-6, row.toString());
      assertEquals(se(wmw), num(row, "win_diff_se"), 3e-6, row.toString());
      assertEquals(mean(wmg), num(row, "gold_diff_mean"), 3e-6, row.toString());
      assertEquals(se(wmg), num(row, "gold_diff_se"), 3e-6, row.toString());
      assertEquals(se(dw), num(row, "win_diff_se_units"), 3e-6, row.toString());
      assertEquals(s.worlds(), Integer.parseInt(row.get("worlds")));
      assertEquals(units, Integer.parseInt(row.get("units")));
      assertEquals(nMax, Integer.parseInt(row.get("n")));
      checked++;
    }
    assertEquals(
        (methods.size() - 1) * DemoMethod.AGGREGATIONS.size(),
        checked,
        "every reward against single");
    assertEquals(
        paired.size(),
        root.get("paired").size(),
        "results.json holds the paired rows of paired.csv");

    // Q2 names the ensemble reward with the highest mean win rate at the largest n, found here from
    // bon.csv.
    String best = null;
    for (DemoMethod m : methods) {
      for (AggregationConfig a : DemoMethod.AGGREGATIONS) {
        String key = m.with(a).toString();
        if (m.ensemble()
            && (best == null || mean(winAtMax.get(key)) > mean(winAtMax.get(best)) + 1e-9)) {
          best = key;
        }
      }
    }
    assertTrue(
        md.contains("among the ensembles: " + best + " ("),
        best + "\n" + section(md, "## Answers"));

    // Every table of the report has a row for every method.
    for (String table : new String[] {"## Reward models", "## Best-of-n"}) {
      String sec = section(md, table);
      for (DemoMethod m : methods) {
        assertTrue(
            sec.contains("\n| " + m.name() + " |"),
            table + " has a row for " + m.name() + ":\n" + sec);
      }
    }
    String winVsN = md.substring(md.indexOf("Win rate vs n (mean aggregation)"));
    for (DemoMethod m : methods) {
      assertTrue(winVsN.contains("\n| " + m.name() + " |"), "win rate vs n has " + m.name());
    }

    // PPO: run j of every reward starts from the same SFT policy (its world's), sampled with the
    // same seed, so its first evaluation has the same win rate and gold for every reward; run j is
    // in world j mod worlds, so the 2 runs are in the 2 worlds.
    List<Map<String, String>> ppo = csv(out.resolve("ppo.csv"));
    List<MethodAgg> rewards = PpoPhase.rewards(methods, s.ppoLevers());
    int points = s.ppoIterations() / s.ppoEvalEvery() + 1;
    assertEquals(rewards.size() * s.ppoSeeds() * points, ppo.size());
    Map<String, Map<String, String>> firstOfRun = new LinkedHashMap<>();
    // per reward and iteration, the runs' win rates; per run, the single model's
    Map<String, double[]> runWin = new LinkedHashMap<>();
    int[] runWorld = new int[s.ppoSeeds()];
    for (Map<String, String> row : ppo) {
      int j = Integer.parseInt(row.get("run"));
      runWorld[j] = Integer.parseInt(row.get("world"));
      runWin
              .computeIfAbsent(
                  row.get("method") + " " + row.get("aggregation") + " @" + row.get("iteration"),
                  k -> new double[s.ppoSeeds()])[j] =
          num(row, "win_rate");
      if (row.get("iteration").equals("0")) {
        Map<String, String> first = firstOfRun.computeIfAbsent(row.get("run"), k -> row);
        assertEquals(first.get("win_rate"), row.get("win_rate"), row.toString());
        assertEquals(first.get("gold"), row.get("gold"), row.toString());
        assertEquals("0.000000", row.get("kl"), "the SFT policy's KL to itself: " + row);
      }
    }
    assertEquals(s.worlds(), java.util.Arrays.stream(runWorld).distinct().count());
    // ppo_summary.csv: the mean and standard error over runs, recomputed from ppo.csv
    List<Map<String, String>> ppoSummary = csv(out.resolve("ppo_summary.csv"));
    assertEquals(rewards.size() * points, ppoSummary.size());
    for (Map<String, String> row : ppoSummary) {
      double[] w =
          runWin.get(
              row.get("method") + " " + row.get("aggregation") + " @" + row.get("iteration"));
      assertEquals(mean(w), num(row, "win_mean"), 3e-6, row.toString());
      assertEquals(se(w), num(row, "win_se"), 3e-6, row.toString());
    }
    // ppo_paired.csv: each reward minus the single model, paired by run, at the final evaluation
    List<Map<String, String>> ppoPaired = csv(out.resolve("ppo_paired.csv"));
    assertEquals((rewards.size() - 1) * 2, ppoPaired.size());
    double ownSquares = 0;
    int finals = 0;
    for (Map<String, String> row : ppoPaired) {
      if (!row.get("at").equals("final")) {
        continue;
      }
      double[] d = new double[s.ppoSeeds()];
      double[] w =
          runWin.get(row.get("method") + " " + row.get("aggregation") + " @" + s.ppoIterations());
      double[] w0 = runWin.get("single mean @" + s.ppoIterations());
      for (int j = 0; j < d.length; j++) {
        d[j] = w[j] - w0[j];
      }
      assertEquals(mean(d), num(row, "win_diff_mean"), 3e-6, row.toString());
      assertEquals(se(d), num(row, "win_diff_se_runs"), 3e-6, row.toString());
      ownSquares += se(d) * se(d);
      finals++;
    }
    // each standard error floored at the pooled one (root mean square of the rows' own)
    double pooled = Math.sqrt(ownSquares / finals);
    for (Map<String, String> row : ppoPaired) {
      if (row.get("at").equals("final")) {
        assertEquals(
            Math.max(pooled, num(row, "win_diff_se_runs")),
            num(row, "win_diff_se"),
            3e-6,
            row.toString());
      }
    }
    assertEquals(rewards.size(), root.get("ppo").size());
    for (JsonNode c : root.get("ppo")) {
      for (JsonNode p : c.get("points")) {
        assertFalse(
            Double.isNaN(p.get("winRateSe").asDouble()), "a standard error over PPO runs: " + p);
      }
      assertEquals(s.ppoSeeds(), c.get("runs").size());
    }
    // Holm's correction per question: every printed verdict with a standard error is one of its
    // tests, with its p-value; the report lists what survives per question.
    JsonNode families = root.get("multiple_comparisons");
    assertEquals(
        List.of(
            "Over-optimisation (the paper's rewards pooled)",
            "Q1 (Best-of-n)",
            "Q1 (PPO)",
            "Q2",
            "Q3"),
        java.util.stream.StreamSupport.stream(families.spliterator(), false)
            .map(f -> f.get("question").asText())
            .toList());
    for (JsonNode f : families) {
      assertTrue(f.get("tests").size() > 0, f.toString());
      for (JsonNode t : f.get("tests")) {
        double p = t.get("p").asDouble();
        assertTrue(p >= 0 && p <= 1, t.toString());
      }
    }
    // over-optimisation pooled over the paper's rewards, in Best-of-n and in PPO
    JsonNode pooledOo = root.get("pooled_over_optimisation");
    assertEquals(2, pooledOo.size(), pooledOo.toString());
    assertEquals("Best-of-n", pooledOo.get(0).get("setting").asText());
    assertEquals(4, pooledOo.get(0).get("rewards").size());
    assertEquals("PPO", pooledOo.get(1).get("setting").asText());
    assertTrue(pooledOo.get(1).has("proxy_rise_se"), pooledOo.toString());
    assertTrue(
        section(md, "## Answers").startsWith("## Answers\n\n**Over-optimisation, the paper's"),
        section(md, "## Answers"));
    assertTrue(section(md, "## Answers").contains("**Multiple comparisons.**"), md);
    assertTrue(section(md, "## Answers").contains("- Q1 (PPO), "), md);
    assertTrue(md.contains("over 2 PPO runs"), "the report says PPO ran over runs");
    assertTrue(md.contains("Over-optimisation: from each reward's win-rate peak"), md);
    assertTrue(md.contains("| between-world SD | within-world SD |"), md);
    // the worlds are different draws: their SFT policies differ
    JsonNode worldsJson = root.get("worlds");
    assertEquals(s.worlds(), worldsJson.size());
    assertTrue(
        worldsJson.get(0).get("sft_mean_gold").asDouble()
            != worldsJson.get(1).get("sft_mean_gold").asDouble(),
        worldsJson.toString());
    // the Time table groups the phases over worlds, seeds and runs
    assertTrue(
        md.contains("| PPO with single mean (" + s.ppoIterations() + " iterations) | 2 |"),
        section(md, "## Time"));
    assertTrue(md.contains("| train RM single | 2 |"), section(md, "## Time"));
    for (String png :
        new String[] {
          "bon_win_vs_n.png",
          "bon_gold_proxy_vs_kl.png",
          "bon_lcb_vs_mean.png",
          "ppo_win_vs_iteration.png",
          "ppo_gold_proxy_vs_kl.png"
        }) {
      Path p = out.resolve(png);
      assertTrue(Files.isRegularFile(p) && Files.size(p) > 1000, png);
    }
    // WARM rows: each seed's ensemble averaged into one model (kind single, K = 1) by rme merge,
    // the merge recorded, its time under Time, compared with single and with its own ensemble.
    for (String src : List.of("independent-" + s.k(), "lora-" + s.k())) {
      for (int u = 0; u < units; u++) {
        Path seedDir = out.resolve("world-" + worldOf[u]).resolve("seed-" + u % s.seeds());
        JsonNode manifest =
            new ObjectMapper()
                .readTree(seedDir.resolve("rm-warm-" + src).resolve("ensemble.json").toFile());
        assertEquals("single", manifest.get("kind").asText());
        assertEquals(1, manifest.get("k").asInt());
        JsonNode merge = manifest.get("provenance").get("merge");
        assertEquals(seedDir.resolve("rm-" + src).toString(), merge.get("source").asText());
        assertEquals(s.k(), merge.get("members").size());
      }
      assertTrue(md.contains("merge RM warm-" + src), "the Time section has the merge");
      assertTrue(
          section(md, "## Answers").contains("warm-" + src + " (weight average"),
          section(md, "## Answers"));
    }
    assertTrue(Files.isRegularFile(out.resolve("rm_accuracy.csv")));
    assertEquals(
        methods.size() * DemoMethod.AGGREGATIONS.size(),
        csv(out.resolve("rm_accuracy.csv")).size());
  }

  /** Per world label (in first-seen order), the mean of its units' values. */
  private static double[] worldMeans(double[] x, int[] world) {
    Map<Integer, List<Double>> by = new LinkedHashMap<>();
    for (int i = 0; i < x.length; i++) {
      by.computeIfAbsent(world[i], k -> new ArrayList<>()).add(x[i]);
    }
    return by.values().stream()
        .mapToDouble(l -> l.stream().mapToDouble(Double::doubleValue).average().orElseThrow())
        .toArray();
  }

  private static double mean(double[] x) {
    double s = 0;
    for (double v : x) {
      s += v;
    }
    return s / x.length;
  }

  private static double se(double[] x) {
    double m = mean(x), v = 0;
    for (double d : x) {
      v += (d - m) * (d - m);
    }
    return Math.sqrt(v / (x.length - 1) / x.length);
  }
}
