package dev.rewardensemble.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.rl.BestOfN;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The demo's outputs from its typed results: {@code bon.csv}, {@code bon_summary.csv}, {@code
 * rm_accuracy.csv}, {@code paired.csv}, {@code ppo.csv}, {@code ppo_summary.csv}, {@code
 * ppo_paired.csv}, the plots, {@code results.json} and {@code report.md}.
 *
 * @param worlds the worlds of the seed hierarchy, in unit order
 * @param cost each method's measured training, scoring and memory cost ({@link LeverReport})
 */
record DemoReport(
    DemoSettings s,
    List<DemoData.WorldRun> worlds,
    BestOfNResults bon,
    PpoPhase.PpoResults ppo,
    DemoAnalysis.Analysis analysis,
    DemoCost cost) {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Responses sampled for the preference data, per world. */
  int generated() {
    return worlds.get(0).samples().generated();
  }

  /** The first world's pool (every world's has the same prompts count and size). */
  DemoData.EvalPool pool() {
    return worlds.get(0).pool();
  }

  /** Unit {@code u}'s world seed. */
  long worldSeedOf(int u) {
    return worlds.get(bon.world()[u]).policy().world().seed();
  }

  /** Unit {@code u}'s reward-model seed within its world. */
  int seedOf(int u) {
    return u % s.seeds();
  }

  /** Writes the CSVs and the plots. */
  void writeTables() throws IOException {
    Path out = s.out();
    Demo.writeAtomic(out.resolve("bon.csv"), bonCsv());
    Demo.writeAtomic(out.resolve("bon_summary.csv"), bonSummaryCsv());
    Demo.writeAtomic(out.resolve("rm_accuracy.csv"), accuracyCsv());
    Demo.writeAtomic(out.resolve("paired.csv"), pairedCsv());
    Demo.writeAtomic(out.resolve("ppo.csv"), ppoCsv());
    Demo.writeAtomic(out.resolve("ppo_summary.csv"), ppoSummaryCsv());
    Demo.writeAtomic(out.resolve("ppo_paired.csv"), ppoPairedCsv());
    if (!s.levers().isEmpty()) {
      Demo.writeAtomic(out.resolve("levers.csv"), LeverReport.leversCsv(this));
    }
    Demo.writeAtomic(out.resolve("cost.csv"), LeverReport.costCsv(this));
    DemoPlots.winVsN(out.resolve("bon_win_vs_n.png"), bon, AggregationConfig.mean());
    DemoPlots.goldProxyVsKl(out.resolve("bon_gold_proxy_vs_kl.png"), bon);
    DemoPlots.lcbVsMean(out.resolve("bon_lcb_vs_mean.png"), bon);
    DemoPlots.ppoWin(out.resolve("ppo_win_vs_iteration.png"), ppo.curves());
    DemoPlots.ppoVsKl(out.resolve("ppo_gold_proxy_vs_kl.png"), ppo.curves());
  }

  /**
   * Writes {@code results.json} and {@code report.md}, with the time per phase and how the units
   * ran.
   */
  void finish(Map<String, Double> phases, double totalSeconds, DemoParallelism parallelism)
      throws IOException {
    ObjectNode root = json(phases, totalSeconds);
    root.put("parallelism", parallelism.describe());
    root.put("jobs", parallelism.jobs());
    root.put("threads_per_job", parallelism.threadsPerJob());
    Demo.writeAtomic(
        s.out().resolve("results.json"),
        JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
    Demo.writeAtomic(
        s.out().resolve("report.md"), DemoMarkdown.of(this, phases, totalSeconds, parallelism));
  }

  private static String line(String format, Object... args) {
    return String.format(Locale.ROOT, format, args);
  }

  String bonCsv() {
    StringBuilder csv =
        new StringBuilder("unit,world,seed,method,aggregation,n,kl_bon,gold,proxy,win_rate\n");
    int[] ns = bon.ns();
    for (MethodAgg r : bon.curves().keySet()) {
      for (int ni = 0; ni < ns.length; ni++) {
        double[] g = bon.gold(r.method(), r.agg(), ni), p = bon.proxy(r.method(), r.agg(), ni);
        double[] w = bon.win(r.method(), r.agg(), ni);
        for (int sd = 0; sd < g.length; sd++) {
          csv.append(
              line(
                  "%d,%d,%d,%s,%s,%d,%.6f,%.6f,%.6f,%.6f%n",
                  sd,
                  worldSeedOf(sd),
                  seedOf(sd),
                  r.method().name(),
                  r.aggLabel(),
                  ns[ni],
                  BestOfN.kl(ns[ni]),
                  g[sd],
                  p[sd],
                  w[sd]));
        }
      }
    }
    return csv.toString();
  }

  String bonSummaryCsv() {
    StringBuilder csv =
        new StringBuilder(
            "method,aggregation,n,kl_bon,gold_mean,gold_se,proxy_mean,proxy_se,win_mean,win_se\n");
    int[] ns = bon.ns();
    for (MethodAgg r : bon.curves().keySet()) {
      for (int ni = 0; ni < ns.length; ni++) {
        DemoAnalysis.Stat sg = bon.stat(bon.gold(r.method(), r.agg(), ni));
        DemoAnalysis.Stat sp = bon.stat(bon.proxy(r.method(), r.agg(), ni));
        DemoAnalysis.Stat sw = bon.stat(bon.win(r.method(), r.agg(), ni));
        csv.append(
            line(
                "%s,%s,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f%n",
                r.method().name(),
                r.aggLabel(),
                ns[ni],
                BestOfN.kl(ns[ni]),
                sg.mean(),
                sg.se(),
                sp.mean(),
                sp.se(),
                sw.mean(),
                sw.se()));
      }
    }
    return csv.toString();
  }

  /** The mean over seeds of the members' correlation (NaN for K = 1). */
  double correlation(DemoMethod m) {
    return Arrays.stream(bon.members().get(m).correlation()).average().orElse(Double.NaN);
  }

  String accuracyCsv() {
    StringBuilder csv =
        new StringBuilder(
            "method,aggregation,gold_pair_accuracy_mean,gold_pair_accuracy_se,member_correlation_mean\n");
    for (Map.Entry<MethodAgg, BestOfNResults.Curves> e : bon.curves().entrySet()) {
      DemoAnalysis.Stat a = bon.stat(e.getValue().pairAccuracy());
      csv.append(
          line(
              "%s,%s,%.6f,%.6f,%.6f%n",
              e.getKey().method().name(),
              e.getKey().aggLabel(),
              a.mean(),
              a.se(),
              correlation(e.getKey().method())));
    }
    return csv.toString();
  }

  String pairedCsv() {
    StringBuilder csv =
        new StringBuilder(
            "method,aggregation,versus,n,win_diff_mean,win_diff_se,gold_diff_mean,gold_diff_se,"
                + "win_diff_se_units,win_between_sd,win_within_sd,worlds,units\n");
    for (DemoAnalysis.Paired p : analysis.paired()) {
      DemoAnalysis.Hierarchy h = p.winParts();
      csv.append(
          line(
              "%s,%s,%s,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%d,%d%n",
              p.reward().method().name(),
              p.reward().aggLabel(),
              p.versus(),
              p.n(),
              p.win().mean(),
              p.win().se(),
              p.gold().mean(),
              p.gold().se(),
              h.seUnits(),
              h.betweenSd(),
              h.withinSd(),
              h.worlds(),
              h.units()));
    }
    return csv.toString();
  }

  /** Per PPO run and evaluation. */
  String ppoCsv() {
    StringBuilder csv =
        new StringBuilder("method,aggregation,run,world,seed,iteration,win_rate,gold,proxy,kl\n");
    for (PpoPhase.PpoRuns r : ppo.rewards()) {
      for (int j = 0; j < r.runs().size(); j++) {
        int unit = s.ppoUnit(j);
        for (PpoPhase.PpoPoint p : r.runs().get(j).points()) {
          csv.append(
              line(
                  "%s,%s,%d,%d,%d,%d,%.6f,%.6f,%.6f,%.6f%n",
                  r.reward().method().name(),
                  r.reward().aggLabel(),
                  j,
                  worldSeedOf(unit),
                  seedOf(unit),
                  p.iteration(),
                  p.winRate(),
                  p.gold(),
                  p.proxy(),
                  p.kl()));
        }
      }
    }
    return csv.toString();
  }

  /** Per PPO reward and evaluation: means and standard errors over runs. */
  String ppoSummaryCsv() {
    StringBuilder csv =
        new StringBuilder(
            "method,aggregation,iteration,runs,win_mean,win_se,gold_mean,gold_se,proxy_mean,proxy_se,kl_mean,kl_se\n");
    for (PpoPhase.PpoRuns r : ppo.rewards()) {
      for (PpoPhase.PpoStats p : r.stats()) {
        csv.append(
            line(
                "%s,%s,%d,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f%n",
                r.reward().method().name(),
                r.reward().aggLabel(),
                p.iteration(),
                r.runs().size(),
                p.win().mean(),
                p.win().se(),
                p.gold().mean(),
                p.gold().se(),
                p.proxy().mean(),
                p.proxy().se(),
                p.kl().mean(),
                p.kl().se()));
      }
    }
    return csv.toString();
  }

  /** PPO rewards against the single model, paired by run, at the final and the best evaluation. */
  String ppoPairedCsv() {
    StringBuilder csv =
        new StringBuilder(
            "method,aggregation,at,iteration,single_iteration,win_diff_mean,win_diff_se,gold_diff_mean,gold_diff_se,win_diff_se_runs,gold_diff_se_runs\n");
    for (DemoAnalysis.PpoPaired p : analysis.ppoPaired()) {
      csv.append(
          line(
              "%s,%s,%s,%d,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f%n",
              p.reward().method().name(),
              p.reward().aggLabel(),
              p.at(),
              p.iteration(),
              p.singleIteration(),
              p.win().mean(),
              p.win().se(),
              p.gold().mean(),
              p.gold().se(),
              p.winSeRuns(),
              p.goldSeRuns()));
    }
    return csv.toString();
  }

  /** What PPO ran, in words. */
  String ppoNote() {
    if (ppo.curves().isEmpty()) {
      return "PPO was not run (--no-ppo or --ppo-iterations 0).";
    }
    return (s.ppoSeeds() == 1
            ? "PPO ran once (the first world's seed-0 reward models, one PPO seed)"
            : "PPO ran "
                + s.ppoSeeds()
                + " times per reward (run j: the SFT policy of world j mod "
                + s.worlds()
                + ", that world's reward models of seed j div "
                + s.worlds()
                + ", PPO seed j; runs of different rewards with the same j are paired)")
        + String.format(
            Locale.ROOT,
            " with learning rate %.0e, KL coefficient %s, %d new tokens per response,",
            s.ppoLr(),
            s.ppoKlCoef() == 0 ? "0 (no KL penalty)" : String.valueOf(s.ppoKlCoef()),
            s.ppoMaxNewTokens())
        + " for single, independent-"
        + s.k()
        + ", linear-"
        + s.k()
        + " and lora-"
        + s.k()
        + " (ensembles with mean and LCB 0.5)"
        + (s.ppoLevers().isEmpty()
            ? ""
            : " and the lever row"
                + (s.ppoLevers().size() > 1 ? "s " : " ")
                + String.join(", ", s.ppoLevers().stream().map(l -> l.rowName(s.k())).toList())
                + " (mean)")
        + ", "
        + s.ppoIterations()
        + " iterations of "
        + s.ppoRollout()
        + " rollouts each; the policy is evaluated every "
        + s.ppoEvalEvery()
        + " iterations on "
        + ppo.evalPrompts()
        + " held-out prompts x "
        + PpoPhase.EVAL_SAMPLES
        + " samples."
        + " The lora-1 control and the WARM models are not run with PPO"
        + (s.levers().size() > s.ppoLevers().size() ? ", nor the other lever rows." : ".");
  }

  ObjectNode json(Map<String, Double> phases, double totalSeconds) {
    ObjectNode root = JSON.createObjectNode();
    ObjectNode settings = root.putObject("settings");
    settings.put("full", s.full());
    settings.put("worlds", s.worlds());
    settings.put("world_seed", s.worldSeed());
    settings.put("seeds", s.seeds());
    settings.put("k", s.k());
    settings.put("sft_steps", s.sftSteps());
    settings.put("preference_pairs", s.preferencePairs());
    settings.put("clean_pairs", s.cleanPairs());
    settings.put("noise", s.noise());
    settings.put("clean_noise", s.cleanNoise());
    settings.put("rm_epochs", s.rmEpochs());
    settings.put("rm_batch", s.rmBatch());
    settings.put("rm_lr", s.rmLr());
    settings.put("lora_lr", s.loraLr());
    settings.put("eval_prompts", pool().prompts());
    settings.put("pool", pool().size());
    settings.put("max_new_tokens", s.maxNewTokens());
    settings.put("ppo_iterations", s.ppoIterations());
    settings.put("ppo_rollout", s.ppoRollout());
    settings.put("ppo_seeds", s.ppoSeeds());
    settings.put("ppo_lr", s.ppoLr());
    settings.put("ppo_kl_coef", s.ppoKlCoef());
    settings.put("ppo_max_new_tokens", s.ppoMaxNewTokens());
    ArrayNode leversJson = settings.putArray("levers");
    s.levers().forEach(l -> leversJson.add(l.id()));
    ArrayNode ppoLeversJson = settings.putArray("ppo_levers");
    s.ppoLevers().forEach(l -> ppoLeversJson.add(l.id()));
    ArrayNode worldsJson = root.putArray("worlds");
    for (DemoData.WorldRun w : worlds) {
      ObjectNode wj = worldsJson.addObject();
      wj.put("world_seed", w.policy().world().seed());
      wj.put("sft_mean_gold", w.pool().sftMeanGold());
      wj.put("generated_preference_responses", w.samples().generated());
      ArrayNode seedsJson = wj.putArray("seeds");
      for (RewardModelsPhase.SeedData d : w.rms().seeds()) {
        ObjectNode sj = seedsJson.addObject();
        sj.put("seed", d.seed());
        sj.put("noisy_pairs", d.noisyPairs());
        sj.put("noisy_flipped", d.noisyFlipped());
        sj.put("clean_pairs", d.cleanPairs());
        sj.put("clean_flipped", d.cleanFlipped());
      }
    }
    ArrayNode bonJson = root.putArray("best_of_n");
    int[] ns = bon.ns();
    for (MethodAgg r : bon.curves().keySet()) {
      for (int ni = 0; ni < ns.length; ni++) {
        DemoAnalysis.Stat sg = bon.stat(bon.gold(r.method(), r.agg(), ni));
        DemoAnalysis.Stat sp = bon.stat(bon.proxy(r.method(), r.agg(), ni));
        double[] w = bon.win(r.method(), r.agg(), ni);
        DemoAnalysis.Stat sw = bon.stat(w);
        ObjectNode o = bonJson.addObject();
        o.put("method", r.method().name());
        o.put("aggregation", r.aggLabel());
        o.put("n", ns[ni]);
        o.put("kl_bon", BestOfN.kl(ns[ni]));
        o.put("gold_mean", sg.mean());
        o.put("gold_se", sg.se());
        o.put("proxy_mean", sp.mean());
        o.put("proxy_se", sp.se());
        o.put("win_mean", sw.mean());
        o.put("win_se", sw.se());
        o.set("win_per_unit", JSON.valueToTree(w));
      }
    }
    ArrayNode accJson = root.putArray("reward_models");
    for (Map.Entry<MethodAgg, BestOfNResults.Curves> e : bon.curves().entrySet()) {
      DemoAnalysis.Stat a = bon.stat(e.getValue().pairAccuracy());
      ObjectNode o = accJson.addObject();
      o.put("method", e.getKey().method().name());
      o.put("aggregation", e.getKey().aggLabel());
      o.put("gold_pair_accuracy_mean", a.mean());
      o.put("gold_pair_accuracy_se", a.se());
      o.put("member_correlation_mean", correlation(e.getKey().method()));
    }
    ArrayNode pj = root.putArray("paired");
    for (DemoAnalysis.Paired p : analysis.paired()) {
      ObjectNode o = pj.addObject();
      o.put("method", p.reward().method().name());
      o.put("aggregation", p.reward().aggLabel());
      o.put("versus", p.versus().toString());
      o.put("n", p.n());
      o.put("win_diff_mean", p.win().mean());
      o.put("win_diff_se", p.win().se());
      o.put("gold_diff_mean", p.gold().mean());
      o.put("gold_diff_se", p.gold().se());
      o.put("win_diff_se_units", p.winParts().seUnits());
      o.put("win_between_sd", p.winParts().betweenSd());
      o.put("win_within_sd", p.winParts().withinSd());
    }
    ArrayNode ppj = root.putArray("ppo");
    for (PpoPhase.PpoRuns r : ppo.rewards()) {
      ObjectNode o = ppj.addObject();
      o.put("method", r.reward().method().name());
      o.put("aggregation", r.reward().aggLabel());
      o.set("points", JSON.valueToTree(r.mean().points()));
      o.set("stats", JSON.valueToTree(r.stats()));
      ArrayNode runs = o.putArray("runs");
      for (PpoPhase.PpoCurve c : r.runs()) {
        runs.add(JSON.valueToTree(c.points()));
      }
    }
    ArrayNode ppp = root.putArray("ppo_paired");
    for (DemoAnalysis.PpoPaired p : analysis.ppoPaired()) {
      ObjectNode o = ppp.addObject();
      o.put("method", p.reward().method().name());
      o.put("aggregation", p.reward().aggLabel());
      o.put("at", p.at());
      o.put("iteration", p.iteration());
      o.put("single_iteration", p.singleIteration());
      o.put("win_diff_mean", p.win().mean());
      o.put("win_diff_se", p.win().se());
      o.put("gold_diff_mean", p.gold().mean());
      o.put("gold_diff_se", p.gold().se());
      o.put("win_diff_se_runs", p.winSeRuns());
      o.put("gold_diff_se_runs", p.goldSeRuns());
    }
    ArrayNode pooledJson = root.putArray("pooled_over_optimisation");
    for (DemoAnalysis.Pooled p : analysis.pooled()) {
      ObjectNode o = pooledJson.addObject();
      o.put("setting", p.setting());
      ArrayNode rewards = o.putArray("rewards");
      p.rewards().forEach(r -> rewards.add(r.toString()));
      o.put("peak", p.peak());
      o.put("end", p.end());
      o.put("win_drop_mean", p.winDrop().mean());
      o.put("win_drop_se", p.winDrop().se());
      if (p.proxyRise() != null) {
        o.put("proxy_rise_mean", p.proxyRise().mean());
        o.put("proxy_rise_se", p.proxyRise().se());
      }
      o.put("shown", p.shown());
    }
    LeverReport.json(root, this);
    ArrayNode families = root.putArray("multiple_comparisons");
    List<Comparisons> all = new java.util.ArrayList<>(analysis.families());
    Comparisons levers = LeverReport.family(this);
    if (levers != null) {
      all.add(levers);
    }
    for (Comparisons f : all) {
      ObjectNode fo = families.addObject();
      fo.put("question", f.name());
      fo.put("method", "holm");
      fo.put("family_wise_alpha", Comparisons.ALPHA);
      ArrayNode tests = fo.putArray("tests");
      List<Comparisons.Comparison> kept = f.kept();
      for (Comparisons.Comparison c : f.tests()) {
        ObjectNode t = tests.addObject();
        t.put("comparison", c.label());
        t.put("diff_mean", c.stat().mean());
        t.put("diff_se", c.stat().se());
        t.put("df", c.stat().df());
        t.put("p", c.p());
        t.put("kept", kept.contains(c));
      }
    }
    root.set("phase_seconds", JSON.valueToTree(phases));
    root.put("ppo_note", ppoNote());
    root.put("total_seconds", totalSeconds);
    return root;
  }
}
