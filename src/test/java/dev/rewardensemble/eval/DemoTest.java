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
  /** A CSV as rows of named fields. */
  private static List<Map<String, String>> csv(Path file) throws Exception {
    List<String> lines = Files.readAllLines(file);
    String[] header = lines.get(0).split(",");
    List<Map<String, String>> rows = new ArrayList<>();
    for (String line : lines.subList(1, lines.size())) {
      String[] f = line.split(",");
      assertEquals(header.length, f.length, file + ": " + line);
      Map<String, String> row = new LinkedHashMap<>();
      for (int i = 0; i < f.length; i++) {
        row.put(header[i], f[i]);
      }
      rows.add(row);
    }
    return rows;
  }

  private static double num(Map<String, String> row, String key) {
    return Double.parseDouble(row.get(key));
  }

  /** The markdown section that starts with {@code heading}, up to the next heading of its level. */
  private static String section(String md, String heading) {
    int a = md.indexOf(heading);
    assertTrue(a >= 0, "report has " + heading);
    int b = md.indexOf("\n## ", a + heading.length());
    return md.substring(a, b < 0 ? md.length() : b);
  }

  @Test
  void reducedDemoWritesAConsistentReport(@TempDir Path dir) throws Exception {
    // A full-mode run on tiny settings: PPO over 2 seeds with standard errors, as --full does with
    // 5.
    DemoSettings s = DemoSettings.tiny(dir.resolve("demo")).toBuilder().full(true).build();
    assertEquals(2, s.ppoSeeds());
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
    assertEquals(
        methods.size() * DemoMethod.AGGREGATIONS.size() * ns.length * s.seeds(), bon.size());
    for (Map<String, String> row : bon) {
      String key = row.get("method") + " " + row.get("aggregation");
      int seed = Integer.parseInt(row.get("seed"));
      int n = Integer.parseInt(row.get("n"));
      if (n == 1) {
        assertEquals(
            0.5, num(row, "win_rate"), 1e-9, "Best-of-1 is the SFT policy: win rate 1/2, " + row);
      }
      if (n == nMax) {
        winAtMax.computeIfAbsent(key, k -> new double[s.seeds()])[seed] = num(row, "win_rate");
        goldAtMax.computeIfAbsent(key, k -> new double[s.seeds()])[seed] = num(row, "gold");
      }
      double[] g = goldByN.computeIfAbsent(key, k -> new double[ns.length]);
      for (int i = 0; i < ns.length; i++) {
        if (ns[i] == n) {
          g[i] += num(row, "gold") / s.seeds();
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
      // bon.csv has 6 decimals: the recomputation agrees to rounding
      assertEquals(mean(dw), num(row, "win_diff_mean"), 3e-6, row.toString());
      assertEquals(se(dw), num(row, "win_diff_se"), 3e-6, row.toString());
      assertEquals(mean(dg), num(row, "gold_diff_mean"), 3e-6, row.toString());
      assertEquals(se(dg), num(row, "gold_diff_se"), 3e-6, row.toString());
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

    // PPO: every curve starts from the same SFT policy, sampled with the same seed, so its first
    // evaluation has the
    // same win rate and gold for every reward; later evaluations carry a standard error over the 2
    // PPO seeds.
    List<Map<String, String>> ppo = csv(out.resolve("ppo.csv"));
    List<MethodAgg> rewards = PpoPhase.rewards(methods);
    assertEquals(rewards.size() * (s.ppoIterations() / s.ppoEvalEvery() + 1), ppo.size());
    Map<String, String> first = ppo.get(0);
    for (Map<String, String> row : ppo) {
      if (row.get("iteration").equals("0")) {
        assertEquals(first.get("win_rate"), row.get("win_rate"), row.toString());
        assertEquals(first.get("gold"), row.get("gold"), row.toString());
        assertEquals("0.000000", row.get("kl"), "the SFT policy's KL to itself: " + row);
      }
    }
    assertEquals(rewards.size(), root.get("ppo").size());
    for (JsonNode c : root.get("ppo")) {
      for (JsonNode p : c.get("points")) {
        assertFalse(
            Double.isNaN(p.get("winRateSe").asDouble()), "a standard error over PPO seeds: " + p);
      }
    }
    assertTrue(md.contains("over 2 PPO seeds"), "the report says PPO ran over seeds");
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
      for (int seed = 0; seed < s.seeds(); seed++) {
        Path seedDir = out.resolve("seed-" + seed);
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
