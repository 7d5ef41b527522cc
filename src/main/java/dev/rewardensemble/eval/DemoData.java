package dev.rewardensemble.eval;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.rl.BestOfNRunner;
import dev.rewardensemble.rl.Generation;
import dev.rewardensemble.rl.Sampler;
import dev.rewardensemble.rl.SamplingConfig;
import dev.rewardensemble.train.LmTrainConfig;
import dev.rewardensemble.train.TrainListener;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The demo's first phases: the world and its SFT policy, preference samples, the Best-of-n pool.
 */
final class DemoData {
  private DemoData() {}

  /** Preference pairs built per prompt from its samples. */
  static final int PAIRS_PER_PROMPT = 2;

  /**
   * The world and the SFT policy trained in it (saved in {@code sftDir}, whose parent is the
   * world's run directory).
   */
  record Policy(World world, Path sftDir, ExecConfig exec) {
    /**
     * The world's run directory ({@code out/world-<seed>}): its SFT policy and seed directories.
     */
    Path dir() {
      return sftDir.getParent();
    }

    /** {@code "world 3 "}: the prefix of this world's phase names. */
    String tag() {
      return "world " + world.seed() + " ";
    }
  }

  /**
   * One world of the seed hierarchy, with everything trained and sampled in it.
   *
   * @param index the world's index {@code w} (seed {@code worldSeed + w})
   * @param rms the reward models of its {@code seeds} reward-model seeds
   */
  record WorldRun(
      int index,
      Policy policy,
      Samples samples,
      EvalPool pool,
      RewardModelsPhase.RewardModels rms) {}

  /**
   * SFT samples on disjoint training prompts, from which each seed draws its preference pairs.
   *
   * @param generated responses sampled in all
   */
  record Samples(
      Map<String, List<PreferenceBuilder.Response>> noisy,
      Map<String, List<PreferenceBuilder.Response>> clean,
      int generated) {}

  /**
   * The Best-of-n pool: {@code pool} SFT samples per held-out prompt, gold-scored once.
   *
   * @param gold {@code [prompt][sample]} gold scores
   * @param winVsSft {@code [prompt][sample]} probability that the sample beats a random pool sample
   *     of its prompt
   * @param sequences the ids a reward model scores, prompt-major ({@code p * pool + j})
   */
  record EvalPool(List<Task> tasks, double[][] gold, double[][] winVsSft, List<int[]> sequences) {
    int prompts() {
      return tasks.size();
    }

    int size() {
      return gold.length == 0 ? 0 : gold[0].length;
    }

    /** The SFT policy's mean gold score on the pool. */
    double sftMeanGold() {
      return Arrays.stream(gold).flatMapToDouble(Arrays::stream).average().orElse(Double.NaN);
    }
  }

  /**
   * Phase 1: world {@code w} (seed {@code s.worldSeed(w)}) and its SFT policy, in {@code
   * out/world-<seed>/sft}. World {@code w}'s SFT policy also has its own initialisation and data
   * order (the defaults' seeds + w), so worlds differ the way a different CPU's float rounding
   * makes one SFT run differ.
   */
  static Policy policy(DemoSettings s, int w, ExecConfig exec, TrainListener progress)
      throws IOException {
    long seed = s.worldSeed(w);
    World world = World.create(seed);
    Path sftDir = s.out().resolve("world-" + seed).resolve("sft");
    SftPolicy.Settings sft = SftPolicy.Settings.defaults().withSteps(s.sftSteps());
    LmTrainConfig t = sft.training();
    t =
        new LmTrainConfig(
            t.batchSize(),
            t.steps(),
            t.lr(),
            t.weightDecay(),
            t.schedule(),
            t.warmupRatio(),
            t.maxGradNorm(),
            t.leftPad(),
            t.seed() + w);
    sft = new SftPolicy.Settings(sft.demonstrations(), t, sft.initSeed() + w, exec);
    SftPolicy.train(world, sftDir, sft, progress);
    return new Policy(world, sftDir, exec);
  }

  static SamplingConfig sampling(DemoSettings s) {
    return SamplingConfig.bestOfN().withMaxNewTokens(s.maxNewTokens());
  }

  /**
   * Phase 2: samples of the SFT policy on training prompts, for the noisy and the cleaner
   * preference sets.
   */
  static Samples preferenceSamples(DemoSettings s, Policy policy) throws IOException {
    List<Task> train = new ArrayList<>(policy.world().tasks().train());
    Collections.shuffle(train, new Random(policy.world().seed() * 31 + 5));
    int noisyPrompts =
        Math.min(
            train.size() / 2, (int) Math.ceil(s.preferencePairs() * 1.3 / PAIRS_PER_PROMPT) + 2);
    int cleanPrompts =
        Math.min(
            train.size() - noisyPrompts,
            (int) Math.ceil(s.cleanPairs() * 1.3 / PAIRS_PER_PROMPT) + 2);
    List<Task> noisyTasks = train.subList(0, noisyPrompts);
    List<Task> cleanTasks = train.subList(noisyPrompts, noisyPrompts + cleanPrompts);
    SamplingConfig sampling = sampling(s);
    try (Sampler sampler = Sampler.load(policy.sftDir(), policy.exec())) {
      return new Samples(
          sample(sampler, noisyTasks, s.samplesPerPrompt(), sampling.withSeed(11)),
          sample(sampler, cleanTasks, s.samplesPerPrompt(), sampling.withSeed(12)),
          (noisyPrompts + cleanPrompts) * s.samplesPerPrompt());
    }
  }

  /** Phase 3: the Best-of-n pool on held-out prompts, shared by every reward model and seed. */
  static EvalPool evalPool(DemoSettings s, Policy policy) throws IOException {
    List<Task> evalTasks = evalSubset(policy.world(), s.evalPrompts());
    List<int[]> evalPromptIds =
        evalTasks.stream().map(t -> World.promptIds(t.instruction())).toList();
    List<List<Generation>> pool;
    try (Sampler sampler = Sampler.load(policy.sftDir(), policy.exec())) {
      pool = BestOfNRunner.sample(sampler, evalPromptIds, s.pool(), sampling(s).withSeed(99), 64);
    }
    GoldJudge judge = policy.world().judge();
    int P = evalTasks.size();
    int m = s.pool();
    double[][] gold = new double[P][m];
    double[][] winVsSft = new double[P][m];
    List<int[]> poolSeqs = new ArrayList<>(P * m);
    for (int p = 0; p < P; p++) {
      for (int j = 0; j < m; j++) {
        Generation g = pool.get(p).get(j);
        gold[p][j] =
            judge.score(
                evalTasks.get(p).instruction(), World.responseText(g.responseIds()), g.finished());
        poolSeqs.add(rmSequence(g.promptIds(), g.responseIds()));
      }
      for (int j = 0; j < m; j++) {
        winVsSft[p][j] = BestOfNPhase.winProbability(gold[p][j], gold[p]);
      }
    }
    return new EvalPool(evalTasks, gold, winVsSft, poolSeqs);
  }

  /** {@code n} held-out prompts, round-robin over task kinds so every kind is represented. */
  static List<Task> evalSubset(World world, int n) {
    List<List<Task>> byKind = new ArrayList<>();
    for (Task.Kind k : Task.Kind.values()) {
      byKind.add(world.tasks().eval(k));
    }
    List<Task> out = new ArrayList<>();
    for (int i = 0; out.size() < n; i++) {
      boolean any = false;
      for (List<Task> l : byKind) {
        if (i < l.size() && out.size() < n) {
          out.add(l.get(i));
          any = true;
        }
      }
      if (!any) {
        break;
      }
    }
    return out;
  }

  private static Map<String, List<PreferenceBuilder.Response>> sample(
      Sampler sampler, List<Task> tasks, int perPrompt, SamplingConfig cfg) {
    List<int[]> prompts = tasks.stream().map(t -> World.promptIds(t.instruction())).toList();
    List<List<Generation>> g = BestOfNRunner.sample(sampler, prompts, perPrompt, cfg, 64);
    Map<String, List<PreferenceBuilder.Response>> out = new LinkedHashMap<>();
    for (int i = 0; i < tasks.size(); i++) {
      List<PreferenceBuilder.Response> rs = new ArrayList<>();
      for (Generation x : g.get(i)) {
        rs.add(new PreferenceBuilder.Response(World.responseText(x.responseIds()), x.finished()));
      }
      out.put(tasks.get(i).instruction(), rs);
    }
    return out;
  }

  /**
   * The ids a reward model scores: the RAW-template training rows are {@code tokens(instruction) +
   * tokens(response)} with no BOS and no EOS, so the policy's BOS is dropped and the EOS is
   * stripped ({@link BestOfNRunner#scoredSequence}).
   */
  static int[] rmSequence(int[] promptIds, int[] responseIds) {
    int[] p =
        promptIds.length > 0 && promptIds[0] == CharVocabulary.BOS
            ? Arrays.copyOfRange(promptIds, 1, promptIds.length)
            : promptIds;
    return BestOfNRunner.scoredSequence(
        p, responseIds, CharVocabulary.EOS, SftPolicy.config().maxPositions());
  }
}
