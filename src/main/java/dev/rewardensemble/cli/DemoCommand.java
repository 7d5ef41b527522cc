package dev.rewardensemble.cli;

import dev.rewardensemble.eval.Demo;
import dev.rewardensemble.eval.DemoSettings;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme demo}: the paper's experiment in the gold-judge world, end to end. */
@Command(
    name = "demo",
    mixinStandardHelpOptions = true,
    description = {
      "The paper's experiment (Zhang et al. 2024) offline in a world with a gold judge: trains an SFT policy,",
      "samples noisy preference data from it, trains a single reward model and independent, linear and LoRA",
      "ensembles (plus a LoRA K=1 control), then Best-of-n and PPO against each, all measured with the gold judge.",
      "Every number has a standard error over several worlds (each its own SFT policy) and reward-model seeds.",
      "Diversity levers of the shared-trunk ensembles run as extra Best-of-n rows (--levers), and the report",
      "states each method's measured training time, scoring time and inference memory.",
      "Writes report.md, results.json, CSVs and PNG plots to --out. The default (fast) mode takes ~11 minutes",
      "on a 2-core CPU; --full runs more worlds, seeds, prompts and PPO iterations and every lever."
    })
public final class DemoCommand implements Callable<Integer> {
  @Option(
      names = "--out",
      defaultValue = "runs/demo",
      description = "Run directory (default: ${DEFAULT-VALUE}).")
  Path out;

  @Option(names = "--full", description = "More seeds, held-out prompts and PPO iterations (slow).")
  boolean full;

  @Option(
      names = "--worlds",
      description =
          "Worlds, each with its own prompt split, demonstrations and SFT policy (default: 4 fast, 5 full).")
  Integer worlds;

  @Option(
      names = "--world-seed",
      description = "Seed of the first world; world w has seed + w (default: 1).")
  Long worldSeed;

  @Option(
      names = "--seeds",
      description = "Reward-model seeds per world (default: 2 fast, 3 full).")
  Integer seeds;

  @Option(
      names = "--preference-pairs",
      description =
          "Noisy preference pairs per seed (default: 1000); the cleaner set is a third of it.")
  Integer pairs;

  @Option(
      names = "--noise",
      defaultValue = "0.25",
      description = "Label flip rate of the noisy set (default: ${DEFAULT-VALUE}).")
  double noise;

  @Option(
      names = "--clean-noise",
      defaultValue = "0.10",
      description = "Label flip rate of the cleaner set (default: ${DEFAULT-VALUE}).")
  double cleanNoise;

  @Option(names = "--pool", description = "Best-of-n pool per held-out prompt (default: 200).")
  Integer pool;

  @Option(names = "--eval-prompts", description = "Held-out prompts (default: 60 fast, 200 full).")
  Integer evalPrompts;

  @Option(
      names = "--ppo-iterations",
      description = "PPO iterations per reward (default: 40 fast, 80 full).")
  Integer ppoIterations;

  @Option(
      names = "--ppo-seeds",
      description = "PPO runs per reward, at most worlds x seeds (default: 4 fast, 5 full).")
  Integer ppoSeeds;

  @Option(names = "--ppo-lr", description = "PPO learning rate (default: the preset's).")
  Double ppoLr;

  @Option(
      names = "--ppo-kl",
      description = "PPO's fixed KL coefficient, 0 = none (default: the preset's).")
  Double ppoKl;

  @Option(names = "--no-ppo", description = "Skip PPO.")
  boolean noPpo;

  @Option(
      names = "--threads",
      defaultValue = "0",
      description = "Threads the run may use (0 = all cores).")
  int threads;

  @Option(
      names = "--jobs",
      defaultValue = "0",
      description = {
        "Units (worlds, and each PPO run once its world is done) run at once, each with an equal share",
        "of --threads (default 0: one per thread, one thread each, under ./rme; 1 = one at a time with",
        "all threads)."
      })
  int jobs;

  @Option(
      names = "--levers",
      paramLabel = "LEVER[,LEVER...]",
      description =
          "Diversity levers run as extra Best-of-n rows (issue #19): a comma-separated list of"
              + " lora-bootstrap, lora-disjoint, lora-ranks, lora-diversity, lora-prior, lora-5,"
              + " lora-8, linear-bootstrap, linear-disjoint, linear-prior, linear-5, linear-8,"
              + " linear-swa; or all, fast, none (default: fast = lora-prior,linear-8; --full: all).")
  String levers;

  @Option(
      names = "--ppo-levers",
      paramLabel = "LEVER[,LEVER...]",
      description =
          "Lever rows also run in PPO (mean aggregation, --ppo-seeds runs each), among the run's"
              + " --levers: a comma-separated list, all (every lever row of the run), fast or none"
              + " (default: those of lora-prior, linear-8 and linear-bootstrap that are lever rows"
              + " of the run).")
  String ppoLevers;

  @Override
  public Integer call() throws Exception {
    System.setProperty("java.awt.headless", "true");
    DemoSettings preset = full ? DemoSettings.fullRun(out) : DemoSettings.fast(out);
    if (!(noise >= 0 && noise <= 0.5)) {
      throw new UserError("--noise must be in [0, 0.5], got " + noise);
    }
    if (!(cleanNoise >= 0 && cleanNoise <= 0.5)) {
      throw new UserError("--clean-noise must be in [0, 0.5], got " + cleanNoise);
    }
    int sd = seeds == null ? preset.seeds() : seeds;
    int wd = worlds == null ? preset.worlds() : worlds;
    int ps = ppoSeeds == null ? Math.min(preset.ppoSeeds(), wd * sd) : ppoSeeds;
    double plr = ppoLr == null ? preset.ppoLr() : ppoLr;
    double pkl = ppoKl == null ? preset.ppoKlCoef() : ppoKl;
    int pp = pairs == null ? preset.preferencePairs() : pairs;
    int pl = pool == null ? preset.pool() : pool;
    int it = noPpo ? 0 : ppoIterations == null ? preset.ppoIterations() : ppoIterations;
    int ep = evalPrompts == null ? preset.evalPrompts() : evalPrompts;
    atLeast("--seeds", sd, 1);
    atLeast("--worlds", wd, 1);
    atLeast("--ppo-seeds", ps, 1);
    if (it > 0 && ps > wd * sd) {
      throw new UserError("--ppo-seeds must be <= worlds x seeds = " + wd * sd + ", got " + ps);
    }
    if (!(Double.isFinite(plr) && plr > 0)) {
      throw new UserError("--ppo-lr must be finite and > 0, got " + plr);
    }
    if (!(Double.isFinite(pkl) && pkl >= 0)) {
      throw new UserError("--ppo-kl must be finite and >= 0, got " + pkl);
    }
    atLeast("--preference-pairs", pp, 4);
    atLeast("--pool", pl, 2);
    atLeast("--ppo-iterations", it, 0);
    atLeast("--eval-prompts", ep, 1);
    atLeast("--threads", threads, 0);
    atLeast("--jobs", jobs, 0);
    java.util.List<dev.rewardensemble.eval.DemoLever> lv;
    try {
      lv = levers == null ? preset.levers() : dev.rewardensemble.eval.DemoLever.parse(levers);
    } catch (IllegalArgumentException e) {
      throw new UserError(e.getMessage());
    }
    java.util.List<dev.rewardensemble.eval.DemoLever> plv;
    if (ppoLevers == null) {
      plv = preset.ppoLevers().stream().filter(lv::contains).toList();
    } else if (ppoLevers.strip().equalsIgnoreCase("all")) {
      plv = lv;
    } else {
      try {
        plv = dev.rewardensemble.eval.DemoLever.parse("--ppo-levers", ppoLevers);
      } catch (IllegalArgumentException e) {
        throw new UserError(e.getMessage());
      }
      for (dev.rewardensemble.eval.DemoLever l : plv) {
        if (!lv.contains(l)) {
          throw new UserError(
              "--ppo-levers: "
                  + l.id()
                  + " is not a lever row of this run (--levers: "
                  + (lv.isEmpty()
                      ? "none"
                      : String.join(
                          ",", lv.stream().map(dev.rewardensemble.eval.DemoLever::id).toList()))
                  + ")");
        }
      }
    }
    DemoSettings s =
        preset.toBuilder()
            .seeds(sd)
            .worlds(wd)
            .worldSeed(worldSeed == null ? preset.worldSeed() : worldSeed)
            .ppoSeeds(ps)
            .ppoLr(plr)
            .ppoKlCoef(pkl)
            .preferencePairs(pp)
            .cleanPairs(DemoSettings.cleanPairsFor(pp))
            .noise(noise)
            .cleanNoise(cleanNoise)
            .pool(pl)
            .ppoIterations(it)
            .evalPrompts(ep)
            .ppoEvalPrompts(Math.min(preset.ppoEvalPrompts(), ep))
            .threads(threads)
            .jobs(jobs)
            .levers(lv)
            .ppoLevers(plv)
            .build();
    Demo.Result r =
        Demo.run(
            s,
            msg -> System.err.println(msg),
            world ->
                new ProgressBar(
                    s.worlds() > 1 ? "[demo] " + world + " SFT" : "[demo] SFT",
                    "loss",
                    "acc",
                    Demo.jobs(s) == 1));
    System.err.printf(
        Locale.ROOT, "rme demo finished in %.1f s (%.1f min)%n", r.seconds(), r.seconds() / 60);
    System.out.println(r.report().toAbsolutePath());
    return 0;
  }

  private static void atLeast(String option, int value, int min) {
    if (value < min) {
      throw new UserError(option + " must be >= " + min + ", got " + value);
    }
  }
}
