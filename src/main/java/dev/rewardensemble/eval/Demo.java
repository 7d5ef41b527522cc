package dev.rewardensemble.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.api.EnsembleOptions;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.api.RewardTraining;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.PreferenceFormat;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.MemberScores;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.rl.BestOfN;
import dev.rewardensemble.rl.BestOfNRunner;
import dev.rewardensemble.rl.Generation;
import dev.rewardensemble.rl.PpoConfig;
import dev.rewardensemble.rl.PpoTrainer;
import dev.rewardensemble.rl.Sampler;
import dev.rewardensemble.rl.SamplingConfig;
import dev.rewardensemble.rl.SequenceScorer;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainConfig;
import dev.rewardensemble.train.TrainListener;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The paper's experiment (Zhang et al. 2024, "Improving RLHF with Efficient Reward Model
 * Ensemble") in the gold-judge world: an SFT policy, noisy preference data sampled from it and
 * labelled by the {@link GoldJudge} (with flips), single and ensemble reward models, Best-of-n and
 * PPO against each of them, everything measured with the gold judge. Writes {@code report.md},
 * {@code results.json}, CSVs and PNG plots to the run directory.
 *
 * <p>Q1: do ensembles improve Best-of-n and PPO over a single reward model? Q2: which ensemble is
 * best? Q3: mean or lower confidence bound (LCB)?
 */
public final class Demo {
  private static final ObjectMapper JSON = new ObjectMapper();

  private Demo() {}

  /** The aggregations compared. */
  public static final List<AggregationConfig> AGGREGATIONS =
      List.of(AggregationConfig.mean(), AggregationConfig.lcb(0.1), AggregationConfig.lcb(0.5));

  /** One reward-model method of the study. */
  public record Method(String name, EnsembleKind kind, int k, boolean clean) {}

  /** The methods: single, independent, linear, LoRA ensembles and a LoRA K=1 control. */
  public static List<Method> methods(int k) {
    return List.of(
        new Method("single", EnsembleKind.SINGLE, 1, false),
        new Method("independent-" + k, EnsembleKind.INDEPENDENT, k, false),
        new Method("linear-" + k, EnsembleKind.LINEAR, k, false),
        new Method("lora-" + k, EnsembleKind.LORA, k, true),
        new Method("lora-1-control", EnsembleKind.LORA, 1, true));
  }

  /**
   * Run settings.
   *
   * @param sftSteps SFT optimizer steps (batch 32)
   * @param preferencePairs noisy preference pairs per seed
   * @param cleanPairs cleaner pairs (LoRA phase 2)
   * @param evalPrompts held-out prompts in the Best-of-n and PPO evaluation
   * @param pool Best-of-n pool size per prompt
   * @param ppoIterations PPO iterations per reward (0 = no PPO)
   * @param ppoEvalEvery evaluate the PPO policy every N iterations
   * @param ppoRollout PPO rollout batch
   */
  public record Settings(
      Path out, boolean full, int seeds, int k, int sftSteps, int preferencePairs, int cleanPairs, double noise,
      double cleanNoise, int samplesPerPrompt, int rmEpochs, int rmBatch, double rmLr, double loraLr,
      int evalPrompts, int pool, int maxNewTokens, int ppoIterations, int ppoEvalEvery, int ppoRollout,
      int ppoEvalPrompts, int threads, long worldSeed) {

    /** The default (fast) run. */
    public static Settings fast(Path out) {
      return new Settings(out, false, 6, 3, 2000, 1000, 330, PreferenceBuilder.NOISY_FLIP_RATE,
          PreferenceBuilder.CLEAN_FLIP_RATE, 4, 2, 16, 1e-3, 1e-3, 60, 200, 40, 40, 10, 32, 60, 0, 1);
    }

    /** The --full run: more seeds, prompts and PPO. */
    public static Settings fullRun(Path out) {
      return new Settings(out, true, 10, 3, 2000, 1000, 330, PreferenceBuilder.NOISY_FLIP_RATE,
          PreferenceBuilder.CLEAN_FLIP_RATE, 4, 2, 16, 1e-3, 1e-3, 200, 200, 40, 150, 15, 32, 200, 0, 1);
    }

    /** A tiny run for tests (about a minute). */
    public static Settings tiny(Path out) {
      return new Settings(out, false, 2, 2, 150, 48, 24, PreferenceBuilder.NOISY_FLIP_RATE,
          PreferenceBuilder.CLEAN_FLIP_RATE, 4, 1, 16, 1e-3, 1e-3, 5, 8, 24, 2, 1, 8, 5, 0, 1);
    }

    /** The same settings marked as a full run (PPO over several seeds). */
    public Settings asFull() {
      return new Settings(out, true, seeds, k, sftSteps, preferencePairs, cleanPairs, noise, cleanNoise,
          samplesPerPrompt, rmEpochs, rmBatch, rmLr, loraLr, evalPrompts, pool, maxNewTokens, ppoIterations,
          ppoEvalEvery, ppoRollout, ppoEvalPrompts, threads, worldSeed);
    }

    /** PPO seeds: the paper's 5 in a full run (at most the reward-model seeds), 1 in fast mode. */
    public int ppoSeeds() {
      return full ? Math.min(5, seeds) : 1;
    }

    public Settings with(int seeds, int pairs, double noise, double cleanNoise, int pool, int ppoIterations) {
      return new Settings(out, full, seeds, k, sftSteps, pairs, Math.max(2, pairs / 3), noise, cleanNoise,
          samplesPerPrompt, rmEpochs, rmBatch, rmLr, loraLr, evalPrompts, pool, maxNewTokens, ppoIterations,
          ppoEvalEvery, ppoRollout, ppoEvalPrompts, threads, worldSeed);
    }
  }

  /** What the run wrote. */
  public record Result(Path report, Path results, double seconds) {}

  // ---------------------------------------------------------------------------------------------

  private static final class Timer {
    final Map<String, Double> phases = new LinkedHashMap<>();
    final Consumer<String> log;
    long start;
    String name;

    Timer(Consumer<String> log) {
      this.log = log;
    }

    void begin(String n) {
      name = n;
      start = System.nanoTime();
      log.accept("[demo] " + n + " ...");
    }

    void end() {
      double s = (System.nanoTime() - start) / 1e9;
      phases.merge(name, s, Double::sum);
      log.accept(String.format(Locale.ROOT, "[demo] %s done in %.1f s", name, s));
    }
  }

  /** Runs the whole demo. */
  public static Result run(Settings s, Consumer<String> log) throws IOException {
    return run(s, log, TrainListener.NONE);
  }

  /** As {@link #run(Settings, Consumer)}, drawing the SFT training (the longest phase) on {@code progress}. */
  public static Result run(Settings s, Consumer<String> log, TrainListener progress) throws IOException {
    long t0 = System.nanoTime();
    Timer timer = new Timer(log);
    Files.createDirectories(s.out());
    ExecConfig exec = new ExecConfig(s.threads(), 0, false);
    World world = World.create(s.worldSeed());
    GoldJudge judge = world.judge();

    // Phase 1: SFT policy.
    timer.begin("world + SFT policy (" + s.sftSteps() + " steps)");
    Path sftDir = s.out().resolve("sft");
    SftPolicy.Settings sft = SftPolicy.Settings.defaults().withSteps(s.sftSteps());
    sft = new SftPolicy.Settings(sft.demonstrations(), sft.training(), sft.initSeed(), exec);
    SftPolicy.train(world, sftDir, sft, progress);
    timer.end();

    // Phase 2: preference data from the real sampler on training prompts.
    timer.begin("sample preference data (" + s.preferencePairs() + " noisy + " + s.cleanPairs() + " clean pairs)");
    List<Task> train = new ArrayList<>(world.tasks().train());
    java.util.Collections.shuffle(train, new java.util.Random(s.worldSeed() * 31 + 5));
    int pairsPerPrompt = 2;
    int noisyPrompts = Math.min(train.size() / 2, (int) Math.ceil(s.preferencePairs() * 1.3 / pairsPerPrompt) + 2);
    int cleanPrompts = Math.min(train.size() - noisyPrompts, (int) Math.ceil(s.cleanPairs() * 1.3 / pairsPerPrompt) + 2);
    List<Task> noisyTasks = train.subList(0, noisyPrompts);
    List<Task> cleanTasks = train.subList(noisyPrompts, noisyPrompts + cleanPrompts);
    SamplingConfig sampling = SamplingConfig.bestOfN().withMaxNewTokens(s.maxNewTokens());
    Map<String, List<PreferenceBuilder.Response>> noisySamples;
    Map<String, List<PreferenceBuilder.Response>> cleanSamples;
    int generated;
    try (Sampler sampler = Sampler.load(sftDir, exec)) {
      noisySamples = sample(sampler, noisyTasks, s.samplesPerPrompt(), sampling.withSeed(11));
      cleanSamples = sample(sampler, cleanTasks, s.samplesPerPrompt(), sampling.withSeed(12));
      generated = (noisyPrompts + cleanPrompts) * s.samplesPerPrompt();
    }
    timer.end();
    log.accept("[demo] generated " + generated + " responses for preference data");

    List<Method> methods = methods(s.k());
    int[] ns = nsFor(s.pool());

    // Phase 3: Best-of-n pool on held-out prompts (shared by every reward model and seed).
    timer.begin("Best-of-n pool (" + s.evalPrompts() + " held-out prompts x " + s.pool() + ")");
    List<Task> evalTasks = evalSubset(world, s.evalPrompts());
    List<int[]> evalPromptIds = evalTasks.stream().map(t -> World.promptIds(t.instruction())).toList();
    List<List<Generation>> pool;
    try (Sampler sampler = Sampler.load(sftDir, exec)) {
      pool = BestOfNRunner.sample(sampler, evalPromptIds, s.pool(), sampling.withSeed(99), 64);
    }
    int P = evalTasks.size();
    int m = s.pool();
    double[][] gold = new double[P][m];
    double[][] winVsSft = new double[P][m];
    List<int[]> poolSeqs = new ArrayList<>(P * m);
    for (int p = 0; p < P; p++) {
      for (int j = 0; j < m; j++) {
        Generation g = pool.get(p).get(j);
        gold[p][j] = judge.score(evalTasks.get(p).instruction(), World.responseText(g.responseIds()), g.finished());
        poolSeqs.add(rmSequence(g.promptIds(), g.responseIds()));
      }
      for (int j = 0; j < m; j++) {
        winVsSft[p][j] = winProbability(gold[p][j], gold[p]);
      }
    }
    timer.end();

    // Phase 4: per seed, preference sets, reward models, Best-of-n.
    ArrayNode seedsJson = JSON.createArrayNode();
    // results[method][agg][seed][nIndex] for gold, proxy, win; plus members alone.
    Map<String, double[][][]> bonGold = new LinkedHashMap<>();
    Map<String, double[][][]> bonProxy = new LinkedHashMap<>();
    Map<String, double[][][]> bonWin = new LinkedHashMap<>();
    Map<String, double[][]> membersAloneWin = new LinkedHashMap<>(); // method -> [seed][n] (mean over members)
    Map<String, double[][]> membersAloneGold = new LinkedHashMap<>();
    Map<String, double[]> rmGoldAcc = new LinkedHashMap<>(); // method|agg -> [seed]
    Map<String, double[]> rmCorr = new LinkedHashMap<>();
    Map<String, List<Path>> rmDirs = new LinkedHashMap<>(); // method -> reward-model directory per seed
    for (Method mt : methods) {
      for (AggregationConfig a : AGGREGATIONS) {
        String key = mt.name() + "|" + label(a);
        bonGold.put(key, new double[s.seeds()][][]);
        bonProxy.put(key, new double[s.seeds()][][]);
        bonWin.put(key, new double[s.seeds()][][]);
        rmGoldAcc.put(key, new double[s.seeds()]);
      }
      membersAloneWin.put(mt.name(), new double[s.seeds()][]);
      membersAloneGold.put(mt.name(), new double[s.seeds()][]);
      rmCorr.put(mt.name(), new double[s.seeds()]);
    }
    List<String> accNotes = new ArrayList<>();
    for (int seed = 0; seed < s.seeds(); seed++) {
      long sd = 1000L + seed;
      timer.begin("seed " + seed + ": preference sets");
      PreferenceBuilder.Result noisy = PreferenceBuilder.build(noisySamples, judge, s.noise(), pairsPerPrompt, sd);
      PreferenceBuilder.Result clean = PreferenceBuilder.build(cleanSamples, judge, s.cleanNoise(), pairsPerPrompt, sd + 7);
      List<PreferenceBuilder.Row> noisyRows = noisy.rows().subList(0, Math.min(s.preferencePairs(), noisy.rows().size()));
      List<PreferenceBuilder.Row> cleanRows = clean.rows().subList(0, Math.min(s.cleanPairs(), clean.rows().size()));
      Path seedDir = s.out().resolve("seed-" + seed);
      Path noisyFile = seedDir.resolve("prefs-noisy.json");
      Path cleanFile = seedDir.resolve("prefs-clean.json");
      PreferenceBuilder.writeAlpacaFarm(noisyRows, noisyFile);
      PreferenceBuilder.writeAlpacaFarm(cleanRows, cleanFile);
      ObjectNode sj = seedsJson.addObject();
      sj.put("seed", seed);
      sj.put("noisy_pairs", noisyRows.size());
      sj.put("noisy_flipped", noisyRows.stream().filter(PreferenceBuilder.Row::flipped).count());
      sj.put("clean_pairs", cleanRows.size());
      sj.put("clean_flipped", cleanRows.stream().filter(PreferenceBuilder.Row::flipped).count());
      timer.end();
      for (Method mt : methods) {
        timer.begin("seed " + seed + ": train RM " + mt.name());
        Path rmDir = seedDir.resolve("rm-" + mt.name());
        trainRm(s, exec, sftDir, mt, mt.clean() ? cleanFile : noisyFile, noisyFile, rmDir, sd);
        rmDirs.computeIfAbsent(mt.name(), k -> new ArrayList<>()).add(rmDir);
        timer.end();
        timer.begin("seed " + seed + ": score pool with " + mt.name());
        float[][] raw;
        RewardModel rmLoaded = RewardModel.load(rmDir, exec);
        try (RewardModel rm = rmLoaded) {
          raw = rm.score(poolSeqs, 128);
          for (AggregationConfig a : AGGREGATIONS) {
            String key = mt.name() + "|" + label(a);
            double[][] agg = new double[P][m];
            double[][] proxyMean = new double[P][m];
            for (int p = 0; p < P; p++) {
              for (int j = 0; j < m; j++) {
                MemberScores ms = rm.aggregate(raw[p * m + j], a);
                agg[p][j] = ms.reward();
                proxyMean[p][j] = ms.mean();
              }
            }
            bonGold.get(key)[seed] = curves(agg, gold, ns);
            bonProxy.get(key)[seed] = curves(agg, proxyMean, ns);
            bonWin.get(key)[seed] = curves(agg, winVsSft, ns);
            rmGoldAcc.get(key)[seed] = pairAccuracy(agg, gold);
          }
          int K = rm.heads();
          double[][] winAlone = new double[K][];
          double[][] goldAlone = new double[K][];
          double[][][] memberScores = new double[K][P][m];
          for (int k = 0; k < K; k++) {
            for (int p = 0; p < P; p++) {
              for (int j = 0; j < m; j++) {
                memberScores[k][p][j] = raw[p * m + j][k];
              }
            }
            winAlone[k] = curves(memberScores[k], winVsSft, ns)[0];
            goldAlone[k] = curves(memberScores[k], gold, ns)[0];
          }
          membersAloneWin.get(mt.name())[seed] = meanRows(winAlone);
          membersAloneGold.get(mt.name())[seed] = meanRows(goldAlone);
          rmCorr.get(mt.name())[seed] = K < 2 ? Double.NaN : meanCorrelation(memberScores);
        }
        timer.end();
      }
    }

    // Phase 5: PPO (first seed's reward models).
    List<PpoCurve> ppo = new ArrayList<>();
    String ppoNote;
    if (s.ppoIterations() > 0) {
      List<String> ppoMethods = List.of("single", "independent-" + s.k(), "linear-" + s.k(), "lora-" + s.k());
      List<Task> ppoEval = evalTasks.subList(0, Math.min(s.ppoEvalPrompts(), evalTasks.size()));
      for (String name : ppoMethods) {
        for (AggregationConfig a : name.equals("single") ? List.of(AggregationConfig.mean()) : List.of(AggregationConfig.mean(), AggregationConfig.lcb(0.5))) {
          timer.begin("PPO with " + name + " " + label(a) + " (" + s.ppoIterations() + " iterations)");
          List<PpoCurve> curves = new ArrayList<>();
          for (int j = 0; j < s.ppoSeeds(); j++) {
            curves.add(runPpo(s, exec, world, sftDir, rmDirs.get(name).get(j), name, a, ppoEval, gold, log, j));
          }
          ppo.add(PpoCurve.mean(curves));
          timer.end();
        }
      }
      ppoNote = (s.ppoSeeds() == 1 ? "PPO ran once (seed 0's reward models, one PPO seed)"
          : "PPO ran " + s.ppoSeeds() + " times (seed j's reward models with PPO seed j; win rates are means +- standard errors over those seeds)")
          + " for single, independent-" + s.k() + ", linear-"
          + s.k() + " and lora-" + s.k() + " (ensembles with mean and LCB 0.5), " + s.ppoIterations()
          + " iterations of " + s.ppoRollout() + " rollouts each; the policy is evaluated every " + s.ppoEvalEvery()
          + " iterations on " + ppoEval.size() + " held-out prompts x " + PPO_EVAL_SAMPLES + " samples."
          + " The lora-1 control is not run with PPO.";
    } else {
      ppoNote = "PPO was not run (--no-ppo or --ppo-iterations 0).";
    }

    // Outputs.
    timer.begin("report, CSVs, plots");
    Report rep = new Report(s, methods, ns, P, m, bonGold, bonProxy, bonWin, membersAloneWin, membersAloneGold,
        rmGoldAcc, rmCorr, ppo, ppoNote, timer.phases, seedsJson, generated, meanOf(gold), new LinkedHashMap<>());
    rep.write();
    timer.end();
    double total = (System.nanoTime() - t0) / 1e9;
    rep.finish(total);
    return new Result(s.out().resolve("report.md"), s.out().resolve("results.json"), total);
  }

  // ---------------------------------------------------------------------------------------------

  static int[] nsFor(int pool) {
    int[] all = {1, 2, 4, 8, 16, 32, 64, 128, 200};
    List<Integer> out = new ArrayList<>();
    for (int n : all) {
      if (n <= pool) {
        out.add(n);
      }
    }
    if (out.get(out.size() - 1) != pool) {
      out.add(pool);
    }
    return out.stream().mapToInt(Integer::intValue).toArray();
  }

  static String label(AggregationConfig a) {
    return dev.rewardensemble.ensemble.Diagnostics.label(a);
  }

  private static List<Task> evalSubset(World world, int n) {
    // Round-robin over task kinds so every kind is represented.
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
   * tokens(response)} with no BOS and no EOS, so the policy's BOS is dropped and the EOS is stripped
   * ({@link BestOfNRunner#scoredSequence}).
   */
  static int[] rmSequence(int[] promptIds, int[] responseIds) {
    int[] p = promptIds.length > 0 && promptIds[0] == CharVocabulary.BOS
        ? Arrays.copyOfRange(promptIds, 1, promptIds.length) : promptIds;
    return BestOfNRunner.scoredSequence(p, responseIds, CharVocabulary.EOS, SftPolicy.config().maxPositions());
  }

  private static void trainRm(
      Settings s, ExecConfig exec, Path sftDir, Method mt, Path data, Path noisyFile, Path out, long seed)
      throws IOException {
    TrainConfig tc = TrainConfig.builder().epochs(s.rmEpochs()).batchSize(s.rmBatch()).gradAccum(1).lr(s.rmLr())
        .seed(seed).keepCheckpoints(1).build();
    EnsembleOptions ens = switch (mt.kind()) {
      case SINGLE -> EnsembleOptions.single();
      case INDEPENDENT -> EnsembleOptions.of(EnsembleKind.INDEPENDENT, mt.k());
      case LINEAR -> new EnsembleOptions(EnsembleKind.LINEAR, mt.k(), true, null, 0.5, null, s.loraLr(),
          Schedule.Kind.CONSTANT, AggregationConfig.mean(), true, 2048);
      case LORA -> new EnsembleOptions(EnsembleKind.LORA, mt.k(), mt.k() > 1, null, 0.5, noisyFile, s.loraLr(),
          Schedule.Kind.CONSTANT, AggregationConfig.mean(), true, 2048);
    };
    RewardTraining.TrainRequest req = new RewardTraining.TrainRequest(sftDir, data, out, tc, exec, ens, null,
        PromptTemplate.RAW, PreferenceFormat.AUTO, 0, false, false);
    RewardTraining.train(req, TrainListener.NONE);
  }

  /** Probability that a response of gold score {@code g} beats a random pool sample (ties 1/2). */
  static double winProbability(double g, double[] pool) {
    double w = 0;
    for (double x : pool) {
      w += x < g - PreferenceBuilder.TIE ? 1 : Math.abs(x - g) <= PreferenceBuilder.TIE ? 0.5 : 0;
    }
    return w / pool.length;
  }

  /** {@code [1][nIndex]}: Best-of-n expected value averaged over prompts. */
  static double[][] curves(double[][] select, double[][] value, int[] ns) {
    double[] out = new double[ns.length];
    for (int i = 0; i < ns.length; i++) {
      double sum = 0;
      for (int p = 0; p < select.length; p++) {
        sum += BestOfN.expected(select[p], value[p], ns[i]);
      }
      out[i] = sum / select.length;
    }
    return new double[][] {out};
  }

  /** Fraction of within-prompt pool pairs with different gold scores that the proxy orders like gold (ties 1/2). */
  static double pairAccuracy(double[][] proxy, double[][] gold) {
    double right = 0;
    long pairs = 0;
    for (int p = 0; p < proxy.length; p++) {
      for (int i = 0; i < proxy[p].length; i++) {
        for (int j = i + 1; j < proxy[p].length; j++) {
          double dg = gold[p][i] - gold[p][j];
          if (Math.abs(dg) <= PreferenceBuilder.TIE) {
            continue;
          }
          double dp = proxy[p][i] - proxy[p][j];
          right += dp == 0 ? 0.5 : (dp > 0) == (dg > 0) ? 1 : 0;
          pairs++;
        }
      }
    }
    return pairs == 0 ? Double.NaN : right / pairs;
  }

  private static double[] meanRows(double[][] rows) {
    double[] out = new double[rows[0].length];
    for (double[] r : rows) {
      for (int i = 0; i < out.length; i++) {
        out[i] += r[i] / rows.length;
      }
    }
    return out;
  }

  private static double meanCorrelation(double[][][] members) {
    int K = members.length;
    List<double[]> flat = new ArrayList<>();
    for (double[][] mk : members) {
      flat.add(Arrays.stream(mk).flatMapToDouble(Arrays::stream).toArray());
    }
    double sum = 0;
    int n = 0;
    for (int a = 0; a < K; a++) {
      for (int b = a + 1; b < K; b++) {
        sum += pearson(flat.get(a), flat.get(b));
        n++;
      }
    }
    return sum / n;
  }

  static double pearson(double[] x, double[] y) {
    double mx = Arrays.stream(x).average().orElse(0), my = Arrays.stream(y).average().orElse(0);
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < x.length; i++) {
      sxy += (x[i] - mx) * (y[i] - my);
      sxx += (x[i] - mx) * (x[i] - mx);
      syy += (y[i] - my) * (y[i] - my);
    }
    return sxx == 0 || syy == 0 ? Double.NaN : sxy / Math.sqrt(sxx * syy);
  }

  private static double meanOf(double[][] a) {
    return Arrays.stream(a).flatMapToDouble(Arrays::stream).average().orElse(Double.NaN);
  }

  // ---------------------------------------------------------------------------------------------
  // PPO

  /** Samples per held-out prompt in a PPO evaluation. */
  static final int PPO_EVAL_SAMPLES = 4;

  /** One PPO run's evaluations. */
  public record PpoPoint(int iteration, double winRate, double gold, double proxy, double kl, double winRateSe) {}

  /** A PPO curve, the mean over {@code seeds} runs (standard error of the win rate across them). */
  public record PpoCurve(String method, String aggregation, List<PpoPoint> points, int seeds) {
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
        Stat st = Stat.of(win);
        pts.add(new PpoPoint(first.points().get(i).iteration(), st.mean(), gold, proxy, kl, n > 1 ? st.se() : Double.NaN));
      }
      return new PpoCurve(first.method(), first.aggregation(), pts, n);
    }
  }

  private static PpoCurve runPpo(
      Settings s, ExecConfig exec, World world, Path sftDir, Path rmDir, String name, AggregationConfig agg,
      List<Task> evalTasks, double[][] poolGold, Consumer<String> log, int ppoSeed) throws IOException {
    HfCheckpoint.Checkpoint pol = HfCheckpoint.load(sftDir);
    EnsembleModel em = EnsembleModel.load(rmDir);
    Map<String, FloatTensor> valueTrunk = em.trunkWeights();
    GoldJudge judge = world.judge();
    List<PpoPoint> points = new ArrayList<>();
    try (RewardModel rm = RewardModel.of(em, exec)) {
      SequenceScorer inner = SequenceScorer.of(rm, agg, -1, 64);
      // The reward model reads prompts without BOS (see rmSequence); PPO passes responses without EOS.
      SequenceScorer scorer = (prompts, responses) -> inner.score(
          prompts.stream().map(p -> p.length > 1 && p[0] == CharVocabulary.BOS ? Arrays.copyOfRange(p, 1, p.length) : p).toList(),
          responses);
      PpoConfig cfg = PpoConfig.builder().rolloutBatch(s.ppoRollout()).stepBatch(s.ppoRollout() / 2).lr(3e-4)
          .warmupSteps(2).klCoef(0.05).missingEosPenalty(1.0).temperature(1.0).maxNewTokens(s.maxNewTokens())
          .seed(42 + ppoSeed).build();
      List<Task> train = new ArrayList<>(world.tasks().train());
      java.util.Collections.shuffle(train, new java.util.Random(4242 + ppoSeed));
      List<int[]> evalIds = new ArrayList<>();
      for (Task t : evalTasks) {
        for (int r = 0; r < PPO_EVAL_SAMPLES; r++) {
          evalIds.add(World.promptIds(t.instruction()));
        }
      }
      try (PpoTrainer trainer = new PpoTrainer(pol.config(), pol.weights(), em.config(), valueTrunk, scorer, cfg, exec)) {
        double[] pending = null;
        int cursor = 0;
        for (int it = 0; it <= s.ppoIterations(); it++) {
          if (it % s.ppoEvalEvery() == 0 || it == s.ppoIterations()) {
            List<Generation> gens = trainer.sampler().generate(
                evalIds, SamplingConfig.bestOfN().withMaxNewTokens(s.maxNewTokens()).withSeed(777 + it + 100_003L * ppoSeed), 64);
            double win = 0, g = 0;
            List<int[]> ps = new ArrayList<>();
            List<int[]> rs = new ArrayList<>();
            for (int i = 0; i < gens.size(); i++) {
              Generation x = gens.get(i);
              int pi = i / PPO_EVAL_SAMPLES;
              double gs = judge.score(evalTasks.get(pi).instruction(), World.responseText(x.responseIds()), x.finished());
              g += gs;
              win += winProbability(gs, poolGold[pi]);
              ps.add(x.promptIds());
              int[] r = x.responseIds();
              rs.add(r.length > 0 && r[r.length - 1] == CharVocabulary.EOS ? Arrays.copyOf(r, r.length - 1) : r);
            }
            double proxy = scorer.score(ps, rs).stream().mapToDouble(MemberScores::mean).average().orElse(Double.NaN);
            pending = new double[] {it, win / gens.size(), g / gens.size(), proxy};
          }
          List<int[]> batch = new ArrayList<>();
          for (int b = 0; b < s.ppoRollout(); b++) {
            batch.add(World.promptIds(train.get(cursor++ % train.size()).instruction()));
          }
          // The rollout of this step is sampled from the policy just evaluated: its KL estimate is that
          // policy's KL to the SFT reference. After the last evaluation the step only measures the KL.
          PpoTrainer.Stats st = trainer.step(batch);
          if (pending != null) {
            PpoPoint pt = new PpoPoint((int) pending[0], pending[1], pending[2], pending[3], st.kl(), Double.NaN);
            points.add(pt);
            pending = null;
            log.accept(String.format(Locale.ROOT, "[demo]   PPO %s %s iteration %d: win %.3f gold %.3f proxy %.3f kl %.3f",
                name, label(agg), pt.iteration(), pt.winRate(), pt.gold(), pt.proxy(), pt.kl()));
          }
          if (it == s.ppoIterations()) {
            break;
          }
        }
      }
    }
    return new PpoCurve(name, label(agg), points, 1);
  }

  // ---------------------------------------------------------------------------------------------

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

  /** Mean and standard error (sample std / sqrt(n); NaN for n < 2). */
  record Stat(double mean, double se) {
    static Stat of(double[] xs) {
      double m = Arrays.stream(xs).average().orElse(Double.NaN);
      if (xs.length < 2) {
        return new Stat(m, Double.NaN);
      }
      double v = 0;
      for (double x : xs) {
        v += (x - m) * (x - m);
      }
      return new Stat(m, Math.sqrt(v / (xs.length - 1) / xs.length));
    }

    String fmt() {
      return Double.isNaN(se)
          ? String.format(Locale.ROOT, "%.3f", mean)
          : String.format(Locale.ROOT, "%.3f ± %.3f", mean, se);
    }
  }

  private record Report(
      Settings s, List<Method> methods, int[] ns, int prompts, int pool, Map<String, double[][][]> bonGold,
      Map<String, double[][][]> bonProxy, Map<String, double[][][]> bonWin, Map<String, double[][]> aloneWin,
      Map<String, double[][]> aloneGold, Map<String, double[]> rmAcc, Map<String, double[]> rmCorr,
      List<PpoCurve> ppo, String ppoNote, Map<String, Double> phases, ArrayNode seedsJson, int generated,
      double sftGold, Map<String, Object> state) {

    double[] at(Map<String, double[][][]> m, String key, int ni) {
      double[][][] v = m.get(key);
      double[] out = new double[v.length];
      for (int sd = 0; sd < v.length; sd++) {
        out[sd] = v[sd][0][ni];
      }
      return out;
    }

    void write() throws IOException {
      Path out = s.out();
      // CSVs
      StringBuilder bon = new StringBuilder("seed,method,aggregation,n,kl_bon,gold,proxy,win_rate\n");
      StringBuilder sum = new StringBuilder("method,aggregation,n,kl_bon,gold_mean,gold_se,proxy_mean,proxy_se,win_mean,win_se\n");
      ObjectNode root = JSON.createObjectNode();
      ObjectNode settings = JSON.valueToTree(Map.ofEntries(
          Map.entry("full", s.full()), Map.entry("seeds", s.seeds()), Map.entry("k", s.k()),
          Map.entry("sft_steps", s.sftSteps()), Map.entry("preference_pairs", s.preferencePairs()),
          Map.entry("clean_pairs", s.cleanPairs()), Map.entry("noise", s.noise()), Map.entry("clean_noise", s.cleanNoise()),
          Map.entry("rm_epochs", s.rmEpochs()), Map.entry("rm_batch", s.rmBatch()), Map.entry("rm_lr", s.rmLr()),
          Map.entry("lora_lr", s.loraLr()), Map.entry("eval_prompts", prompts), Map.entry("pool", pool),
          Map.entry("max_new_tokens", s.maxNewTokens()), Map.entry("ppo_iterations", s.ppoIterations()),
          Map.entry("ppo_rollout", s.ppoRollout())));
      root.set("settings", settings);
      root.set("seeds", seedsJson);
      root.put("generated_preference_responses", generated);
      root.put("sft_mean_gold", sftGold);
      ArrayNode bonJson = root.putArray("best_of_n");
      for (String key : bonGold.keySet()) {
        String[] mk = key.split("\\|");
        for (int ni = 0; ni < ns.length; ni++) {
          double[] g = at(bonGold, key, ni), p = at(bonProxy, key, ni), w = at(bonWin, key, ni);
          for (int sd = 0; sd < g.length; sd++) {
            bon.append(String.format(Locale.ROOT, "%d,%s,%s,%d,%.6f,%.6f,%.6f,%.6f%n", sd, mk[0], mk[1], ns[ni],
                BestOfN.kl(ns[ni]), g[sd], p[sd], w[sd]));
          }
          Stat sg = Stat.of(g), sp = Stat.of(p), sw = Stat.of(w);
          sum.append(String.format(Locale.ROOT, "%s,%s,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f%n", mk[0], mk[1], ns[ni],
              BestOfN.kl(ns[ni]), sg.mean, sg.se, sp.mean, sp.se, sw.mean, sw.se));
          ObjectNode o = bonJson.addObject();
          o.put("method", mk[0]);
          o.put("aggregation", mk[1]);
          o.put("n", ns[ni]);
          o.put("kl_bon", BestOfN.kl(ns[ni]));
          o.put("gold_mean", sg.mean);
          o.put("gold_se", sg.se);
          o.put("proxy_mean", sp.mean);
          o.put("proxy_se", sp.se);
          o.put("win_mean", sw.mean);
          o.put("win_se", sw.se);
          o.set("win_per_seed", JSON.valueToTree(w));
        }
      }
      writeAtomic(out.resolve("bon.csv"), bon.toString());
      writeAtomic(out.resolve("bon_summary.csv"), sum.toString());

      // Reward-model accuracy and correlation.
      StringBuilder acc = new StringBuilder("method,aggregation,gold_pair_accuracy_mean,gold_pair_accuracy_se,member_correlation_mean\n");
      ArrayNode accJson = root.putArray("reward_models");
      for (String key : rmAcc.keySet()) {
        String[] mk = key.split("\\|");
        Stat a = Stat.of(rmAcc.get(key));
        double corr = Arrays.stream(rmCorr.get(mk[0])).average().orElse(Double.NaN);
        acc.append(String.format(Locale.ROOT, "%s,%s,%.6f,%.6f,%.6f%n", mk[0], mk[1], a.mean, a.se, corr));
        ObjectNode o = accJson.addObject();
        o.put("method", mk[0]);
        o.put("aggregation", mk[1]);
        o.put("gold_pair_accuracy_mean", a.mean);
        o.put("gold_pair_accuracy_se", a.se);
        o.put("member_correlation_mean", corr);
      }
      writeAtomic(out.resolve("rm_accuracy.csv"), acc.toString());

      // Paired comparisons at the largest n.
      int last = ns.length - 1;
      StringBuilder pc = new StringBuilder("method,aggregation,versus,n,win_diff_mean,win_diff_se,gold_diff_mean,gold_diff_se\n");
      ArrayNode pj = root.putArray("paired");
      List<String[]> pairedRows = new ArrayList<>();
      for (Method mt : methods) {
        for (AggregationConfig a : AGGREGATIONS) {
          String key = mt.name() + "|" + label(a);
          double[] w = at(bonWin, key, last), g = at(bonGold, key, last);
          double[] ws = at(bonWin, "single|mean", last), gs = at(bonGold, "single|mean", last);
          double[] wa = new double[w.length], ga = new double[w.length];
          double[] dws = new double[w.length], dgs = new double[w.length];
          for (int sd = 0; sd < w.length; sd++) {
            dws[sd] = w[sd] - ws[sd];
            dgs[sd] = g[sd] - gs[sd];
            wa[sd] = w[sd] - aloneWin.get(mt.name())[sd][last];
            ga[sd] = g[sd] - aloneGold.get(mt.name())[sd][last];
          }
          for (String[] row : new String[][] {{"single", "s"}, {"own members alone", "a"}}) {
            boolean single = row[1].equals("s");
            if (single ? mt.name().equals("single") : mt.k() < 2) {
              continue;
            }
            Stat dw = Stat.of(single ? dws : wa), dg = Stat.of(single ? dgs : ga);
            pc.append(String.format(Locale.ROOT, "%s,%s,%s,%d,%.6f,%.6f,%.6f,%.6f%n", mt.name(), label(a), row[0],
                ns[last], dw.mean, dw.se, dg.mean, dg.se));
            ObjectNode o = pj.addObject();
            o.put("method", mt.name());
            o.put("aggregation", label(a));
            o.put("versus", row[0]);
            o.put("n", ns[last]);
            o.put("win_diff_mean", dw.mean);
            o.put("win_diff_se", dw.se);
            o.put("gold_diff_mean", dg.mean);
            o.put("gold_diff_se", dg.se);
            pairedRows.add(new String[] {mt.name(), label(a), row[0], dw.fmt(), dg.fmt()});
          }
        }
      }
      writeAtomic(out.resolve("paired.csv"), pc.toString());

      // PPO.
      StringBuilder pp = new StringBuilder("method,aggregation,iteration,win_rate,gold,proxy,kl\n");
      ArrayNode ppj = root.putArray("ppo");
      for (PpoCurve c : ppo) {
        for (PpoPoint p : c.points()) {
          pp.append(String.format(Locale.ROOT, "%s,%s,%d,%.6f,%.6f,%.6f,%.6f%n", c.method(), c.aggregation(),
              p.iteration(), p.winRate(), p.gold(), p.proxy(), p.kl()));
        }
        ObjectNode o = ppj.addObject();
        o.put("method", c.method());
        o.put("aggregation", c.aggregation());
        o.set("points", JSON.valueToTree(c.points()));
      }
      writeAtomic(out.resolve("ppo.csv"), pp.toString());
      root.set("phase_seconds", JSON.valueToTree(phases));
      root.put("ppo_note", ppoNote);
      state.put("root", root);

      // Plots.
      DemoPlots.winVsN(out.resolve("bon_win_vs_n.png"), methods, ns, bonWin, "mean");
      DemoPlots.goldProxyVsKl(out.resolve("bon_gold_proxy_vs_kl.png"), methods, ns, bonGold, bonProxy);
      DemoPlots.lcbVsMean(out.resolve("bon_lcb_vs_mean.png"), methods, ns, bonWin);
      DemoPlots.ppoWin(out.resolve("ppo_win_vs_iteration.png"), ppo);
      DemoPlots.ppoVsKl(out.resolve("ppo_gold_proxy_vs_kl.png"), ppo);
      state.put("paired", pairedRows);
    }

    void finish(double totalSeconds) throws IOException {
      ObjectNode root = (ObjectNode) state.get("root");
      root.put("total_seconds", totalSeconds);
      writeAtomic(s.out().resolve("results.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
      writeAtomic(s.out().resolve("report.md"), markdown(totalSeconds));
    }

    String markdown(double totalSeconds) {
      int last = ns.length - 1;
      int nMax = ns[last];
      StringBuilder md = new StringBuilder();
      md.append("# rme demo: reward-model ensembles in a gold-judge world\n\n");
      md.append("Reproduction, offline and on one CPU, of the questions of Zhang et al. 2024, *Improving RLHF with"
          + " Efficient Reward Model Ensemble*: **Q1** do ensembles improve Best-of-n and PPO over a single reward"
          + " model? **Q2** which ensemble is best? **Q3** mean or lower confidence bound (LCB)?\n\n");
      md.append("Every number below is measured with the world's gold judge (`GoldJudge`), which the reward models"
          + " never see; they learn from preference pairs sampled from the SFT policy and labelled by the gold judge"
          + " with a fraction of labels flipped.\n\n");
      md.append("## Settings\n\n");
      md.append(String.format(Locale.ROOT, "- mode: %s; seeds: %d (reward-model seeds: preference pairs, flips, init, data order)%n",
          s.full() ? "full" : "fast", s.seeds()));
      md.append(String.format(Locale.ROOT, "- SFT policy: %d steps; preference data: %d noisy pairs (%.0f%% flipped) and %d cleaner pairs (%.0f%% flipped) per seed, from %d sampled responses%n",
          s.sftSteps(), s.preferencePairs(), 100 * s.noise(), s.cleanPairs(), 100 * s.cleanNoise(), generated));
      md.append(String.format(Locale.ROOT, "- reward models: base = the SFT policy's trunk, RAW template, %d epoch(s), batch %d, lr %.0e (LoRA phase 2 lr %.0e), K = %d%n",
          s.rmEpochs(), s.rmBatch(), s.rmLr(), s.loraLr(), s.k()));
      md.append("- methods: `single`; `independent-K` (K full reward models); `linear-K` (one trunk, K bootstrap heads);"
          + " `lora-K` (phase 1: linear ensemble on the noisy set; phase 2: K LoRA adapters on the cleaner set);"
          + " `lora-1-control` (the same two phases with K = 1, so the cleaner data is not credited to ensembling)\n");
      md.append(String.format(Locale.ROOT, "- Best-of-n: %d held-out prompts, a pool of %d SFT samples per prompt (temperature 1, top-p 0.9, %d new tokens), expectations exact over all n-subsets; n in %s%n",
          prompts, pool, s.maxNewTokens(), Arrays.toString(ns)));
      md.append("- win rate vs SFT: probability that the chosen response beats a random SFT sample of the same prompt under the gold judge (ties count 1/2); 0.5 = no better than SFT\n");
      md.append(String.format(Locale.ROOT, "- SFT policy's mean gold score on the pool: %.3f%n", sftGold));
      md.append("- ± values are standard errors over seeds" + (s.seeds() < 2 ? " (not available with one seed)" : "") + "\n\n");

      md.append("## Reward models: accuracy against gold\n\n");
      md.append("Accuracy on every within-prompt pair of held-out pool samples with different gold scores (unflipped gold labels), and the mean Pearson correlation of the members' raw rewards on the pool.\n\n");
      md.append("| method | mean | LCB 0.1 | LCB 0.5 | member correlation |\n|---|---|---|---|---|\n");
      for (Method mt : methods) {
        md.append("| ").append(mt.name());
        for (AggregationConfig a : AGGREGATIONS) {
          md.append(" | ").append(Stat.of(rmAcc.get(mt.name() + "|" + label(a))).fmt());
        }
        double corr = Arrays.stream(rmCorr.get(mt.name())).average().orElse(Double.NaN);
        md.append(" | ").append(Double.isNaN(corr) ? "—" : String.format(Locale.ROOT, "%.3f", corr)).append(" |\n");
      }

      md.append("\n## Best-of-n (Figure 2a analogue)\n\n");
      md.append(String.format(Locale.ROOT, "Win rate vs SFT at n = %d (KL = %.2f nats), by method and aggregation:%n%n", nMax, BestOfN.kl(nMax)));
      md.append("| method | mean | LCB 0.1 | LCB 0.5 | gold (mean agg.) | proxy (mean agg.) |\n|---|---|---|---|---|---|\n");
      for (Method mt : methods) {
        md.append("| ").append(mt.name());
        for (AggregationConfig a : AGGREGATIONS) {
          md.append(" | ").append(Stat.of(at(bonWin, mt.name() + "|" + label(a), last)).fmt());
        }
        md.append(" | ").append(Stat.of(at(bonGold, mt.name() + "|mean", last)).fmt());
        md.append(" | ").append(Stat.of(at(bonProxy, mt.name() + "|mean", last)).fmt()).append(" |\n");
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
      for (Method mt : methods) {
        md.append("| ").append(mt.name()).append(" |");
        for (int ni = 0; ni < ns.length; ni++) {
          md.append(" ").append(Stat.of(at(bonWin, mt.name() + "|mean", ni)).fmt()).append(" |");
        }
        md.append("\n");
      }
      md.append(String.format(Locale.ROOT, "%nPaired by seed, at n = %d (difference in win rate, and in gold score):%n%n", nMax));
      md.append("| method | aggregation | versus | win-rate difference | gold difference |\n|---|---|---|---|---|\n");
      @SuppressWarnings("unchecked")
      List<String[]> pairedRows = (List<String[]>) state.get("paired");
      for (String[] r : pairedRows) {
        md.append("| ").append(String.join(" | ", r)).append(" |\n");
      }

      md.append("\n## PPO (Figure 2b analogue)\n\n").append(ppoNote).append("\n\n");
      if (!ppo.isEmpty()) {
        md.append("Win rate vs SFT and gold score of the PPO policy on held-out prompts (sampled at temperature 1, top-p 0.9); KL = the PPO trainer's estimate (k1, summed over the response, mean over a rollout of training prompts) for the evaluated policy; "
            + (ppo.get(0).seeds() > 1 ? "mean +- standard error over " + ppo.get(0).seeds() + " PPO seeds.\n\n" : "one seed, so no standard errors.\n\n"));
        md.append("| reward | iteration | win rate | gold | proxy (mean of members) | KL |\n|---|---|---|---|---|---|\n");
        for (PpoCurve c : ppo) {
          for (PpoPoint p : c.points()) {
            md.append(String.format(Locale.ROOT, "| %s %s | %d | %s | %.3f | %.3f | %.3f |%n", c.method(), c.aggregation(),
                p.iteration(), Double.isNaN(p.winRateSe()) ? String.format(Locale.ROOT, "%.3f", p.winRate())
                    : String.format(Locale.ROOT, "%.3f ± %.3f", p.winRate(), p.winRateSe()),
                p.gold(), p.proxy(), p.kl()));
          }
        }
      }

      md.append("\n## Answers\n\n");
      md.append(answers(last));

      md.append("\n## Files\n\n- `results.json`: every number below and above; `bon.csv` (per seed), `bon_summary.csv`,"
          + " `rm_accuracy.csv`, `paired.csv`, `ppo.csv`\n- plots: `bon_win_vs_n.png` (2a), `ppo_win_vs_iteration.png` (2b),"
          + " `bon_gold_proxy_vs_kl.png` and `ppo_gold_proxy_vs_kl.png` (over-optimisation), `bon_lcb_vs_mean.png` (3-4)\n");
      md.append("\n## Time\n\n| phase | seconds |\n|---|---|\n");
      phases.forEach((k, v) -> md.append(String.format(Locale.ROOT, "| %s | %.1f |%n", k, v)));
      md.append(String.format(Locale.ROOT, "| **total** | **%.1f** (%.1f min) |%n", totalSeconds, totalSeconds / 60));
      return md.toString();
    }

    private String verdict(Stat d) {
      if (Double.isNaN(d.se)) {
        return d.mean > 0 ? "positive (one seed: no standard error, so not a conclusion)" : "not positive (one seed: no standard error)";
      }
      if (d.mean > 2 * d.se) {
        return "positive by more than two standard errors";
      }
      if (d.mean < -2 * d.se) {
        return "negative by more than two standard errors";
      }
      return "within two standard errors of zero";
    }

    private Stat diff(String a, String b, int ni) {
      double[] x = at(bonWin, a, ni), y = at(bonWin, b, ni);
      double[] d = new double[x.length];
      for (int i = 0; i < d.length; i++) {
        d[i] = x[i] - y[i];
      }
      return Stat.of(d);
    }

    private String answers(int last) {
      StringBuilder a = new StringBuilder();
      int nMax = ns[last];
      // Q1: each ensemble (mean) vs single.
      a.append(String.format(Locale.ROOT, "**Q1 (Best-of-n, n = %d).** ", nMax));
      String best = null;
      double bestWin = Double.NEGATIVE_INFINITY;
      for (Method mt : methods) {
        if (mt.k() < 2) {
          continue;
        }
        for (AggregationConfig ag : AGGREGATIONS) {
          double w = Stat.of(at(bonWin, mt.name() + "|" + label(ag), last)).mean;
          if (w > bestWin) {
            bestWin = w;
            best = mt.name() + "|" + label(ag);
          }
        }
        Stat d = diff(mt.name() + "|mean", "single|mean", last);
        a.append(String.format(Locale.ROOT, "%s (mean) vs single: win-rate difference %s, %s. ", mt.name(), d.fmt(), verdict(d)));
      }
      Stat ctl = diff("lora-" + s.k() + "|mean", "lora-1-control|mean", last);
      a.append(String.format(Locale.ROOT, "The LoRA ensemble vs its K = 1 control (same data, so the effect of ensembling alone): %s, %s. ",
          ctl.fmt(), verdict(ctl)));
      a.append("Peak of the win-rate curve over n (mean aggregation): ");
      boolean peakBeforeEnd = false;
      for (Method mt : methods) {
        int bi = 0;
        for (int ni = 0; ni < ns.length; ni++) {
          if (Stat.of(at(bonWin, mt.name() + "|mean", ni)).mean > Stat.of(at(bonWin, mt.name() + "|mean", bi)).mean) {
            bi = ni;
          }
        }
        peakBeforeEnd |= bi < ns.length - 1;
        a.append(String.format(Locale.ROOT, "%s %s at n = %d; ", mt.name(), Stat.of(at(bonWin, mt.name() + "|mean", bi)).fmt(), ns[bi]));
      }
      a.setLength(a.length() - 2);
      a.append(peakBeforeEnd
          ? ". Where the peak is below the largest n, choosing harder against the proxy lowered the gold win rate: over-optimisation.\n\n"
          : ".\n\n");
      if (!ppo.isEmpty()) {
        a.append("**Q1 (PPO).** Final win rate vs SFT: ");
        for (PpoCurve c : ppo) {
          PpoPoint p = c.points().get(c.points().size() - 1);
          a.append(String.format(Locale.ROOT, "%s %s %.3f (gold %.3f); ", c.method(), c.aggregation(), p.winRate(), p.gold()));
        }
        a.append(ppo.get(0).seeds() > 1
            ? "means over " + ppo.get(0).seeds() + " PPO seeds; read differences against the standard errors in the PPO table.\n\n"
            : "one seed and few iterations, so differences are indicative only.\n\n");
      }
      a.append(String.format(Locale.ROOT, "**Q2.** Highest Best-of-n win rate at n = %d among the ensembles: %s (%.3f; single: %s). ",
          nMax, best == null ? "-" : best.replace("|", " "), bestWin, Stat.of(at(bonWin, "single|mean", last)).fmt()));
      a.append("Differences between ensembles should be read against the standard errors in the tables above.\n\n");
      a.append("**Q3.** LCB minus mean (win rate, paired by seed): ");
      for (Method mt : methods) {
        if (mt.k() < 2) {
          continue;
        }
        for (double beta : new double[] {0.1, 0.5}) {
          Stat d = diff(mt.name() + "|" + label(AggregationConfig.lcb(beta)), mt.name() + "|mean", last);
          a.append(String.format(Locale.ROOT, "%s LCB %.1f: %s (%s); ", mt.name(), beta, d.fmt(), verdict(d)));
        }
      }
      a.setLength(a.length() - 2);
      a.append(".\n\nA difference counts as real here only when it exceeds two standard errors over seeds; with few seeds"
          + " and one small world, treat the rest as noise.\n");
      return a.toString();
    }
  }
}
