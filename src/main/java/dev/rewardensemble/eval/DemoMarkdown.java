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

  static String of(DemoReport r, Map<String, Double> phases, double totalSeconds) {
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
            "- mode: %s; seeds: %d (reward-model seeds: preference pairs, flips, init, data order)%n",
            s.full() ? "full" : "fast",
            s.seeds()));
    md.append(
        String.format(
            Locale.ROOT,
            "- SFT policy: %d steps; preference data: %d noisy pairs (%.0f%% flipped) and %d cleaner pairs (%.0f%% flipped) per seed, from %d sampled responses%n",
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
    md.append(
        String.format(
            Locale.ROOT,
            "- SFT policy's mean gold score on the pool: %.3f%n",
            r.pool().sftMeanGold()));
    md.append(
        "- ± values are standard errors over seeds"
            + (s.seeds() < 2 ? " (not available with one seed)" : "")
            + "\n\n");

    md.append("## Reward models: accuracy against gold\n\n");
    md.append(
        "Accuracy on every within-prompt pair of held-out pool samples with different gold scores (unflipped gold labels), and the mean Pearson correlation of the members' raw rewards on the pool.\n\n");
    md.append(
        "| method | mean | LCB 0.1 | LCB 0.5 | member correlation |\n|---|---|---|---|---|\n");
    for (DemoMethod mt : bon.methods()) {
      md.append("| ").append(mt.name());
      for (AggregationConfig a : DemoMethod.AGGREGATIONS) {
        md.append(" | ").append(DemoAnalysis.Stat.of(bon.of(mt, a).pairAccuracy()).fmt());
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
        md.append(" | ").append(DemoAnalysis.Stat.of(bon.win(mt, a, last)).fmt());
      }
      md.append(" | ").append(DemoAnalysis.Stat.of(bon.gold(mt, mean, last)).fmt());
      md.append(" | ").append(DemoAnalysis.Stat.of(bon.proxy(mt, mean, last)).fmt()).append(" |\n");
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
        md.append(" ").append(DemoAnalysis.Stat.of(bon.win(mt, mean, ni)).fmt()).append(" |");
      }
      md.append("\n");
    }
    md.append(
        String.format(
            Locale.ROOT,
            "%nPaired by seed, at n = %d (difference in win rate, and in gold score):%n%n",
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

    md.append(LeverReport.levers(r));
    md.append("\n## PPO (Figure 2b analogue)\n\n").append(r.ppoNote()).append("\n\n");
    var ppo = r.ppo().curves();
    if (!ppo.isEmpty()) {
      md.append(
          "Win rate vs SFT and gold score of the PPO policy on held-out prompts (sampled at temperature 1, top-p 0.9); KL = the PPO trainer's estimate (k1, summed over the response, mean over a rollout of training prompts) for the evaluated policy; "
              + (ppo.get(0).seeds() > 1
                  ? "mean +- standard error over " + ppo.get(0).seeds() + " PPO seeds.\n\n"
                  : "one seed, so no standard errors.\n\n"));
      md.append(
          "| reward | iteration | win rate | gold | proxy (mean of members) | KL |\n|---|---|---|---|---|---|\n");
      for (PpoPhase.PpoCurve c : ppo) {
        for (PpoPhase.PpoPoint p : c.points()) {
          md.append(
              String.format(
                  Locale.ROOT,
                  "| %s | %d | %s | %.3f | %.3f | %.3f |%n",
                  c.reward(),
                  p.iteration(),
                  Double.isNaN(p.winRateSe())
                      ? String.format(Locale.ROOT, "%.3f", p.winRate())
                      : String.format(Locale.ROOT, "%.3f ± %.3f", p.winRate(), p.winRateSe()),
                  p.gold(),
                  p.proxy(),
                  p.kl()));
        }
      }
    }

    md.append("\n## Answers\n\n");
    md.append(r.analysis().answers());
    md.append(LeverReport.cost(r));

    md.append(
        "\n## Files\n\n- `results.json`: every number below and above; `bon.csv` (per seed), `bon_summary.csv`,"
            + " `rm_accuracy.csv`, `paired.csv`, `ppo.csv`, `cost.csv`"
            + (s.levers().isEmpty() ? "" : ", `levers.csv`")
            + "\n- plots: `bon_win_vs_n.png` (2a), `ppo_win_vs_iteration.png` (2b),"
            + " `bon_gold_proxy_vs_kl.png` and `ppo_gold_proxy_vs_kl.png` (over-optimisation), `bon_lcb_vs_mean.png` (3-4)\n");
    md.append("\n## Time\n\n| phase | seconds |\n|---|---|\n");
    phases.forEach((k, v) -> md.append(String.format(Locale.ROOT, "| %s | %.1f |%n", k, v)));
    md.append(
        String.format(
            Locale.ROOT, "| **total** | **%.1f** (%.1f min) |%n", totalSeconds, totalSeconds / 60));
    return md.toString();
  }
}
