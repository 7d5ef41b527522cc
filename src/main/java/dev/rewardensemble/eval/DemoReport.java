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
 * rm_accuracy.csv}, {@code paired.csv}, {@code ppo.csv}, the plots, {@code results.json} and {@code
 * report.md}.
 *
 * @param generated responses sampled for the preference data
 * @param cost each method's measured training, scoring and memory cost ({@link LeverReport})
 */
record DemoReport(
    DemoSettings s,
    int generated,
    DemoData.EvalPool pool,
    List<RewardModelsPhase.SeedData> seeds,
    BestOfNResults bon,
    PpoPhase.PpoResults ppo,
    DemoAnalysis.Analysis analysis,
    DemoCost cost) {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Writes the CSVs and the plots. */
  void writeTables() throws IOException {
    Path out = s.out();
    Demo.writeAtomic(out.resolve("bon.csv"), bonCsv());
    Demo.writeAtomic(out.resolve("bon_summary.csv"), bonSummaryCsv());
    Demo.writeAtomic(out.resolve("rm_accuracy.csv"), accuracyCsv());
    Demo.writeAtomic(out.resolve("paired.csv"), pairedCsv());
    Demo.writeAtomic(out.resolve("ppo.csv"), ppoCsv());
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

  /** Writes {@code results.json} and {@code report.md}, with the time per phase. */
  void finish(Map<String, Double> phases, double totalSeconds) throws IOException {
    Demo.writeAtomic(
        s.out().resolve("results.json"),
        JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json(phases, totalSeconds)));
    Demo.writeAtomic(s.out().resolve("report.md"), DemoMarkdown.of(this, phases, totalSeconds));
  }

  private static String line(String format, Object... args) {
    return String.format(Locale.ROOT, format, args);
  }

  String bonCsv() {
    StringBuilder csv = new StringBuilder("seed,method,aggregation,n,kl_bon,gold,proxy,win_rate\n");
    int[] ns = bon.ns();
    for (MethodAgg r : bon.curves().keySet()) {
      for (int ni = 0; ni < ns.length; ni++) {
        double[] g = bon.gold(r.method(), r.agg(), ni), p = bon.proxy(r.method(), r.agg(), ni);
        double[] w = bon.win(r.method(), r.agg(), ni);
        for (int sd = 0; sd < g.length; sd++) {
          csv.append(
              line(
                  "%d,%s,%s,%d,%.6f,%.6f,%.6f,%.6f%n",
                  sd,
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
        DemoAnalysis.Stat sg = DemoAnalysis.Stat.of(bon.gold(r.method(), r.agg(), ni));
        DemoAnalysis.Stat sp = DemoAnalysis.Stat.of(bon.proxy(r.method(), r.agg(), ni));
        DemoAnalysis.Stat sw = DemoAnalysis.Stat.of(bon.win(r.method(), r.agg(), ni));
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
      DemoAnalysis.Stat a = DemoAnalysis.Stat.of(e.getValue().pairAccuracy());
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
            "method,aggregation,versus,n,win_diff_mean,win_diff_se,gold_diff_mean,gold_diff_se\n");
    for (DemoAnalysis.Paired p : analysis.paired()) {
      csv.append(
          line(
              "%s,%s,%s,%d,%.6f,%.6f,%.6f,%.6f%n",
              p.reward().method().name(),
              p.reward().aggLabel(),
              p.versus(),
              p.n(),
              p.win().mean(),
              p.win().se(),
              p.gold().mean(),
              p.gold().se()));
    }
    return csv.toString();
  }

  String ppoCsv() {
    StringBuilder csv = new StringBuilder("method,aggregation,iteration,win_rate,gold,proxy,kl\n");
    for (PpoPhase.PpoCurve c : ppo.curves()) {
      for (PpoPhase.PpoPoint p : c.points()) {
        csv.append(
            line(
                "%s,%s,%d,%.6f,%.6f,%.6f,%.6f%n",
                c.reward().method().name(),
                c.reward().aggLabel(),
                p.iteration(),
                p.winRate(),
                p.gold(),
                p.proxy(),
                p.kl()));
      }
    }
    return csv.toString();
  }

  /** What PPO ran, in words. */
  String ppoNote() {
    if (ppo.curves().isEmpty()) {
      return "PPO was not run (--no-ppo or --ppo-iterations 0).";
    }
    return (s.ppoSeeds() == 1
            ? "PPO ran once (seed 0's reward models, one PPO seed)"
            : "PPO ran "
                + s.ppoSeeds()
                + " times (seed j's reward models with PPO seed j; win rates are means +- standard errors over those seeds)")
        + " for single, independent-"
        + s.k()
        + ", linear-"
        + s.k()
        + " and lora-"
        + s.k()
        + " (ensembles with mean and LCB 0.5), "
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
        + " The lora-1 control is not run with PPO.";
  }

  ObjectNode json(Map<String, Double> phases, double totalSeconds) {
    ObjectNode root = JSON.createObjectNode();
    ObjectNode settings = root.putObject("settings");
    settings.put("full", s.full());
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
    settings.put("eval_prompts", pool.prompts());
    settings.put("pool", pool.size());
    settings.put("max_new_tokens", s.maxNewTokens());
    settings.put("ppo_iterations", s.ppoIterations());
    settings.put("ppo_rollout", s.ppoRollout());
    ArrayNode seedsJson = root.putArray("seeds");
    for (RewardModelsPhase.SeedData d : seeds) {
      ObjectNode sj = seedsJson.addObject();
      sj.put("seed", d.seed());
      sj.put("noisy_pairs", d.noisyPairs());
      sj.put("noisy_flipped", d.noisyFlipped());
      sj.put("clean_pairs", d.cleanPairs());
      sj.put("clean_flipped", d.cleanFlipped());
    }
    root.put("generated_preference_responses", generated);
    root.put("sft_mean_gold", pool.sftMeanGold());
    ArrayNode bonJson = root.putArray("best_of_n");
    int[] ns = bon.ns();
    for (MethodAgg r : bon.curves().keySet()) {
      for (int ni = 0; ni < ns.length; ni++) {
        DemoAnalysis.Stat sg = DemoAnalysis.Stat.of(bon.gold(r.method(), r.agg(), ni));
        DemoAnalysis.Stat sp = DemoAnalysis.Stat.of(bon.proxy(r.method(), r.agg(), ni));
        double[] w = bon.win(r.method(), r.agg(), ni);
        DemoAnalysis.Stat sw = DemoAnalysis.Stat.of(w);
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
        o.set("win_per_seed", JSON.valueToTree(w));
      }
    }
    ArrayNode accJson = root.putArray("reward_models");
    for (Map.Entry<MethodAgg, BestOfNResults.Curves> e : bon.curves().entrySet()) {
      DemoAnalysis.Stat a = DemoAnalysis.Stat.of(e.getValue().pairAccuracy());
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
    }
    ArrayNode ppj = root.putArray("ppo");
    for (PpoPhase.PpoCurve c : ppo.curves()) {
      ObjectNode o = ppj.addObject();
      o.put("method", c.reward().method().name());
      o.put("aggregation", c.reward().aggLabel());
      o.set("points", JSON.valueToTree(c.points()));
    }
    LeverReport.json(root, this);
    root.set("phase_seconds", JSON.valueToTree(phases));
    root.put("ppo_note", ppoNote());
    root.put("total_seconds", totalSeconds);
    return root;
  }
}
