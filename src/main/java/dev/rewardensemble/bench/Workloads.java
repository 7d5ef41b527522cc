package dev.rewardensemble.bench;

import dev.rewardensemble.api.LoraPhase2;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.data.PreferencePair;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.LoraEnsembleGraph;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.rl.Sampler;
import dev.rewardensemble.rl.SamplingConfig;
import dev.rewardensemble.train.RewardTrainer;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import org.tensorflow.Graph;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Variable;
import org.tensorflow.op.linalg.MatMul;
import org.tensorflow.types.TFloat32;

/** The measured workloads, in this process. */
public final class Workloads {
  private Workloads() {}

  /**
   * Peak float32 matmul throughput: an {@code n x n} by {@code n x n} MatMul of two variables in a
   * graph with the benchmark's threads, {@code 2 n^3} FLOPs per run, median of {@code reps}.
   */
  public static double peakMatmulFlops(ExecConfig exec, int n, int reps) throws Exception {
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      Variable<TFloat32> a =
          tf.variable(tf.random.randomUniform(tf.constant(new long[] {n, n}), TFloat32.class));
      Variable<TFloat32> b =
          tf.variable(tf.random.randomUniform(tf.constant(new long[] {n, n}), TFloat32.class));
      MatMul<TFloat32> mm = tf.linalg.matMul(a, b);
      try (Session s = exec.newSession(g)) {
        Timing.Result r = Timing.measure(2, reps, () -> s.runner().addTarget(mm).run().close());
        return 2.0 * n * n * n / r.median();
      }
    }
  }

  /**
   * A workload built and loaded, ready to run: one batch, one step or one generation per {@link
   * #run}.
   */
  public interface Prepared extends AutoCloseable {
    void run() throws Exception;

    /** What the workload's note should add about how it runs (generation: its lanes), or "". */
    default String detail() {
      return "";
    }

    @Override
    void close();
  }

  /** Workload (d'): generation with sampling ({@link #sampled}). */
  public static final String GENERATE_SAMPLED = "generate-sampled";

  /**
   * The sampling of workload {@link #GENERATE_SAMPLED}: temperature 1, top-k 50, top-p 0.9, EOS
   * ignored (the peer: transformers' {@code generate(do_sample=True, temperature=1.0, top_k=50,
   * top_p=0.9)}).
   */
  static SamplingConfig sampled(int newTokens, long seed) {
    return new SamplingConfig(newTokens, false, 1.0, 0.9, 50, seed, false);
  }

  /** Workloads (a)-(d') by name, as {@code --workloads} names them. */
  public static final List<String> SINGLE_MODEL =
      List.of("score", "bt-step", "lora-step", "generate", GENERATE_SAMPLED);

  /**
   * Builds workload {@code name} ({@link #SINGLE_MODEL}) on seeded random weights of {@code c};
   * {@code ids} holds {@code 2 * batch} rows of {@code seq} tokens.
   */
  public static Prepared prepare(String name, ModelConfig c, int[] ids, BenchOptions o) {
    return prepare(name, c, ids, o, null);
  }

  /**
   * {@link #prepare(String, ModelConfig, int[], BenchOptions)} with the reward model's weights
   * (trunk and one head) read from the Hugging Face checkpoint {@code heads1} (null: generated in
   * this process), streamed from its memory map as {@code rme score} and {@code rme train-rm} read
   * a model: what {@link MemoryProbe} measures, like the peer's {@code from_pretrained} of the same
   * file. Generating the weights in the measured process put the generator's garbage into the peak
   * RSS (bf16 scoring on the 1.2B preset's 1024-wide copy: 916 MiB above the runtime against 569
   * loading the same weights from disk).
   */
  public static Prepared prepare(
      String name, ModelConfig c, int[] ids, BenchOptions o, Path heads1) {
    return switch (name) {
      case "score" -> {
        int n = o.batch() * o.seq();
        int[] batchIds = Arrays.copyOf(ids, n);
        int[] mask = noPadding(n);
        RewardModel rm =
            RewardModel.of(
                heads1 == null
                    ? BenchModels.ensemble("single", c, 1, o.seed(), BenchModels.stored(o.exec()))
                    : checkpoint(heads1),
                o.exec());
        yield prepared(() -> rm.run(batchIds, mask, o.batch(), o.seq()), rm::close);
      }
      case "bt-step" -> {
        List<PreferencePair> batch = pairs(ids, o);
        RewardTrainer tr =
            new RewardTrainer(
                c,
                1,
                RewardToken.LAST_NON_PAD,
                rewardWeights(c, o, heads1),
                trainConfig(o),
                o.exec(),
                key -> true);
        yield steps(tr, batch, c.padTokenId(), 1e-5);
      }
      case "lora-step" -> {
        List<PreferencePair> batch = pairs(ids, o);
        LoraConfig lora = BenchModels.lora(c, 0);
        Precision stored = BenchModels.stored(o.exec());
        LazyWeights init = rewardWeights(c, o, heads1);
        init.putAll(BenchModels.loraInit(c, lora, 1, o.seed()));
        java.util.Set<String> trainable =
            java.util.Set.copyOf(LoraEnsembleGraph.trainableKeys(c, lora));
        // the frozen trunk stored as train-rm's phase 2 stores it (--weights; auto: bfloat16 for
        // bf16 weights)
        Precision frozen = o.exec().weights().resolve(stored == Precision.BFLOAT16);
        RewardTrainer tr =
            new RewardTrainer(
                LoraPhase2.forward(
                    c, lora, 1, trainable, frozen, o.seed(), RewardToken.LAST_NON_PAD),
                init,
                trainConfig(o),
                o.exec(),
                trainable::contains);
        yield steps(tr, batch, c.padTokenId(), 5e-5);
      }
      case "generate", GENERATE_SAMPLED ->
          generation(
              name,
              Sampler.of(
                  c,
                  BenchModels.causalWeights(c, o.seed(), BenchModels.stored(o.exec())),
                  o.exec()),
              ids,
              o);
      default ->
          throw new IllegalArgumentException(
              "unknown workload '" + name + "' (expected " + SINGLE_MODEL + ")");
    };
  }

  /**
   * The reward model of checkpoint {@code dir} (one head), its weights left on disk until loaded.
   */
  private static EnsembleModel checkpoint(Path dir) {
    try {
      return EnsembleModel.fromCheckpoint(dir);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Trunk and one head: seeded ({@code heads1} null) or read lazily from checkpoint {@code heads1}.
   */
  private static LazyWeights rewardWeights(ModelConfig c, BenchOptions o, Path heads1) {
    if (heads1 == null) {
      return BenchModels.weights(c, 1, o.seed(), BenchModels.stored(o.exec()));
    }
    return new LazyWeights(checkpoint(heads1).weights());
  }

  /**
   * Generation workload {@code name} ({@code generate} or {@link #GENERATE_SAMPLED}) as {@link
   * #prepare} builds it, but with the weights loaded from the causal-LM checkpoint {@code
   * checkpoint} as {@code rme generate} loads them (streamed from disk), not from arrays built in
   * this process: what {@link MemoryProbe} measures, like the peer's {@code from_pretrained}.
   */
  public static Prepared prepareGeneration(
      String name, ModelConfig c, int[] ids, BenchOptions o, Path checkpoint) throws IOException {
    if (!name.equals("generate") && !name.equals(GENERATE_SAMPLED)) {
      throw new IllegalArgumentException("not a generation workload: '" + name + "'");
    }
    Sampler s = Sampler.load(checkpoint, o.exec());
    return generation(name, s, ids, o);
  }

  private static Prepared generation(String name, Sampler s, int[] ids, BenchOptions o) {
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < o.batch(); i++) {
      prompts.add(Arrays.copyOfRange(ids, i * o.seq(), i * o.seq() + BenchModels.PROMPT_TOKENS));
    }
    SamplingConfig cfg =
        name.equals("generate")
            ? SamplingConfig.greedy(o.seq()).withStopAtEos(false)
            : sampled(o.seq(), o.seed());
    return prepared(() -> s.generate(prompts, cfg, o.batch()), s::close, s.lanes().toString());
  }

  /** One training step per run: the batch's gradients, then AdamW at {@code lr}. */
  private static Prepared steps(RewardTrainer tr, List<PreferencePair> batch, int pad, double lr) {
    int[] step = {0};
    return prepared(
        () -> {
          tr.accumulate(batch, pad);
          tr.apply(lr, ++step[0]);
        },
        tr::close);
  }

  private static Prepared prepared(Timing.Action run, Runnable close) {
    return prepared(run, close, "");
  }

  private static Prepared prepared(Timing.Action run, Runnable close, String detail) {
    return new Prepared() {
      @Override
      public void run() throws Exception {
        run.run();
      }

      @Override
      public String detail() {
        return detail;
      }

      @Override
      public void close() {
        close.run();
      }
    };
  }

  /** (a) Scoring one batch with a single reward model: sequences/s. */
  public static WorkloadResult score(
      String preset, ModelConfig c, int[] ids, BenchOptions o, double peak) throws Exception {
    Timing.Result r;
    try (Prepared p = prepare("score", c, ids, o)) {
      r = Timing.measure(o.warmup(), o.reps(), p::run);
    }
    double flops = Flops.forward(c, o.batch(), o.seq(), 1);
    return new WorkloadResult(
        preset + "/score",
        "sequences/s",
        o.batch() / r.median(),
        r.median(),
        flops,
        flops / r.median() / peak,
        null,
        null,
        null,
        null,
        "single model, batch " + o.batch() + " x " + o.seq() + " tokens");
  }

  /**
   * The shared ids as {@code batch} pairs: rows {@code [0, batch)} chosen, {@code [batch, 2 batch)}
   * rejected.
   */
  static List<PreferencePair> pairs(int[] ids, BenchOptions o) {
    List<PreferencePair> out = new ArrayList<>();
    int t = o.seq();
    for (int i = 0; i < o.batch(); i++) {
      int[] chosen = Arrays.copyOfRange(ids, i * t, (i + 1) * t);
      int[] rejected = Arrays.copyOfRange(ids, (o.batch() + i) * t, (o.batch() + i + 1) * t);
      out.add(new PreferencePair(chosen, rejected, 0f, i + 1));
    }
    return out;
  }

  /**
   * Training settings of a benchmark step: one micro-batch, no accumulation, clipping at 1, weight
   * decay 0.01.
   */
  static TrainConfig trainConfig(BenchOptions o) {
    return TrainConfig.builder()
        .steps(1)
        .batchSize(o.batch())
        .gradAccum(1)
        .lr(1e-5)
        .weightDecay(0.01)
        .schedule(Schedule.Kind.CONSTANT)
        .warmupRatio(0.0)
        .evalFraction(0.0)
        .seed(o.seed())
        .keepCheckpoints(1)
        .build();
  }

  /** (b) One Bradley-Terry step of full finetuning (forward + backward + AdamW): tokens/s. */
  public static WorkloadResult btStep(
      String preset, ModelConfig c, int[] ids, BenchOptions o, double peak) throws Exception {
    Timing.Result r;
    try (Prepared p = prepare("bt-step", c, ids, o)) {
      r = Timing.measure(o.warmup(), o.reps(), p::run);
    }
    double tokens = 2.0 * o.batch() * o.seq();
    double flops = Flops.btStep(c, o.batch(), o.seq());
    return new WorkloadResult(
        preset + "/bt-step",
        "tokens/s",
        tokens / r.median(),
        r.median(),
        flops,
        flops / r.median() / peak,
        null,
        null,
        null,
        null,
        o.batch()
            + " pairs = "
            + 2 * o.batch()
            + " sequences x "
            + o.seq()
            + " tokens, forward+backward+AdamW, all weights trained");
  }

  /**
   * (c) One LoRA phase-2 step: K = 1 adapter (r 8, every projection) + head trained, trunk frozen:
   * tokens/s.
   */
  public static WorkloadResult loraStep(
      String preset, ModelConfig c, int[] ids, BenchOptions o, double peak) throws Exception {
    Timing.Result r;
    try (Prepared p = prepare("lora-step", c, ids, o)) {
      r = Timing.measure(o.warmup(), o.reps(), p::run);
    }
    LoraConfig lora = BenchModels.lora(c, 0);
    double tokens = 2.0 * o.batch() * o.seq();
    double flops = Flops.loraStep(c, lora, o.batch(), o.seq());
    return new WorkloadResult(
        preset + "/lora-step",
        "tokens/s",
        tokens / r.median(),
        r.median(),
        flops,
        flops / r.median() / peak,
        null,
        null,
        null,
        null,
        o.batch()
            + " pairs, K=1 LoRA r=8 on "
            + String.join(",", lora.targetModules())
            + ", trunk frozen");
  }

  /**
   * (d) Generation with the KV cache (one in-graph decode loop per batch): {@code batch} prompts of
   * {@link BenchModels#PROMPT_TOKENS} tokens, {@code seq} new tokens each, greedy, EOS ignored: new
   * tokens/s. Fewer repetitions than the other workloads (a run is a whole generation).
   */
  public static WorkloadResult generate(
      String preset, ModelConfig c, int[] ids, BenchOptions o, double peak) throws Exception {
    return generate("generate", preset, c, ids, o, peak);
  }

  /**
   * (d) with {@code workload} {@code generate} (greedy) or {@link #GENERATE_SAMPLED} (temperature
   * 1, top-k 50, top-p 0.9: {@link #sampled}).
   */
  public static WorkloadResult generate(
      String workload, String preset, ModelConfig c, int[] ids, BenchOptions o, double peak)
      throws Exception {
    Timing.Result r;
    String lanes;
    try (Prepared p = prepare(workload, c, ids, o)) {
      r = Timing.measure(Math.min(o.warmup(), 1), Math.min(o.reps(), 5), p::run);
      lanes = p.detail(); // the lanes the sampler chose
    }
    double tokens = (double) o.batch() * o.seq();
    double flops = Flops.generate(c, o.batch(), BenchModels.PROMPT_TOKENS, o.seq());
    return new WorkloadResult(
        preset + "/" + workload,
        "tokens/s",
        tokens / r.median(),
        r.median(),
        flops,
        flops / r.median() / peak,
        null,
        null,
        null,
        null,
        o.batch()
            + " prompts x "
            + BenchModels.PROMPT_TOKENS
            + " tokens, "
            + o.seq()
            + " new tokens each, "
            + (workload.equals("generate") ? "greedy" : "sampled (T 1, top-k 50, top-p 0.9)")
            + ", KV cache, EOS ignored, "
            + lanes);
  }

  /** An attention mask of {@code n} real tokens (the bench batches have no padding). */
  static int[] noPadding(int n) {
    int[] mask = new int[n];
    Arrays.fill(mask, 1);
    return mask;
  }

  /**
   * Members of a kind of {@link #ensembles}: 1 for the single model (also on K copies of the
   * batch), else K.
   */
  private static int members(String kind, BenchOptions o) {
    return kind.equals("single") || kind.equals(FLOOR) ? 1 : o.k();
  }

  /** Row of {@link #ensembles} holding the single model on K copies of the batch. */
  public static final String FLOOR = "single-x-k";

  /** Every row of {@link #ensembles}: {@link BenchModels#KINDS}, then {@link #FLOOR}. */
  public static final List<String> ALL_KINDS = allKinds();

  private static List<String> allKinds() {
    List<String> l = new ArrayList<>(BenchModels.KINDS);
    l.add(FLOOR);
    return List.copyOf(l);
  }

  /**
   * {@link #ensembles(String, ModelConfig, int[], BenchOptions, double, List, Consumer)} of every
   * kind.
   */
  public static List<WorkloadResult> ensembles(
      String preset, ModelConfig c, int[] ids, BenchOptions o, double peak, Consumer<String> log)
      throws Exception {
    return ensembles(preset, c, ids, o, peak, ALL_KINDS, log);
  }

  /**
   * (e) Scoring with each ensemble kind at K members: sequences/s (ratios against single in {@link
   * BenchRunner}). All kinds are loaded together, warmed up, then timed round-robin (one run of
   * each kind per round, in a shuffled order), so that a slow spell of a shared machine hits every
   * kind alike and the ratios stay comparable.
   */
  public static List<WorkloadResult> ensembles(
      String preset,
      ModelConfig c,
      int[] ids,
      BenchOptions o,
      double peak,
      List<String> only,
      Consumer<String> log)
      throws Exception {
    int n = o.batch() * o.seq();
    int[] batchIds = Arrays.copyOf(ids, n);
    int[] mask = noPadding(n);
    // The floor: the single model on K copies of the batch, the work of any ensemble that runs the
    // whole trunk
    // once per member (independent, and LoRA with adapters in every block).
    int kb = o.k() * o.batch();
    int[] kIds = new int[kb * o.seq()];
    for (int j = 0; j < o.k(); j++) {
      System.arraycopy(batchIds, 0, kIds, j * n, n);
    }
    int[] kMask = noPadding(kIds.length);
    List<String> kinds = ALL_KINDS.stream().filter(only::contains).toList();
    List<RewardModel> models = new ArrayList<>();
    List<Timing.Action> runs = new ArrayList<>();
    try {
      for (String kind : kinds) {
        RewardModel rm =
            RewardModel.of(
                BenchModels.ensemble(
                    kind.equals(FLOOR) ? "single" : kind,
                    c,
                    members(kind, o),
                    o.seed(),
                    BenchModels.stored(o.exec())),
                o.exec());
        models.add(rm);
        runs.add(
            kind.equals(FLOOR)
                ? () -> rm.run(kIds, kMask, kb, o.seq())
                : () -> rm.run(batchIds, mask, o.batch(), o.seq()));
      }
      for (int i = 0; i < o.warmup(); i++) {
        for (Timing.Action a : runs) {
          a.run();
        }
      }
      double[][] seconds = new double[kinds.size()][o.reps()];
      // Each round runs every kind once, in a fresh seeded order: what ran just before (a large
      // batch evicting
      // the caches, say) must not always precede the same kind.
      List<Integer> order = new ArrayList<>();
      for (int j = 0; j < runs.size(); j++) {
        order.add(j);
      }
      java.util.Random shuffle = new java.util.Random(o.seed());
      for (int rep = 0; rep < o.reps(); rep++) {
        java.util.Collections.shuffle(order, shuffle);
        for (int j : order) {
          long t0 = System.nanoTime();
          runs.get(j).run();
          seconds[j][rep] = (System.nanoTime() - t0) / 1e9;
        }
      }
      List<WorkloadResult> out = new ArrayList<>();
      for (int j = 0; j < kinds.size(); j++) {
        String kind = kinds.get(j);
        boolean floor = kind.equals(FLOOR);
        int k = members(kind, o);
        double median = Timing.median(seconds[j]);
        double flops =
            floor
                ? Flops.forward(c, kb, o.seq(), 1)
                : Flops.ensemble(kind, c, k, o.batch(), o.seq());
        String note =
            floor
                ? "single model on K="
                    + o.k()
                    + " copies of the batch ("
                    + kb
                    + " sequences), throughput per batch of "
                    + o.batch()
                    + ": the floor of any ensemble that runs the whole trunk per member"
                : "K=" + k;
        out.add(
            new WorkloadResult(
                preset + "/ensemble-" + kind,
                "sequences/s",
                o.batch() / median,
                median,
                flops,
                flops / median / peak,
                null,
                null,
                null,
                null,
                note + ", timed round-robin with the other kinds"));
        log.accept(String.format("  ensemble %-12s %8.1f sequences/s", kind, o.batch() / median));
      }
      return out;
    } finally {
      for (RewardModel rm : models) {
        rm.close();
      }
    }
  }
}
