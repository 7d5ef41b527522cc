package dev.rewardensemble.eval;

import java.nio.file.Path;

/**
 * The demo's run settings, validated. Start from a preset ({@link #fast}, {@link #fullRun}, {@link
 * #tiny}) and change fields with {@link #toBuilder()}.
 *
 * @param out run directory
 * @param full full mode (more worlds, prompts and PPO)
 * @param seeds reward-model seeds per world (preference pairs, flips, init, data order)
 * @param k ensemble size (>= 2; the LoRA K = 1 control is always added)
 * @param sftSteps SFT optimizer steps (batch 32)
 * @param preferencePairs noisy preference pairs per seed
 * @param cleanPairs cleaner pairs (LoRA phase 2)
 * @param noise flip rate of the noisy set
 * @param cleanNoise flip rate of the cleaner set
 * @param samplesPerPrompt SFT samples per training prompt for the preference data
 * @param rmEpochs reward-model epochs
 * @param rmBatch reward-model batch
 * @param rmLr reward-model learning rate
 * @param loraLr learning rate of the linear heads and LoRA adapters
 * @param evalPrompts held-out prompts in the Best-of-n and PPO evaluation
 * @param pool Best-of-n pool size per prompt
 * @param maxNewTokens new tokens per sampled response
 * @param ppoIterations PPO iterations per reward (0 = no PPO)
 * @param ppoEvalEvery evaluate the PPO policy every N iterations
 * @param ppoRollout PPO rollout batch
 * @param ppoEvalPrompts held-out prompts in a PPO evaluation (at most {@code evalPrompts} are used)
 * @param threads the run's thread budget (0 = all cores)
 * @param jobs units run at once, each on sessions of its own: worlds (SFT policy, preference data,
 *     reward models, Best-of-n scoring) and then PPO runs; 0 = automatic ({@link
 *     DemoParallelism#of}): one job per thread of the budget, one intra-op thread each, when every
 *     session can have a thread pool of its own, else one job with the whole budget
 * @param worldSeed the first world's seed; world {@code w} has seed {@code worldSeed + w}
 * @param worlds worlds (each its own prompt split, demonstrations and SFT policy): the top level of
 *     the seed hierarchy, {@code seeds} reward-model seeds in each
 * @param ppoSeeds PPO runs per reward; run {@code j} uses the reward models of unit {@link
 *     #ppoUnit(int)} and PPO seed {@code j}
 * @param ppoLr PPO learning rate
 * @param ppoKlCoef PPO's fixed KL coefficient (0 = no KL penalty)
 * @param ppoMaxNewTokens new tokens per PPO response (rollouts and evaluations)
 * @param levers the diversity levers run as extra rows ({@link DemoLever}; fast: {@link
 *     DemoLever#FAST}, full: all)
 * @param ppoLevers the lever rows also run in PPO, with the mean aggregation (a subset of {@code
 *     levers}; fast and full: {@link DemoLever#FAST}, the LoRA prior)
 */
public record DemoSettings(
    Path out,
    boolean full,
    int seeds,
    int k,
    int sftSteps,
    int preferencePairs,
    int cleanPairs,
    double noise,
    double cleanNoise,
    int samplesPerPrompt,
    int rmEpochs,
    int rmBatch,
    double rmLr,
    double loraLr,
    int evalPrompts,
    int pool,
    int maxNewTokens,
    int ppoIterations,
    int ppoEvalEvery,
    int ppoRollout,
    int ppoEvalPrompts,
    int threads,
    int jobs,
    long worldSeed,
    int worlds,
    int ppoSeeds,
    double ppoLr,
    double ppoKlCoef,
    int ppoMaxNewTokens,
    java.util.List<DemoLever> levers,
    java.util.List<DemoLever> ppoLevers) {

  public DemoSettings {
    if (out == null) {
      throw new IllegalArgumentException("demo: the run directory (out) must be set");
    }
    atLeast("seeds", seeds, 1);
    atLeast("k (ensemble size)", k, 2);
    atLeast("sft steps", sftSteps, 1);
    atLeast("preference pairs", preferencePairs, 4);
    atLeast("clean pairs", cleanPairs, 2);
    rate("noise", noise);
    rate("clean noise", cleanNoise);
    atLeast("samples per prompt", samplesPerPrompt, 2);
    atLeast("reward-model epochs", rmEpochs, 1);
    atLeast("reward-model batch", rmBatch, 1);
    positive("reward-model lr", rmLr);
    positive("LoRA lr", loraLr);
    atLeast("eval prompts", evalPrompts, 1);
    atLeast("pool", pool, 2);
    atLeast("max new tokens", maxNewTokens, 1);
    atLeast("PPO iterations", ppoIterations, 0);
    atLeast("PPO eval every", ppoEvalEvery, 1);
    atLeast("PPO rollout", ppoRollout, 2);
    atLeast("PPO eval prompts", ppoEvalPrompts, 1);
    atLeast("threads", threads, 0);
    atLeast("jobs", jobs, 0);
    atLeast("worlds", worlds, 1);
    atLeast("PPO seeds", ppoSeeds, 1);
    if (ppoIterations > 0 && ppoSeeds > worlds * seeds) {
      throw new IllegalArgumentException(
          "demo: PPO seeds must be <= worlds x seeds = "
              + worlds * seeds
              + " (each PPO run uses its own reward models), got "
              + ppoSeeds);
    }
    positive("PPO lr", ppoLr);
    if (!(Double.isFinite(ppoKlCoef) && ppoKlCoef >= 0)) {
      throw new IllegalArgumentException(
          "demo: PPO KL coefficient must be finite and >= 0, got " + ppoKlCoef);
    }
    atLeast("PPO max new tokens", ppoMaxNewTokens, 1);
    levers = levers == null ? java.util.List.of() : java.util.List.copyOf(levers);
    for (DemoLever l : levers) {
      if (l.rowName(k).equals(l.baseName(k))) {
        throw new IllegalArgumentException(
            "demo: lever " + l.id() + " is the demo's own " + l.baseName(k) + " (k = " + k + ")");
      }
    }
    if (levers.stream().distinct().count() != levers.size()) {
      throw new IllegalArgumentException("demo: levers must not repeat, got " + levers);
    }
    ppoLevers = ppoLevers == null ? java.util.List.of() : java.util.List.copyOf(ppoLevers);
    for (DemoLever l : ppoLevers) {
      if (!levers.contains(l)) {
        throw new IllegalArgumentException(
            "demo: PPO lever " + l.id() + " is not one of the run's levers " + levers);
      }
    }
    if (ppoLevers.stream().distinct().count() != ppoLevers.size()) {
      throw new IllegalArgumentException("demo: PPO levers must not repeat, got " + ppoLevers);
    }
  }

  /** Reward-model units: every (world, seed) pair, world-major ({@code w * seeds + seed}). */
  public int units() {
    return worlds * seeds;
  }

  /** The seed of world {@code w}. */
  public long worldSeed(int w) {
    return worldSeed + w;
  }

  /**
   * The unit whose reward models PPO run {@code j} uses: runs go round-robin over worlds first (run
   * j in world {@code j % worlds}, seed {@code j / worlds}), so 3 runs in 3 worlds are 3 world
   * draws.
   */
  public int ppoUnit(int j) {
    return (j % worlds) * seeds + j / worlds;
  }

  private static void atLeast(String name, int value, int min) {
    if (value < min) {
      throw new IllegalArgumentException("demo: " + name + " must be >= " + min + ", got " + value);
    }
  }

  private static void rate(String name, double value) {
    if (!(value >= 0 && value <= 0.5)) {
      throw new IllegalArgumentException("demo: " + name + " must be in [0, 0.5], got " + value);
    }
  }

  private static void positive(String name, double value) {
    if (!(Double.isFinite(value) && value > 0)) {
      throw new IllegalArgumentException("demo: " + name + " must be finite and > 0, got " + value);
    }
  }

  /** The default (fast) run, with the lever rows of {@link DemoLever#FAST}. */
  public static DemoSettings fast(Path out) {
    return new DemoSettings(
        out,
        false,
        2,
        3,
        2000,
        1000,
        330,
        PreferenceBuilder.NOISY_FLIP_RATE,
        PreferenceBuilder.CLEAN_FLIP_RATE,
        4,
        2,
        16,
        1e-3,
        1e-3,
        60,
        200,
        40,
        40,
        10,
        32,
        60,
        0,
        0,
        1,
        4,
        4,
        PPO_LR,
        PPO_KL,
        PPO_MAX_NEW_TOKENS,
        DemoLever.FAST,
        DemoLever.FAST);
  }

  /** The --full run: more worlds, seeds, prompts and PPO, and every lever row. */
  public static DemoSettings fullRun(Path out) {
    return new DemoSettings(
        out,
        true,
        3,
        3,
        2000,
        1000,
        330,
        PreferenceBuilder.NOISY_FLIP_RATE,
        PreferenceBuilder.CLEAN_FLIP_RATE,
        4,
        2,
        16,
        1e-3,
        1e-3,
        200,
        200,
        40,
        80,
        10,
        32,
        200,
        0,
        0,
        1,
        5,
        5,
        PPO_LR,
        PPO_KL,
        PPO_MAX_NEW_TOKENS,
        java.util.List.of(DemoLever.values()),
        DemoLever.PPO);
  }

  /** A tiny run for tests (about a minute; no lever rows). */
  public static DemoSettings tiny(Path out) {
    return new DemoSettings(
        out,
        false,
        1,
        2,
        150,
        48,
        24,
        PreferenceBuilder.NOISY_FLIP_RATE,
        PreferenceBuilder.CLEAN_FLIP_RATE,
        4,
        1,
        16,
        1e-3,
        1e-3,
        5,
        8,
        24,
        2,
        1,
        8,
        5,
        0,
        0,
        1,
        2,
        2,
        PPO_LR,
        PPO_KL,
        24,
        java.util.List.of(),
        java.util.List.of());
  }

  /** PPO's learning rate in the presets. */
  static final double PPO_LR = 3e-4;

  /**
   * PPO's KL coefficient in the presets: none, so that PPO against a single reward model
   * over-optimises within the fast mode's 40 iterations (with 0.05 its gold win rate stays flat).
   */
  static final double PPO_KL = 0;

  /** PPO's response length in the presets. */
  static final int PPO_MAX_NEW_TOKENS = 40;

  /** The cleaner set's default size for {@code pairs} noisy pairs: a third of it, at least 2. */
  public static int cleanPairsFor(int pairs) {
    return Math.max(2, pairs / 3);
  }

  public Builder toBuilder() {
    return new Builder(this);
  }

  /** Changes fields of a preset; {@link #build()} validates them all. */
  public static final class Builder {
    private Path out;
    private boolean full;
    private int seeds,
        k,
        sftSteps,
        preferencePairs,
        cleanPairs,
        samplesPerPrompt,
        rmEpochs,
        rmBatch,
        evalPrompts,
        pool,
        maxNewTokens,
        ppoIterations,
        ppoEvalEvery,
        ppoRollout,
        ppoEvalPrompts,
        threads,
        jobs,
        worlds,
        ppoSeeds,
        ppoMaxNewTokens;
    private double noise, cleanNoise, rmLr, loraLr, ppoLr, ppoKlCoef;
    private long worldSeed;
    private java.util.List<DemoLever> levers;
    private java.util.List<DemoLever> ppoLevers;

    private Builder(DemoSettings s) {
      out = s.out;
      full = s.full;
      seeds = s.seeds;
      k = s.k;
      sftSteps = s.sftSteps;
      preferencePairs = s.preferencePairs;
      cleanPairs = s.cleanPairs;
      noise = s.noise;
      cleanNoise = s.cleanNoise;
      samplesPerPrompt = s.samplesPerPrompt;
      rmEpochs = s.rmEpochs;
      rmBatch = s.rmBatch;
      rmLr = s.rmLr;
      loraLr = s.loraLr;
      evalPrompts = s.evalPrompts;
      pool = s.pool;
      maxNewTokens = s.maxNewTokens;
      ppoIterations = s.ppoIterations;
      ppoEvalEvery = s.ppoEvalEvery;
      ppoRollout = s.ppoRollout;
      ppoEvalPrompts = s.ppoEvalPrompts;
      threads = s.threads;
      jobs = s.jobs;
      worldSeed = s.worldSeed;
      worlds = s.worlds;
      ppoSeeds = s.ppoSeeds;
      ppoLr = s.ppoLr;
      ppoKlCoef = s.ppoKlCoef;
      ppoMaxNewTokens = s.ppoMaxNewTokens;
      levers = s.levers;
      ppoLevers = s.ppoLevers;
    }

    public Builder out(Path v) {
      out = v;
      return this;
    }

    public Builder full(boolean v) {
      full = v;
      return this;
    }

    public Builder seeds(int v) {
      seeds = v;
      return this;
    }

    public Builder k(int v) {
      k = v;
      return this;
    }

    public Builder sftSteps(int v) {
      sftSteps = v;
      return this;
    }

    public Builder preferencePairs(int v) {
      preferencePairs = v;
      return this;
    }

    public Builder cleanPairs(int v) {
      cleanPairs = v;
      return this;
    }

    public Builder noise(double v) {
      noise = v;
      return this;
    }

    public Builder cleanNoise(double v) {
      cleanNoise = v;
      return this;
    }

    public Builder samplesPerPrompt(int v) {
      samplesPerPrompt = v;
      return this;
    }

    public Builder rmEpochs(int v) {
      rmEpochs = v;
      return this;
    }

    public Builder rmBatch(int v) {
      rmBatch = v;
      return this;
    }

    public Builder rmLr(double v) {
      rmLr = v;
      return this;
    }

    public Builder loraLr(double v) {
      loraLr = v;
      return this;
    }

    public Builder evalPrompts(int v) {
      evalPrompts = v;
      return this;
    }

    public Builder pool(int v) {
      pool = v;
      return this;
    }

    public Builder maxNewTokens(int v) {
      maxNewTokens = v;
      return this;
    }

    public Builder ppoIterations(int v) {
      ppoIterations = v;
      return this;
    }

    public Builder ppoEvalEvery(int v) {
      ppoEvalEvery = v;
      return this;
    }

    public Builder ppoRollout(int v) {
      ppoRollout = v;
      return this;
    }

    public Builder ppoEvalPrompts(int v) {
      ppoEvalPrompts = v;
      return this;
    }

    public Builder threads(int v) {
      threads = v;
      return this;
    }

    public Builder jobs(int v) {
      jobs = v;
      return this;
    }

    public Builder worldSeed(long v) {
      worldSeed = v;
      return this;
    }

    public Builder worlds(int v) {
      worlds = v;
      return this;
    }

    public Builder ppoSeeds(int v) {
      ppoSeeds = v;
      return this;
    }

    public Builder ppoLr(double v) {
      ppoLr = v;
      return this;
    }

    public Builder ppoKlCoef(double v) {
      ppoKlCoef = v;
      return this;
    }

    public Builder ppoMaxNewTokens(int v) {
      ppoMaxNewTokens = v;
      return this;
    }

    /** The lever rows; the PPO levers keep those that are still among them. */
    public Builder levers(java.util.List<DemoLever> v) {
      levers = v;
      if (ppoLevers != null && v != null) {
        ppoLevers = ppoLevers.stream().filter(v::contains).toList();
      }
      return this;
    }

    public Builder ppoLevers(java.util.List<DemoLever> v) {
      ppoLevers = v;
      return this;
    }

    public DemoSettings build() {
      return new DemoSettings(
          out,
          full,
          seeds,
          k,
          sftSteps,
          preferencePairs,
          cleanPairs,
          noise,
          cleanNoise,
          samplesPerPrompt,
          rmEpochs,
          rmBatch,
          rmLr,
          loraLr,
          evalPrompts,
          pool,
          maxNewTokens,
          ppoIterations,
          ppoEvalEvery,
          ppoRollout,
          ppoEvalPrompts,
          threads,
          jobs,
          worldSeed,
          worlds,
          ppoSeeds,
          ppoLr,
          ppoKlCoef,
          ppoMaxNewTokens,
          levers,
          ppoLevers);
    }
  }
}
