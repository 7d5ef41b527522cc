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
 * LCB 0.5; not the LoRA control or the WARM models) and the lever rows of {@link
 * DemoSettings#ppoLevers} (mean), several runs each (run j: the reward models of one unit of the
 * seed hierarchy, PPO seed j), evaluated every few iterations with the gold judge.
 */
public final class PpoPhase {
  private PpoPhase() {}

  /** Samples per held-out prompt in a PPO evaluation. */
  static final int EVAL_SAMPLES = 4;

  /** One evaluation of a PPO policy ({@code winRateSe}: NaN for a single run). */
  public record PpoPoint(
      int iteration, double winRate, double gold, double proxy, double kl, double winRateSe) {}

  /** A PPO curve: one run, or the mean over {@code seeds} runs (standard error of the win rate). */
  public record PpoCurve(MethodAgg reward, List<PpoPoint> points, int seeds) {
    /** The plain mean of runs (the standard error over runs as if independent). */
    static PpoCurve mean(List<PpoCurve> runs) {
      int[] world = new int[runs.size()];
      for (int i = 0; i < world.length; i++) {
        world[i] = i;
      }
      return new PpoRuns(runs.get(0).reward(), runs, world).mean();
    }

    PpoPoint lastPoint() {
      return points.get(points.size() - 1);
    }
  }

  /** One evaluation over runs: hierarchical means and standard errors ({@link DemoAnalysis}). */
  public record PpoStats(
      int iteration,
      DemoAnalysis.Stat win,
      DemoAnalysis.Stat gold,
      DemoAnalysis.Stat proxy,
      DemoAnalysis.Stat kl) {}

  /**
   * A reward's PPO runs; run {@code j} used the reward models of a unit of world {@code world[j]}
   * and PPO seed {@code j}, and runs of different rewards with the same {@code j} are paired.
   */
  public record PpoRuns(MethodAgg reward, List<PpoCurve> runs, int[] world) {
    public PpoRuns {
      if (runs.isEmpty() || runs.size() != world.length) {
        throw new IllegalArgumentException(
            "PPO runs: " + runs.size() + " runs for " + world.length + " world labels");
      }
    }

    /** Evaluations per run. */
    public int points() {
      return runs.get(0).points().size();
    }

    public int iteration(int point) {
      return runs.get(0).points().get(point).iteration();
    }

    private double[] column(int point, java.util.function.ToDoubleFunction<PpoPoint> f) {
      return runs.stream().mapToDouble(c -> f.applyAsDouble(c.points().get(point))).toArray();
    }

    /** Per run, the win rate at evaluation {@code point}. */
    public double[] win(int point) {
      return column(point, PpoPoint::winRate);
    }

    public double[] gold(int point) {
      return column(point, PpoPoint::gold);
    }

    public double[] proxy(int point) {
      return column(point, PpoPoint::proxy);
    }

    public double[] kl(int point) {
      return column(point, PpoPoint::kl);
    }

    /** Every evaluation's means and standard errors over runs. */
    public List<PpoStats> stats() {
      List<PpoStats> out = new ArrayList<>();
      for (int i = 0; i < points(); i++) {
        out.add(
            new PpoStats(
                iteration(i),
                DemoAnalysis.hierarchy(win(i), world).stat(),
                DemoAnalysis.hierarchy(gold(i), world).stat(),
                DemoAnalysis.hierarchy(proxy(i), world).stat(),
                DemoAnalysis.hierarchy(kl(i), world).stat()));
      }
      return out;
    }

    /** The mean curve (the win rate's standard error in {@link PpoPoint#winRateSe}). */
    public PpoCurve mean() {
      List<PpoPoint> pts = new ArrayList<>();
      for (PpoStats st : stats()) {
        pts.add(
            new PpoPoint(
                st.iteration(),
                st.win().mean(),
                st.gold().mean(),
                st.proxy().mean(),
                st.kl().mean(),
                runs.size() > 1 ? st.win().se() : Double.NaN));
      }
      return new PpoCurve(reward, pts, runs.size());
    }
  }

  /**
   * The PPO runs (empty when PPO was not run).
   *
   * @param rewards per reward, its runs
   * @param evalPrompts held-out prompts of an evaluation
   */
  record PpoResults(List<PpoRuns> rewards, int evalPrompts) {
    /** Per reward, the mean curve. */
    List<PpoCurve> curves() {
      return rewards.stream().map(PpoRuns::mean).toList();
    }
  }

  /**
   * The rewards PPO runs against: the single model; each ensemble with mean and LCB 0.5; the lever
   * rows of {@code ppoLevers} with the mean (the others are Best-of-n rows only).
   */
  static List<MethodAgg> rewards(List<DemoMethod> methods, List<DemoLever> ppoLevers) {
    List<MethodAgg> out = new ArrayList<>();
    for (DemoMethod m : methods) {
      if (m.leverRow()) {
        if (ppoLevers.contains(m.lever())) {
          out.add(m.with(AggregationConfig.mean()));
        }
        continue;
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

  /**
   * PPO units: {@code s.ppoSeeds()} runs against every reward, unit {@code i} = reward {@code i /
   * ppoSeeds()}, run {@code j = i % ppoSeeds()}. Run {@code j} starts from the SFT policy of unit
   * {@link DemoSettings#ppoUnit}'s world, uses that unit's reward models and PPO seed {@code j}.
   * Units are independent of each other, and each needs only its own world ({@link #world}), so the
   * demo starts a world's PPO units as soon as that world is done ({@link
   * DemoParallelism#pipeline}).
   */
  static int units(DemoSettings s) {
    return s.ppoIterations() == 0 ? 0 : rewards(s).size() * s.ppoSeeds();
  }

  /** The rewards PPO runs against in {@code s}. */
  static List<MethodAgg> rewards(DemoSettings s) {
    return rewards(DemoMethod.all(s), s.ppoLevers());
  }

  /**
   * The world (index into the run's worlds) whose policy and reward models PPO unit {@code i} uses.
   */
  static int world(DemoSettings s, int i) {
    return s.ppoUnit(i % s.ppoSeeds()) / s.seeds();
  }

  /** Runs PPO unit {@code i} ({@link #units}) in its world {@code wr}. */
  static PpoCurve runUnit(DemoSettings s, int i, DemoData.WorldRun wr, PhaseTimer timer)
      throws IOException {
    MethodAgg reward = rewards(s).get(i / s.ppoSeeds());
    int j = i % s.ppoSeeds();
    return timer.time(
        "PPO run " + j + " with " + reward + " (" + s.ppoIterations() + " iterations)",
        () ->
            runPpo(
                s,
                wr.policy(),
                wr.rms().dirs().get(reward.method()).get(s.ppoUnit(j) % s.seeds()),
                reward,
                evalTasks(s, wr),
                wr.pool().gold(),
                timer.log(),
                j));
  }

  /** The held-out prompts a PPO run in world {@code wr} is evaluated on. */
  private static List<Task> evalTasks(DemoSettings s, DemoData.WorldRun wr) {
    List<Task> tasks = wr.pool().tasks();
    return tasks.subList(0, Math.min(s.ppoEvalPrompts(), tasks.size()));
  }

  /** The PPO results from every unit's curve ({@code all}, in unit order; {@link #units}). */
  static PpoResults collect(DemoSettings s, List<DemoData.WorldRun> worlds, List<PpoCurve> all) {
    if (all.isEmpty()) {
      return new PpoResults(List.of(), 0);
    }
    List<MethodAgg> rewards = rewards(s);
    int seeds = s.ppoSeeds();
    int[] world = new int[seeds];
    for (int j = 0; j < seeds; j++) {
      world[j] = worlds.get(world(s, j)).index();
    }
    List<PpoRuns> out = new ArrayList<>();
    for (int r = 0; r < rewards.size(); r++) {
      out.add(
          new PpoRuns(rewards.get(r), List.copyOf(all.subList(r * seeds, (r + 1) * seeds)), world));
    }
    return new PpoResults(List.copyOf(out), evalTasks(s, worlds.get(world(s, seeds - 1))).size());
  }

  static PpoCurve runPpo(
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
              .lr(s.ppoLr())
              .warmupSteps(2)
              .klCoef(s.ppoKlCoef())
              .missingEosPenalty(1.0)
              .temperature(1.0)
              .maxNewTokens(s.ppoMaxNewTokens())
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
                            .withMaxNewTokens(s.ppoMaxNewTokens())
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
                    "[demo]   PPO %s %s run %d iteration %d: win %.3f gold %.3f proxy %.3f kl %.3f",
                    reward.method().name(),
                    reward.aggLabel(),
                    ppoSeed,
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
