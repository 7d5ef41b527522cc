package dev.rewardensemble.eval;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.rl.BestOfN;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;

/**
 * The demo's {@code report.md}: settings, tables, the answers to Q1-Q3 in words, time per phase.
 */
final class DemoMarkdown {
  private DemoMarkdown() {}

  /**
   * Phase times grouped over worlds, seeds and PPO runs: the name without its {@code "world N "},
   * {@code "seed N: "} and {@code "run N "} parts, to {total seconds, runs}.
   */
  static Map<String, double[]> timeTable(Map<String, Double> phases) {
    Map<String, double[]> out = new java.util.LinkedHashMap<>();
    phases.forEach(
        (k, v) -> {
          String g = k.replaceAll("^world \\d+ ", "").replaceAll("(seed|run) \\d+:? ", "");
          double[] t = out.computeIfAbsent(g, x -> new double[2]);
          t[0] += v;
          t[1] += 1;
        });
    return out;
  }

  private static String num(double x) {
    return Double.isNaN(x) ? "—" : String.format(Locale.ROOT, "%.3f", x);
  }

  private static String worlds(int w) {
    return w < 0 ? "—" : Integer.toString(w);
  }

  static String of(
      DemoReport r, Map<String, Double> phases, double totalSeconds, DemoParallelism parallelism) {
    DemoSettings s = r.s();
    BestOfNResults bon = r.bon();
    int[] ns = bon.ns();
    int last = bon.last();
    int nMax = ns[last];
    AggregationConfig mean = AggregationConfig.mean();
    StringBuilder md = new StringBuilder();
    md.append("# rme demo: reward-model ensembles in a gold-judge world\n\n");
    md.append(
        "Reproduction, offline and on one CPU, of the questions of Zhang et al. 2024, *Improving RLHF with"
            + " Efficient Reward Model Ensemble*: **Q1** do ensembles improve Best-of-n and PPO over a single reward"
            + " model? **Q2** which ensemble is best? **Q3** mean or lower confidence bound (LCB)?\n\n");
    md.append(
        "Every number below is measured with the world's gold judge (`GoldJudge`), which the reward models"
            + " never see; they learn from preference pairs sampled from the SFT policy and labelled by the gold judge"
            + " with a fraction of labels flipped.\n\n");
    md.append("## Settings\n\n");
    md.append(
        String.format(
            Locale.ROOT,
            "- mode: %s; %d world(s) (seeds %d..%d: each its own prompt split, demonstrations and SFT policy) x %d reward-model seeds per world (preference pairs, flips, init, data order) = %d units%n",
            s.full() ? "full" : "fast",
            s.worlds(),
            s.worldSeed(),
            s.worldSeed(s.worlds() - 1),
            s.seeds(),
            s.units()));
    md.append(
        String.format(
            Locale.ROOT,
            "- SFT policy: %d steps; preference data: %d noisy pairs (%.0f%% flipped) and %d cleaner pairs (%.0f%% flipped) per seed, from %d sampled responses per world%n",
            s.sftSteps(),
            s.preferencePairs(),
            100 * s.noise(),
            s.cleanPairs(),
            100 * s.cleanNoise(),
            r.generated()));
    md.append(
        String.format(
            Locale.ROOT,
            "- reward models: base = the SFT policy's trunk, RAW template, %d epoch(s), batch %d, lr %.0e (LoRA phase 2 lr %.0e), K = %d%n",
            s.rmEpochs(),
            s.rmBatch(),
            s.rmLr(),
            s.loraLr(),
            s.k()));
    md.append(
        "- methods: `single`; `independent-K` (K full reward models); `linear-K` (one trunk, K bootstrap heads);"
            + " `lora-K` (phase 1: linear ensemble on the noisy set; phase 2: K LoRA adapters on the cleaner set);"
            + " `lora-1-control` (the same two phases with K = 1, so the cleaner data is not credited to ensembling);"
            + " `warm-independent-K`, `warm-lora-K` (WARM: that ensemble's members averaged weight by weight into one"
            + " model by `rme merge`, LoRA adapters folded into the trunk: one model's inference cost; its merge and"
            + " scoring times are under Time)\n");
    md.append(LeverReport.methodsNote(s));
    md.append(
        String.format(
            Locale.ROOT,
            "- Best-of-n: %d held-out prompts, a pool of %d SFT samples per prompt (temperature 1, top-p 0.9, %d new tokens), expectations exact over all n-subsets; n in %s%n",
            r.pool().prompts(),
            r.pool().size(),
            s.maxNewTokens(),
            Arrays.toString(ns)));
    md.append(
        "- win rate vs SFT: probability that the chosen response beats a random SFT sample of the same prompt under the gold judge (ties count 1/2); 0.5 = no better than SFT\n");
    md.append("- SFT policy's mean gold score on its world's pool:");
    for (DemoData.WorldRun w : r.worlds()) {
      md.append(
          String.format(
              Locale.ROOT, " world %d: %.3f;", w.policy().world().seed(), w.pool().sftMeanGold()));
    }
    md.setLength(md.length() - 1);
    md.append("\n");
    md.append(
        s.worlds() >= 2
            ? "- ± values are hierarchical standard errors: each world's mean over its reward-model seeds, then the"
                + " standard error of those means over the worlds (differences are paired within a world and seed"
                + " first); they cover the draw of the world and its SFT policy as well as the reward-model seeds\n\n"
            : "- ± values are standard errors over reward-model seeds of one world"
                + (s.seeds() < 2 ? " (not available with one seed)" : "")
                + "; they do not cover the draw of the world and its SFT policy\n\n");

    md.append("## Reward models: accuracy against gold\n\n");
    md.append(
        "Accuracy on every within-prompt pair of held-out pool samples with different gold scores (unflipped gold labels), and the mean Pearson correlation of the members' raw rewards on the pool.\n\n");
    md.append(
        "| method | mean | LCB 0.1 | LCB 0.5 | member correlation |\n|---|---|---|---|---|\n");
    for (DemoMethod mt : bon.methods()) {
      md.append("| ").append(mt.name());
      for (AggregationConfig a : DemoMethod.AGGREGATIONS) {
        md.append(" | ").append(bon.stat(bon.of(mt, a).pairAccuracy()).fmt());
      }
      double corr = r.correlation(mt);
      md.append(" | ")
          .append(Double.isNaN(corr) ? "—" : String.format(Locale.ROOT, "%.3f", corr))
          .append(" |\n");
    }

    md.append("\n## Best-of-n (Figure 2a analogue)\n\n");
    md.append(
        String.format(
            Locale.ROOT,
            "Win rate vs SFT at n = %d (KL = %.2f nats), by method and aggregation:%n%n",
            nMax,
            BestOfN.kl(nMax)));
    md.append(
        "| method | mean | LCB 0.1 | LCB 0.5 | gold (mean agg.) | proxy (mean agg.) |\n|---|---|---|---|---|---|\n");
    for (DemoMethod mt : bon.methods()) {
      md.append("| ").append(mt.name());
      for (AggregationConfig a : DemoMethod.AGGREGATIONS) {
        md.append(" | ").append(bon.stat(bon.win(mt, a, last)).fmt());
      }
      md.append(" | ").append(bon.stat(bon.gold(mt, mean, last)).fmt());
      md.append(" | ").append(bon.stat(bon.proxy(mt, mean, last)).fmt()).append(" |\n");
    }
    md.append("\nWin rate vs n (mean aggregation):\n\n| method |");
    for (int n : ns) {
      md.append(" n=").append(n).append(" |");
    }
    md.append("\n|---|");
    for (int n : ns) {
      md.append("---|");
    }
    md.append("\n");
    for (DemoMethod mt : bon.methods()) {
      md.append("| ").append(mt.name()).append(" |");
      for (int ni = 0; ni < ns.length; ni++) {
        md.append(" ").append(bon.stat(bon.win(mt, mean, ni)).fmt()).append(" |");
      }
      md.append("\n");
    }
    md.append(
        String.format(
            Locale.ROOT,
            "%nPaired within world and seed, at n = %d (difference in win rate, and in gold score):%n%n",
            nMax));
    md.append(
        "| method | aggregation | versus | win-rate difference | gold difference |\n|---|---|---|---|---|\n");
    for (DemoAnalysis.Paired p : r.analysis().paired()) {
      md.append("| ")
          .append(
              String.join(
                  " | ",
                  p.reward().method().name(),
                  p.reward().aggLabel(),
                  p.versus().toString(),
                  p.win().fmt(),
                  p.gold().fmt()))
          .append(" |\n");
    }

    md.append(
        String.format(
            Locale.ROOT,
            "%nWhere the uncertainty of the headline differences (win rate at n = %d, mean aggregation, paired"
                + " within world and seed) comes from: the hierarchical standard error, the one that treats all %d"
                + " units as independent (what a single-world demo reports), and the estimated standard deviations"
                + " of the world effect (between worlds) and of reward-model seeds within a world (one-way ANOVA,"
                + " method of moments):%n%n",
            nMax,
            s.units()));
    md.append(
        String.format(
            Locale.ROOT,
            "| method | versus | win-rate difference | SE over units as if independent | between-world SD | within-world SD | worlds of %d seeds for SE 0.02 / 0.01 |%n|---|---|---|---|---|---|---|%n",
            s.seeds()));
    for (DemoAnalysis.Paired p : r.analysis().paired()) {
      if (!p.reward().agg().equals(mean)) {
        continue;
      }
      DemoAnalysis.Hierarchy h = p.winParts();
      md.append(
          String.format(
              Locale.ROOT,
              "| %s | %s | %s | %s | %s | %s | %s / %s |%n",
              p.reward().method().name(),
              p.versus(),
              p.win().fmt(),
              num(h.seUnits()),
              num(h.betweenSd()),
              num(h.withinSd()),
              worlds(DemoAnalysis.worldsFor(h, s.seeds(), 0.02)),
              worlds(DemoAnalysis.worldsFor(h, s.seeds(), 0.01))));
    }

    md.append(LeverReport.levers(r));
    md.append("\n## PPO (Figure 2b analogue)\n\n").append(r.ppoNote()).append("\n\n");
    var ppo = r.ppo().rewards();
    if (!ppo.isEmpty()) {
      int runs = ppo.get(0).runs().size();
      md.append(
          "Win rate vs SFT, gold score and proxy reward of the PPO policy on held-out prompts (sampled at temperature 1, top-p 0.9); KL = the PPO trainer's estimate (k1, summed over the response, mean over a rollout of training prompts) for the evaluated policy; "
              + (runs > 1
                  ? "mean ± standard error over "
                      + runs
                      + " PPO runs (hierarchical over their worlds).\n\n"
                  : "one run, so no standard errors.\n\n"));
      md.append(
          "| reward | iteration | win rate | gold | proxy (mean of members) | KL |\n|---|---|---|---|---|---|\n");
      for (PpoPhase.PpoRuns c : ppo) {
        for (PpoPhase.PpoStats p : c.stats()) {
          md.append(
              String.format(
                  Locale.ROOT,
                  "| %s | %d | %s | %s | %s | %s |%n",
                  c.reward(),
                  p.iteration(),
                  p.win().fmt(),
                  p.gold().fmt(),
                  p.proxy().fmt(),
                  p.kl().fmt()));
        }
      }
      if (!r.analysis().ppoPaired().isEmpty()) {
        md.append(
            "\nPaired by run against the single model, at the final evaluation and at each reward's best (the"
                + " evaluation where its mean win rate peaks). Each standard error is at least the pooled one"
                + " of all rewards' differences at that point (their root mean square): with a few PPO runs a"
                + " difference's own standard error can be small by chance (a fast run's +0.065 ± 0.004 came"
                + " out -0.085 ± 0.032 on other worlds); the own ones are in `ppo_paired.csv`"
                + " (`win_diff_se_runs`):\n\n"
                + "| reward | at | iteration (vs single's) | win-rate difference | gold difference |\n|---|---|---|---|---|\n");
        for (DemoAnalysis.PpoPaired p : r.analysis().ppoPaired()) {
          md.append(
              String.format(
                  Locale.ROOT,
                  "| %s | %s | %d (%d) | %s | %s |%n",
                  p.reward(),
                  p.at(),
                  p.iteration(),
                  p.singleIteration(),
                  p.win().stat().fmt(),
                  p.gold().stat().fmt()));
        }
      }
      md.append(
          "\nOver-optimisation: from each reward's win-rate peak to the last evaluation, paired by run:\n\n"
              + "| reward | peak iteration | win-rate drop | gold drop | proxy rise |\n|---|---|---|---|---|\n");
      for (DemoAnalysis.OverOptimisation o : r.analysis().overOptimisation()) {
        md.append(
            String.format(
                Locale.ROOT,
                "| %s | %d | %s | %s | %s |%n",
                o.reward(),
                o.peakIteration(),
                o.winDrop().stat().fmt(),
                o.goldDrop().stat().fmt(),
                o.proxyRise().stat().fmt()));
      }
    }

    md.append("\n## Answers\n\n");
    md.append(r.analysis().answers());
    md.append(LeverReport.cost(r));

    md.append(
        "\n## Files\n\n- `results.json`: every number below and above; `bon.csv` (per unit: world and seed),"
            + " `bon_summary.csv`, `rm_accuracy.csv`, `paired.csv`, `ppo.csv` (per run), `ppo_summary.csv`,"
            + " `ppo_paired.csv`, `cost.csv`"
            + (s.levers().isEmpty() ? "" : ", `levers.csv`")
            + "\n- plots: `bon_win_vs_n.png` (2a), `ppo_win_vs_iteration.png` (2b),"
            + " `bon_gold_proxy_vs_kl.png` and `ppo_gold_proxy_vs_kl.png` (over-optimisation), `bon_lcb_vs_mean.png` (3-4)\n");
    md.append(
        "\n## Time\n\nUnits (worlds, then PPO runs"
            + (parallelism.jobs() == 1
                ? ""
                : ", each PPO run started as soon as its world was done")
            + "): "
            + parallelism.describe()
            + ". Phases summed over worlds, seeds and PPO runs (each run's time is in `results.json`,"
            + " `phase_seconds`)"
            + (parallelism.jobs() == 1
                ? ""
                : "; units that ran at once overlap, so the phases add up to more than the total")
            + ":\n\n| phase | runs | seconds | seconds per run |\n|---|---|---|---|\n");
    timeTable(phases)
        .forEach(
            (k, v) ->
                md.append(
                    String.format(
                        Locale.ROOT,
                        "| %s | %d | %.1f | %.1f |%n",
                        k,
                        (int) v[1],
                        v[0],
                        v[0] / v[1])));
    md.append(
        String.format(
            Locale.ROOT,
            "| **total** | | **%.1f** (%.1f min) | |%n",
            totalSeconds,
            totalSeconds / 60));
    return md.toString();
  }
}
