package dev.rewardensemble.eval;

import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.MemberScores;
import dev.rewardensemble.rl.BestOfN;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Phase 5: in one world, every reward model scores the world's held-out pool once; Best-of-n
 * curves, pair accuracy, member correlation ({@link BestOfNResults#concat} joins the worlds).
 */
final class BestOfNPhase {
  private BestOfNPhase() {}

  /** The n of the Best-of-n curves: powers of two up to the pool, and the pool itself. */
  static int[] nsFor(int pool) {
    int[] all = {1, 2, 4, 8, 16, 32, 64, 128, 200};
    List<Integer> out = new ArrayList<>();
    for (int n : all) {
      if (n <= pool) {
        out.add(n);
      }
    }
    if (out.get(out.size() - 1) != pool) {
      out.add(pool);
    }
    return out.stream().mapToInt(Integer::intValue).toArray();
  }

  static BestOfNResults run(
      DemoSettings s,
      ExecConfig exec,
      RewardModelsPhase.RewardModels rms,
      DemoData.EvalPool pool,
      PhaseTimer timer,
      String tag)
      throws IOException {
    int[] ns = nsFor(s.pool());
    int seeds = s.seeds();
    List<DemoMethod> methods = rms.methods();
    Map<MethodAgg, BestOfNResults.Curves> curves = new LinkedHashMap<>();
    Map<DemoMethod, BestOfNResults.Members> members = new LinkedHashMap<>();
    for (DemoMethod mt : methods) {
      for (AggregationConfig a : DemoMethod.AGGREGATIONS) {
        curves.put(
            mt.with(a),
            new BestOfNResults.Curves(
                new double[seeds][], new double[seeds][], new double[seeds][], new double[seeds]));
      }
      members.put(
          mt,
          new BestOfNResults.Members(new double[seeds][], new double[seeds][], new double[seeds]));
    }
    for (int seed = 0; seed < seeds; seed++) {
      for (DemoMethod mt : methods) {
        int sd = seed;
        Path rmDir = rms.dirs().get(mt).get(seed);
        timer.time(
            tag + "seed " + seed + ": score pool with " + mt.name(),
            () -> {
              score(rmDir, exec, mt, sd, pool, ns, curves, members.get(mt), timer.cost());
              return null;
            });
      }
    }
    return new BestOfNResults(methods, ns, seeds, curves, members);
  }

  private static void score(
      Path rmDir,
      ExecConfig exec,
      DemoMethod mt,
      int seed,
      DemoData.EvalPool pool,
      int[] ns,
      Map<MethodAgg, BestOfNResults.Curves> curves,
      BestOfNResults.Members alone,
      DemoCost cost)
      throws IOException {
    int P = pool.prompts();
    int m = pool.size();
    long t0 = System.nanoTime();
    try (RewardModel rm = RewardModel.load(rmDir, exec)) {
      long t1 = System.nanoTime();
      float[][] raw = rm.score(pool.sequences(), 128);
      cost.scored(mt, (t1 - t0) / 1e9, (System.nanoTime() - t1) / 1e9, rm.variableBytes());
      for (AggregationConfig a : DemoMethod.AGGREGATIONS) {
        BestOfNResults.Curves c = curves.get(mt.with(a));
        double[][] agg = new double[P][m];
        double[][] proxyMean = new double[P][m];
        for (int p = 0; p < P; p++) {
          for (int j = 0; j < m; j++) {
            MemberScores ms = rm.aggregate(raw[p * m + j], a);
            agg[p][j] = ms.reward();
            proxyMean[p][j] = ms.mean();
          }
        }
        int[][] ranked = rankings(agg); // sorted once for the three curves
        c.gold()[seed] = curve(ranked, pool.gold(), ns);
        c.proxy()[seed] = curve(ranked, proxyMean, ns);
        c.win()[seed] = curve(ranked, pool.winVsSft(), ns);
        c.pairAccuracy()[seed] = pairAccuracy(agg, pool.gold());
      }
      int K = rm.heads();
      double[][] winAlone = new double[K][];
      double[][] goldAlone = new double[K][];
      double[][][] memberScores = new double[K][P][m];
      for (int k = 0; k < K; k++) {
        for (int p = 0; p < P; p++) {
          for (int j = 0; j < m; j++) {
            memberScores[k][p][j] = raw[p * m + j][k];
          }
        }
        int[][] ranked = rankings(memberScores[k]);
        winAlone[k] = curve(ranked, pool.winVsSft(), ns);
        goldAlone[k] = curve(ranked, pool.gold(), ns);
      }
      alone.win()[seed] = meanRows(winAlone);
      alone.gold()[seed] = meanRows(goldAlone);
      alone.correlation()[seed] = K < 2 ? Double.NaN : meanCorrelation(memberScores);
    }
  }

  /** Probability that a response of gold score {@code g} beats a random pool sample (ties 1/2). */
  static double winProbability(double g, double[] pool) {
    double w = 0;
    for (double x : pool) {
      w += x < g - PreferenceBuilder.TIE ? 1 : Math.abs(x - g) <= PreferenceBuilder.TIE ? 0.5 : 0;
    }
    return w / pool.length;
  }

  /** Per prompt, the candidates ranked by {@code select} ({@link BestOfN#ranking}). */
  static int[][] rankings(double[][] select) {
    int[][] out = new int[select.length][];
    for (int p = 0; p < select.length; p++) {
      out[p] = BestOfN.ranking(select[p]);
    }
    return out;
  }

  /**
   * {@code [nIndex]}: the Best-of-n expected {@code value}, choosing by the score the prompts'
   * candidates were {@link #rankings ranked} by, averaged over prompts.
   */
  static double[] curve(int[][] ranked, double[][] value, int[] ns) {
    double[] sum = new double[ns.length];
    for (int p = 0; p < ranked.length; p++) {
      for (int i = 0; i < ns.length; i++) {
        sum[i] += BestOfN.expected(ranked[p], value[p], ns[i]); // prompts summed in order
      }
    }
    double[] out = new double[ns.length];
    for (int i = 0; i < ns.length; i++) {
      out[i] = sum[i] / ranked.length;
    }
    return out;
  }

  /**
   * Fraction of within-prompt pool pairs with different gold scores that the proxy orders like gold
   * (ties 1/2).
   */
  static double pairAccuracy(double[][] proxy, double[][] gold) {
    double right = 0;
    long pairs = 0;
    for (int p = 0; p < proxy.length; p++) {
      for (int i = 0; i < proxy[p].length; i++) {
        for (int j = i + 1; j < proxy[p].length; j++) {
          double dg = gold[p][i] - gold[p][j];
          if (Math.abs(dg) <= PreferenceBuilder.TIE) {
            continue;
          }
          double dp = proxy[p][i] - proxy[p][j];
          right += dp == 0 ? 0.5 : (dp > 0) == (dg > 0) ? 1 : 0;
          pairs++;
        }
      }
    }
    return pairs == 0 ? Double.NaN : right / pairs;
  }

  private static double[] meanRows(double[][] rows) {
    double[] out = new double[rows[0].length];
    for (double[] r : rows) {
      for (int i = 0; i < out.length; i++) {
        out[i] += r[i] / rows.length;
      }
    }
    return out;
  }

  private static double meanCorrelation(double[][][] members) {
    int K = members.length;
    List<double[]> flat = new ArrayList<>();
    for (double[][] mk : members) {
      flat.add(Arrays.stream(mk).flatMapToDouble(Arrays::stream).toArray());
    }
    double sum = 0;
    int n = 0;
    for (int a = 0; a < K; a++) {
      for (int b = a + 1; b < K; b++) {
        sum += pearson(flat.get(a), flat.get(b));
        n++;
      }
    }
    return sum / n;
  }

  static double pearson(double[] x, double[] y) {
    double mx = Arrays.stream(x).average().orElse(0), my = Arrays.stream(y).average().orElse(0);
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < x.length; i++) {
      sxy += (x[i] - mx) * (y[i] - my);
      sxx += (x[i] - mx) * (x[i] - mx);
      syy += (y[i] - my) * (y[i] - my);
    }
    return sxx == 0 || syy == 0 ? Double.NaN : sxy / Math.sqrt(sxx * syy);
  }
}
