package dev.rewardensemble.eval;

import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.MemberScores;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.rl.Generation;
import dev.rewardensemble.rl.PpoConfig;
import dev.rewardensemble.rl.PpoTrainer;
import dev.rewardensemble.rl.SamplingConfig;
import dev.rewardensemble.rl.SequenceScorer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;

/**
 * Phase 6: PPO against single, independent, linear and LoRA rewards (the ensembles with mean and
 * LCB 0.5; not the LoRA control), seed j's reward models with PPO seed j, evaluated every few
 * iterations with the gold judge.
 */
public final class PpoPhase {
  private PpoPhase() {}

  /** Samples per held-out prompt in a PPO evaluation. */
  static final int EVAL_SAMPLES = 4;

  /** One evaluation of a PPO policy ({@code winRateSe}: NaN for a single run). */
  public record PpoPoint(
      int iteration, double winRate, double gold, double proxy, double kl, double winRateSe) {}

  /** A PPO curve, the mean over {@code seeds} runs (standard error of the win rate across them). */
  public record PpoCurve(MethodAgg reward, List<PpoPoint> points, int seeds) {
    static PpoCurve mean(List<PpoCurve> runs) {
      PpoCurve first = runs.get(0);
      int n = runs.size();
      List<PpoPoint> pts = new ArrayList<>();
      for (int i = 0; i < first.points().size(); i++) {
        double[] win = new double[n];
        double gold = 0, proxy = 0, kl = 0;
        for (int r = 0; r < n; r++) {
          PpoPoint q = runs.get(r).points().get(i);
          win[r] = q.winRate();
          gold += q.gold() / n;
          proxy += q.proxy() / n;
          kl += q.kl() / n;
        }
        DemoAnalysis.Stat st = DemoAnalysis.Stat.of(win);
        pts.add(
            new PpoPoint(
                first.points().get(i).iteration(),
                st.mean(),
                gold,
                proxy,
                kl,
                n > 1 ? st.se() : Double.NaN));
      }
      return new PpoCurve(first.reward(), pts, n);
    }

    PpoPoint lastPoint() {
      return points.get(points.size() - 1);
    }
  }

  /**
   * The PPO curves (empty when PPO was not run).
   *
   * @param evalPrompts held-out prompts of an evaluation
   */
  record PpoResults(List<PpoCurve> curves, int evalPrompts) {}

  /** The rewards PPO runs against. */
  static List<MethodAgg> rewards(List<DemoMethod> methods) {
    List<MethodAgg> out = new ArrayList<>();
    for (DemoMethod m : methods) {
      if (m.leverRow()) {
        continue; // Best-of-n only
      }
      if (m.kind() == EnsembleKind.SINGLE) {
        out.add(m.with(AggregationConfig.mean()));
      } else if (m.ensemble()) {
        out.add(m.with(AggregationConfig.mean()));
        out.add(m.with(AggregationConfig.lcb(0.5)));
      }
    }
    return out;
  }

  static PpoResults run(
      DemoSettings s,
      DemoData.Policy policy,
      RewardModelsPhase.RewardModels rms,
      DemoData.EvalPool pool,
      PhaseTimer timer)
      throws IOException {
    if (s.ppoIterations() == 0) {
      return new PpoResults(List.of(), 0);
    }
    List<Task> ppoEval = pool.tasks().subList(0, Math.min(s.ppoEvalPrompts(), pool.tasks().size()));
    List<PpoCurve> curves = new ArrayList<>();
    for (MethodAgg reward : rewards(rms.methods())) {
      curves.add(
          timer.time(
              "PPO with " + reward + " (" + s.ppoIterations() + " iterations)",
              () -> {
                List<PpoCurve> runs = new ArrayList<>();
                for (int j = 0; j < s.ppoSeeds(); j++) {
                  runs.add(
                      runPpo(
                          s,
                          policy,
                          rms.dirs().get(reward.method()).get(j),
                          reward,
                          ppoEval,
                          pool.gold(),
                          timer.log(),
                          j));
                }
                return PpoCurve.mean(runs);
              }));
    }
    return new PpoResults(List.copyOf(curves), ppoEval.size());
  }

  private static PpoCurve runPpo(
      DemoSettings s,
      DemoData.Policy policy,
      Path rmDir,
      MethodAgg reward,
      List<Task> evalTasks,
      double[][] poolGold,
      Consumer<String> log,
      int ppoSeed)
      throws IOException {
    ExecConfig exec = policy.exec();
    World world = policy.world();
    AggregationConfig agg = reward.agg();
    HfCheckpoint.Checkpoint pol = HfCheckpoint.open(policy.sftDir());
    EnsembleModel em = EnsembleModel.load(rmDir);
    Map<String, FloatTensor> valueTrunk = em.trunkWeights();
    GoldJudge judge = world.judge();
    List<PpoPoint> points = new ArrayList<>();
    try (RewardModel rm = RewardModel.of(em, exec)) {
      SequenceScorer inner = SequenceScorer.of(rm, agg, -1, 64);
      // The reward model reads prompts without BOS (see DemoData.rmSequence); PPO passes responses
      // without EOS.
      SequenceScorer scorer =
          (prompts, responses) ->
              inner.score(
                  prompts.stream()
                      .map(
                          p ->
                              p.length > 1 && p[0] == CharVocabulary.BOS
                                  ? Arrays.copyOfRange(p, 1, p.length)
                                  : p)
                      .toList(),
                  responses);
      PpoConfig cfg =
          PpoConfig.builder()
              .rolloutBatch(s.ppoRollout())
              .stepBatch(s.ppoRollout() / 2)
              .lr(3e-4)
              .warmupSteps(2)
              .klCoef(0.05)
              .missingEosPenalty(1.0)
              .temperature(1.0)
              .maxNewTokens(s.maxNewTokens())
              .seed(42 + ppoSeed)
              .build();
      List<Task> train = new ArrayList<>(world.tasks().train());
      Collections.shuffle(train, new Random(4242 + ppoSeed));
      List<int[]> evalIds = new ArrayList<>();
      for (Task t : evalTasks) {
        for (int r = 0; r < EVAL_SAMPLES; r++) {
          evalIds.add(World.promptIds(t.instruction()));
        }
      }
      try (PpoTrainer trainer =
          new PpoTrainer(pol.config(), pol.weights(), em.config(), valueTrunk, scorer, cfg, exec)) {
        double[] pending = null;
        int cursor = 0;
        for (int it = 0; it <= s.ppoIterations(); it++) {
          if (it % s.ppoEvalEvery() == 0 || it == s.ppoIterations()) {
            List<Generation> gens =
                trainer
                    .sampler()
                    .generate(
                        evalIds,
                        SamplingConfig.bestOfN()
                            .withMaxNewTokens(s.maxNewTokens())
                            .withSeed(777 + it + 100_003L * ppoSeed),
                        64);
            double win = 0, g = 0;
            List<int[]> ps = new ArrayList<>();
            List<int[]> rs = new ArrayList<>();
            for (int i = 0; i < gens.size(); i++) {
              Generation x = gens.get(i);
              int pi = i / EVAL_SAMPLES;
              double gs =
                  judge.score(
                      evalTasks.get(pi).instruction(),
                      World.responseText(x.responseIds()),
                      x.finished());
              g += gs;
              win += BestOfNPhase.winProbability(gs, poolGold[pi]);
              ps.add(x.promptIds());
              int[] r = x.responseIds();
              rs.add(
                  r.length > 0 && r[r.length - 1] == CharVocabulary.EOS
                      ? Arrays.copyOf(r, r.length - 1)
                      : r);
            }
            double proxy =
                scorer.score(ps, rs).stream()
                    .mapToDouble(MemberScores::mean)
                    .average()
                    .orElse(Double.NaN);
            pending = new double[] {it, win / gens.size(), g / gens.size(), proxy};
          }
          List<int[]> batch = new ArrayList<>();
          for (int b = 0; b < s.ppoRollout(); b++) {
            batch.add(World.promptIds(train.get(cursor++ % train.size()).instruction()));
          }
          // The rollout of this step is sampled from the policy just evaluated: its KL estimate is
          // that
          // policy's KL to the SFT reference. After the last evaluation the step only measures the
          // KL.
          PpoTrainer.Stats st = trainer.step(batch);
          if (pending != null) {
            PpoPoint pt =
                new PpoPoint(
                    (int) pending[0], pending[1], pending[2], pending[3], st.kl(), Double.NaN);
            points.add(pt);
            pending = null;
            log.accept(
                String.format(
                    Locale.ROOT,
                    "[demo]   PPO %s %s iteration %d: win %.3f gold %.3f proxy %.3f kl %.3f",
                    reward.method().name(),
                    reward.aggLabel(),
                    pt.iteration(),
                    pt.winRate(),
                    pt.gold(),
                    pt.proxy(),
                    pt.kl()));
          }
          if (it == s.ppoIterations()) {
            break;
          }
        }
      }
    }
    return new PpoCurve(reward, points, 1);
  }
}
