package dev.rewardensemble.eval;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.train.TrainListener;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The paper's experiment (Zhang et al. 2024, "Improving RLHF with Efficient Reward Model Ensemble")
 * in the gold-judge world: an SFT policy, noisy preference data sampled from it and labelled by the
 * {@link GoldJudge} (with flips), single and ensemble reward models, Best-of-n and PPO against each
 * of them, everything measured with the gold judge. Writes {@code report.md}, {@code results.json},
 * CSVs and PNG plots to the run directory.
 *
 * <p>Q1: do ensembles improve Best-of-n and PPO over a single reward model? Q2: which ensemble is
 * best? Q3: mean or lower confidence bound (LCB)?
 *
 * <p>The run is a pipeline of phases, each returning a typed result the next ones take: {@link
 * DemoSettings} -> per world: world and SFT policy, preference samples, Best-of-n pool ({@link
 * DemoData}) -> reward models per seed ({@link RewardModelsPhase}) -> Best-of-n ({@link
 * BestOfNPhase}); PPO over several runs ({@link PpoPhase}), each run started as soon as its world
 * is done ({@link DemoParallelism#pipeline}); then all worlds' Best-of-n joined ({@link
 * BestOfNResults#concat}) and the PPO runs collected -> analysis over the world/seed hierarchy
 * ({@link DemoAnalysis}, pure) -> report ({@link DemoReport}, {@link DemoMarkdown}, {@link
 * DemoPlots}).
 */
public final class Demo {
  private Demo() {}

  /** What the run wrote. */
  public record Result(Path report, Path results, double seconds) {}

  /** Runs the whole demo. */
  public static Result run(DemoSettings s, Consumer<String> log) throws IOException {
    return run(s, log, world -> TrainListener.NONE);
  }

  /**
   * As {@link #run(DemoSettings, Consumer)}, drawing each world's SFT training (the longest phase)
   * on the listener {@code progress} gives for its tag ({@code "world N"}); with several jobs
   * ({@link DemoSettings#jobs}) worlds train at once, each on its own listener.
   */
  public static Result run(
      DemoSettings s, Consumer<String> log, Function<String, TrainListener> progress)
      throws IOException {
    long t0 = System.nanoTime();
    PhaseTimer timer = new PhaseTimer(log);
    Files.createDirectories(s.out());
    DemoParallelism par = DemoParallelism.of(s);
    ExecConfig exec = par.exec();
    log.accept("[demo] " + par.describe());

    // Phases 1-5 per world, then PPO (phase 6): each PPO unit starts when its world is done.
    DemoParallelism.Stages<WorldOutcome, PpoPhase.PpoCurve> stages =
        par.pipeline(
            s.worlds(),
            w -> {
              String tag = "world " + s.worldSeed(w) + " ";
              DemoData.Policy policy =
                  timer.time(
                      tag + "SFT policy (" + s.sftSteps() + " steps)",
                      () -> DemoData.policy(s, w, exec, progress.apply(tag.strip())));
              DemoData.Samples samples =
                  timer.time(
                      tag
                          + "sample preference data ("
                          + s.preferencePairs()
                          + " noisy + "
                          + s.cleanPairs()
                          + " clean pairs)",
                      () -> DemoData.preferenceSamples(s, policy));
              log.accept(
                  "[demo] "
                      + tag
                      + "generated "
                      + samples.generated()
                      + " responses for preference data");
              DemoData.EvalPool pool =
                  timer.time(
                      tag
                          + "Best-of-n pool (up to "
                          + s.evalPrompts()
                          + " held-out prompts x "
                          + s.pool()
                          + ")",
                      () -> DemoData.evalPool(s, policy));
              RewardModelsPhase.RewardModels rms =
                  RewardModelsPhase.train(s, policy, samples, timer);
              return new WorldOutcome(
                  new DemoData.WorldRun(w, policy, samples, pool, rms),
                  BestOfNPhase.run(s, exec, rms, pool, timer, policy.tag()));
            },
            PpoPhase.units(s),
            i -> PpoPhase.world(s, i),
            (i, world) -> PpoPhase.runUnit(s, i, world.world(), timer));
    List<WorldOutcome> outcomes = stages.first();
    List<DemoData.WorldRun> worlds = outcomes.stream().map(WorldOutcome::world).toList();
    BestOfNResults bon =
        BestOfNResults.concat(outcomes.stream().map(WorldOutcome::bestOfN).toList());
    PpoPhase.PpoResults ppo = PpoPhase.collect(s, worlds, stages.second());

    DemoReport report =
        timer.time(
            "report, CSVs, plots",
            () -> {
              DemoReport r =
                  new DemoReport(
                      s, worlds, bon, ppo, DemoAnalysis.of(bon, ppo.rewards()), timer.cost());
              r.writeTables();
              return r;
            });
    double total = (System.nanoTime() - t0) / 1e9;
    report.finish(timer.seconds(), total, par);
    return new Result(s.out().resolve("report.md"), s.out().resolve("results.json"), total);
  }

  /**
   * Units {@code s} runs at once on this machine and process ({@link DemoSettings#jobs}, resolved
   * as {@link DemoParallelism#of(DemoSettings)} does).
   */
  public static int jobs(DemoSettings s) {
    return DemoParallelism.of(s).jobs();
  }

  /** One world's phases 1-5. */
  private record WorldOutcome(DemoData.WorldRun world, BestOfNResults bestOfN) {}

  static void writeAtomic(Path file, String text) throws IOException {
    Path dir = file.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    Path tmp = dev.rewardensemble.io.TempPaths.newFile(file);
    try {
      Files.writeString(tmp, text, StandardCharsets.UTF_8);
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }
}
