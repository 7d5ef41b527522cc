package dev.rewardensemble.rl;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.OneDnn;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.data.Padding;
import dev.rewardensemble.data.TokenBatch;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.model.Attention;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.GraphSession;
import dev.rewardensemble.model.KvCache;
import dev.rewardensemble.model.LmHead;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.RunProfile;
import dev.rewardensemble.model.Transformers;
import dev.rewardensemble.model.Weights;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import java.util.function.IntConsumer;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Output;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.Tensor;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.ndarray.index.Indices;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.math.Cumsum;
import org.tensorflow.types.TBfloat16;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.TInt64;
import org.tensorflow.types.family.TType;

/**
 * Generates responses from a causal language model (Llama or GPT-2) with a key/value cache.
 *
 * <p>Design: the whole decode loop runs inside the graph, so one {@code Session.run} generates a
 * whole batch. Prefill and decode steps both run the family's one forward ({@link
 * Transformers#forward}) over a {@link KvCache} of prompt length + {@code maxNewTokens} slots,
 * allocated once and written in place: the prefill writes the left-padded prompts' keys and values
 * and chooses the first token; a {@code While} loop then feeds each new token through one step over
 * that position only, until every row has emitted EOS or {@code maxNewTokens} tokens exist. A
 * step's attention reads every slot of the cache, with unwritten and padding slots masked. (A cache
 * that started at the prompt plus 16 slots and grew by 16 when full read about half as many slots,
 * 1.06x tokens/s median on bench-gpt2, but every growth reallocated every layer, and the allocator
 * TensorFlow uses with oneDNN, a BFC allocator that never returns memory, kept the old sizes: +65
 * MiB peak RSS over 128 tokens on an 8-block, 1024-wide Llama, the most with oneDNN, where no
 * malloc setting changed it. Memory known before the run was preferred.) The cache never leaves the
 * graph (nothing crosses host and device per token); the loop body cannot capture outside tensors,
 * so it reads the weights and sampling settings from stand-ins that are re-pointed, once the loop
 * is built, to the outside tensors entered into the loop's frame once ({@link LoopInvariants}; as
 * loop variables they cost four control-flow ops per weight and step). A decode step's attention
 * takes the one-token form ({@link KvCache#extendByOne}). Token choice ({@link Sampling#choose}) is
 * an inverse-CDF lookup with one uniform number per row and step, fed from the host and drawn from
 * a stream seeded by the config's seed and the prompt's index in the request, so a row's draws do
 * not depend on which other prompts share its batch. An owned sampler of a small model runs several
 * decode loops at once, each over its own batches on its own thread ({@link GenerationLanes}); rows
 * come back in request order. A run of more requests with the same prompt than a batch has rows
 * (Best-of-n's n samples of a prompt) is refilled ({@link #units}): a row whose response ended
 * takes the run's next request at once, its cache forgetting the response and keeping the prompt
 * ({@link KvCache#restart}), so a batch no longer waits for its longest response before the next
 * batch begins; the responses are the same.
 *
 * <p>{@link #generateUncached} is the reference: it recomputes the full prefix for every token (one
 * run per token), with the same token choice. It exists for checks and the benchmark.
 *
 * <pre>{@code
 * try (Sampler s = Sampler.load(Path.of("models/sft"), ExecConfig.defaults())) {
 *   List<Generation> out = s.generate(List.of(promptIds), SamplingConfig.ppo().withSeed(7));
 * }
 * }</pre>
 *
 * <p>Safe for concurrent {@code generate} calls. Close it to free the graph and session.
 */
public final class Sampler implements AutoCloseable {
  /** Prompts per {@code Session.run} unless told otherwise. */
  public static final int DEFAULT_BATCH_SIZE = 16;

  private final ModelConfig config;
  private final Optional<Path> tokenizer;
  private final Graph graph;

  /**
   * The owner of the graph and session of a sampler that made its own; null for {@link #inGraph}.
   */
  private final GraphSession owner;

  private final boolean owned;
  private final ParameterStore params;
  private Session session;

  /**
   * Whether runs of requests with the same prompt are refilled ({@link #units}); on unless a
   * benchmark turns it off to compare.
   */
  private volatile boolean refill = true;

  /** Decode loops run at once ({@link GenerationLanes}); one for a sampler in another's graph. */
  private GenerationLanes lanes = GenerationLanes.ONE;

  // Feeds shared by both generators.
  private final Placeholder<TInt32> ids;
  private final Placeholder<TInt32> mask;
  private final Placeholder<TFloat32> temperature;
  private final Placeholder<TFloat32> topP;
  private final Placeholder<TInt32> topK;
  // In-graph cached decoding.
  private final Placeholder<TFloat32> uniforms; // [B, M]
  private final Placeholder<TInt32> maxNew;
  private final Placeholder<TInt32> eos;
  private final Output<?> outTokens; // [B, n]
  private final Output<?> outLogprobs; // [B, n]
  // Uncached reference: one step over the full prefix.
  private final Placeholder<TFloat32> uniform; // [B]
  private final Operand<TInt32> nextToken; // [B]
  private final Operand<TFloat32> nextLogprob; // [B]

  private Sampler(
      ModelConfig config,
      Map<String, FloatTensor> weights,
      ExecConfig exec,
      Optional<Path> tokenizer,
      String source,
      KvCache.Layout layout,
      GenerationLanes chosen) {
    this(
        config,
        tokenizer,
        new GraphSession(),
        null,
        g -> BuildContext.of(g, exec).forInference(),
        null,
        layout,
        // Every weight of a sampler is frozen: stored as --weights says (auto: bfloat16 for a
        // checkpoint stored in bf16, where widening is exact).
        exec.weights().resolve(LazyWeights.allBf16(weights)));
    // A checkpoint opened lazily stays on disk until streamed into the variables.
    Map<String, FloatTensor> w =
        weights instanceof LazyWeights lazy ? new LazyWeights(lazy) : new LinkedHashMap<>(weights);
    if (config.tieWordEmbeddings()) {
      w.remove(LmHead.KEY); // the head is the embedding
    }
    try {
      lanes =
          chosen != null
              ? chosen
              : GenerationLanes.choose(
                  config, exec.weights().resolve(LazyWeights.allBf16(weights)), exec);
      session = owner.open(lanes.sessionConfig(exec), lanes.lanes() > 1);
      params.load(session, w, false, source);
    } catch (RuntimeException | Error e) {
      owner.close(); // the session first: Graph.close() waits for open sessions
      throw e;
    }
  }

  /**
   * Builds the sampling ops into {@code graph} in the context {@code contextFor} gives (a
   * sub-scope, so that its placeholder names do not collide), over the variables of {@code params};
   * an owned sampler creates its own graph and {@code params}.
   */
  private Sampler(
      ModelConfig config,
      Optional<Path> tokenizer,
      GraphSession owner,
      Graph externalGraph,
      Function<Graph, BuildContext> contextFor,
      ParameterStore external,
      KvCache.Layout layout,
      Precision frozen) {
    this.config = config;
    this.tokenizer = tokenizer;
    this.owner = owner;
    this.owned = owner != null;
    this.graph = owned ? owner.graph() : externalGraph;
    try {
      BuildContext cx = contextFor.apply(graph);
      Ops tf = cx.tf();
      params = external != null ? external : new ParameterStore(tf).storeAs(key -> frozen);
      ids = tf.withName("input_ids").placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
      mask =
          tf.withName("attention_mask")
              .placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
      temperature =
          tf.withName("temperature").placeholder(TFloat32.class, Placeholder.shape(Shape.scalar()));
      topP = tf.withName("top_p").placeholder(TFloat32.class, Placeholder.shape(Shape.scalar()));
      topK = tf.withName("top_k").placeholder(TInt32.class, Placeholder.shape(Shape.scalar()));
      uniforms =
          tf.withName("uniforms").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1)));
      maxNew =
          tf.withName("max_new_tokens")
              .placeholder(TInt32.class, Placeholder.shape(Shape.scalar()));
      eos =
          tf.withName("eos_token_id").placeholder(TInt32.class, Placeholder.shape(Shape.scalar()));
      Output<?>[] loop = buildCachedLoop(cx, params, layout);
      outTokens = loop[0];
      outLogprobs = loop[1];
      uniform = tf.withName("uniform").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)));
      Operand<TFloat32> logits = uncachedLogits(cx, params);
      nextToken = Sampling.choose(tf, logits, uniform, temperature, topP, topK);
      nextLogprob = Sampling.logProb(tf, logits, nextToken);
    } catch (RuntimeException | Error e) {
      if (owned) {
        owner.close();
      }
      throw e;
    }
  }

  /**
   * A sampler built into an existing graph over existing variables (e.g. a PPO policy's, so that
   * rollouts read the current weights without copying them): {@code scoped} should be a sub-scope
   * of the graph's build context. Call {@link #attach} with the graph's session before generating;
   * the sampler does not own, and will not close, the graph or the session.
   */
  public static Sampler inGraph(
      Graph graph, BuildContext scoped, ModelConfig config, ParameterStore policyParams) {
    return new Sampler(
        config,
        Optional.empty(),
        null,
        graph,
        g -> scoped,
        policyParams,
        KvCache.Layout.PREALLOCATED,
        Precision.FLOAT32);
  }

  /** Signature key of an exported policy. */
  public static final String GENERATE_SIGNATURE = "generate";

  /**
   * Exports the policy as a SavedModel whose signature {@code generate} runs the whole in-graph
   * decode loop: inputs {@code input_ids}, {@code attention_mask} (int32 {@code [B, P]},
   * left-padded), {@code uniforms} (float {@code [N, M]}: one row per request, one uniform number
   * per step, M >= max new tokens; zeros with {@code top_k} 1 give greedy decoding; N = B answers
   * each row once, N > B, with every row holding the same prompt, answers N requests, rows taking
   * the next one as theirs end), {@code max_new_tokens}, {@code eos_token_id} (-1: never stop),
   * {@code top_k} (int32 scalars), {@code temperature}, {@code top_p} (float scalars); outputs
   * {@code tokens} {@code [N, n]} and {@code token_logprobs} {@code [N, n]} (log-probabilities
   * under the unmodified model). Written to a temporary directory and renamed.
   */
  public void exportSavedModel(Path dir) throws IOException {
    Path target = dir.toAbsolutePath().normalize();
    if (Files.exists(target)) {
      throw new IllegalArgumentException("cannot export to " + target + ": it already exists");
    }
    Path tmp =
        dev.rewardensemble.io.TempPaths.newDirectory(target); // default permissions, not 0700
    try {
      org.tensorflow.Signature sig =
          org.tensorflow.Signature.builder()
              .key(GENERATE_SIGNATURE)
              .methodName("tensorflow/serving/predict")
              .input("input_ids", ids)
              .input("attention_mask", mask)
              .input("uniforms", uniforms)
              .input("max_new_tokens", maxNew)
              .input("eos_token_id", eos)
              .input("temperature", temperature)
              .input("top_p", topP)
              .input("top_k", topK)
              .output("tokens", (Operand<?>) outTokens)
              .output("token_logprobs", (Operand<?>) outLogprobs)
              .build();
      org.tensorflow.SavedModelBundle.exporter(tmp.toString())
          .withTags("serve")
          .withSession(session)
          .withSignature(sig)
          .export();
      Files.move(tmp, target, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException | RuntimeException e) {
      dev.rewardensemble.io.AtomicDirs.deleteRecursively(tmp);
      throw e;
    }
  }

  /** Binds the session of the graph an {@link #inGraph} sampler lives in. */
  public void attach(Session s) {
    if (owned) {
      throw new IllegalStateException("this sampler owns its session");
    }
    session = s;
  }

  /**
   * Loads a causal LM checkpoint directory of any supported family ({@code LlamaForCausalLM},
   * {@code Qwen2ForCausalLM}, {@code Gemma2ForCausalLM}, {@code GPT2LMHeadModel}, ...) and notes
   * the {@code tokenizer.json} beside it, if any.
   */
  public static Sampler load(Path checkpointDir, ExecConfig exec) throws IOException {
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.open(checkpointDir);
    if (ckpt.kind() != HfCheckpoint.Kind.CAUSAL_LM) {
      throw new IllegalArgumentException(
          checkpointDir
              + ": architecture "
              + ckpt.architecture()
              + " has no language-model head; generation needs "
              + ckpt.config().causalLmArchitecture());
    }
    Path tok = checkpointDir.resolve("tokenizer.json");
    return new Sampler(
        ckpt.config(),
        ckpt.weights(),
        exec,
        Files.isRegularFile(tok) ? Optional.of(tok) : Optional.empty(),
        checkpointDir.toString(),
        KvCache.Layout.PREALLOCATED,
        null);
  }

  /**
   * A sampler over given weights: every trunk key of {@code config} plus {@code lm_head.weight}
   * (unless the config ties it to the embedding).
   */
  public static Sampler of(ModelConfig config, Map<String, FloatTensor> weights, ExecConfig exec) {
    return of(config, weights, exec, KvCache.Layout.PREALLOCATED);
  }

  /**
   * A sampler whose decode loop keeps its key/value cache in {@code layout} ({@link
   * KvCache.Layout#CONCATENATED}: the old growing cache, for the benchmark's comparison).
   */
  static Sampler of(
      ModelConfig config,
      Map<String, FloatTensor> weights,
      ExecConfig exec,
      KvCache.Layout layout) {
    return new Sampler(config, weights, exec, Optional.empty(), "weights", layout, null);
  }

  /** A sampler over given weights that runs {@code lanes} (not the automatic choice). */
  static Sampler of(
      ModelConfig config,
      Map<String, FloatTensor> weights,
      ExecConfig exec,
      GenerationLanes lanes) {
    return new Sampler(
        config, weights, exec, Optional.empty(), "weights", KvCache.Layout.PREALLOCATED, lanes);
  }

  /**
   * Turns refilled batches ({@link #units}) on (the default) or off, for benchmarks that compare
   * them: off, every batch runs until its longest response ends, as before session 25. The
   * responses are the same either way.
   */
  public Sampler refill(boolean on) {
    refill = on;
    return this;
  }

  /** The decode loops this sampler runs at once and their threads. */
  public GenerationLanes lanes() {
    return lanes;
  }

  public ModelConfig config() {
    return config;
  }

  /** The graph the sampler's ops live in, for tests that inspect them. */
  Graph graph() {
    return graph;
  }

  /** The {@code tokenizer.json} found beside the checkpoint, if any. */
  public Optional<Path> tokenizer() {
    return tokenizer;
  }

  /** {@link #generate(List, SamplingConfig, int)} with {@link #DEFAULT_BATCH_SIZE}. */
  public List<Generation> generate(List<int[]> prompts, SamplingConfig cfg) {
    return generate(prompts, cfg, DEFAULT_BATCH_SIZE);
  }

  /**
   * Generates one response per prompt, in order, {@code batchSize} prompts per {@code Session.run}
   * (left-padded), with the cached in-graph loop.
   */
  public List<Generation> generate(List<int[]> prompts, SamplingConfig cfg, int batchSize) {
    return run(prompts, cfg, batchSize, true);
  }

  /**
   * The reference generator: the same choice of tokens, but every token recomputes the whole prefix
   * (no cache) in its own {@code Session.run}. Slow; for checks and benchmarks.
   */
  public List<Generation> generateUncached(List<int[]> prompts, SamplingConfig cfg, int batchSize) {
    return run(prompts, cfg, batchSize, false);
  }

  private List<Generation> run(
      List<int[]> prompts, SamplingConfig cfg, int batchSize, boolean cached) {
    // An owned sampler's close() waits for in-flight generations; after it, generating is an error.
    return owned
        ? owner.run(s -> decode(prompts, cfg, batchSize, cached))
        : decode(prompts, cfg, batchSize, cached);
  }

  private List<Generation> decode(
      List<int[]> prompts, SamplingConfig cfg, int batchSize, boolean cached) {
    if (batchSize < 1) {
      throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
    }
    for (int i = 0; i < prompts.size(); i++) {
      check(i, prompts.get(i), cfg);
    }
    int n = prompts.size();
    int running = Math.min(lanes.lanes(), n);
    // With lanes, fewer prompts than lanes x batchSize are split evenly between the lanes.
    int rows = running <= 1 ? batchSize : Math.min(batchSize, (n + running - 1) / running);
    List<Unit> units = units(prompts, rows, running, cached && refill);
    Generation[] out = new Generation[n];
    IntConsumer one =
        i -> {
          Unit unit = units.get(i);
          List<int[]> requests = prompts.subList(unit.from(), unit.to());
          List<int[]> batch =
              unit.rows() < requests.size()
                  ? Collections.nCopies(unit.rows(), requests.get(0))
                  : requests;
          float[][] u = uniforms(cfg, unit.from(), requests.size());
          Decoded d = cached ? runCached(batch, cfg, u) : runUncached(batch, cfg, u);
          for (int r = 0; r < requests.size(); r++) {
            out[unit.from() + r] = trim(requests.get(r), d.tokens()[r], d.logprobs()[r], cfg);
          }
        };
    // one lane runs in the caller's thread alone, batch after batch
    inLanes(Math.max(1, Math.min(running, units.size())), units.size(), one);
    return new ArrayList<>(Arrays.asList(out));
  }

  /**
   * Requests {@code [from, to)} answered by one {@code Session.run} of {@code rows} rows: a plain
   * batch (one response per row, rows = to - from) or, when every request has the same prompt and
   * there are more of them than rows, a refilled batch (a row whose response ended takes the next
   * request).
   */
  record Unit(int from, int to, int rows) {}

  /**
   * Cuts the requests into {@link Unit}s. A run of more than {@code rows} consecutive requests with
   * the same prompt (Best-of-n's n samples of a prompt) is refilled: split into as few units as
   * keep the {@code running} lanes busy (each at least {@code rows} requests), each unit's rows
   * taking the run's requests as they free up, so that a batch no longer waits for its longest
   * response before the next begins. Other requests go in plain batches of {@code rows}, in order.
   */
  static List<Unit> units(List<int[]> prompts, int rows, int running, boolean refill) {
    int n = prompts.size();
    int share = Math.max(rows, (n + Math.max(1, running) - 1) / Math.max(1, running));
    List<Unit> units = new ArrayList<>();
    int plainFrom = 0; // first request not yet in a unit
    int i = 0;
    while (i < n) {
      int j = i + 1;
      while (j < n && Arrays.equals(prompts.get(j), prompts.get(i))) { // the same array first
        j++;
      }
      if (refill && j - i > rows) {
        plain(units, plainFrom, i, rows);
        int parts = (j - i + share - 1) / share;
        for (int p = 0; p < parts; p++) {
          int from = i + (int) ((long) (j - i) * p / parts);
          int to = i + (int) ((long) (j - i) * (p + 1) / parts);
          units.add(new Unit(from, to, Math.min(rows, to - from)));
        }
        plainFrom = j;
      }
      i = j;
    }
    plain(units, plainFrom, n, rows);
    return units;
  }

  private static void plain(List<Unit> units, int from, int to, int rows) {
    for (int f = from; f < to; f += rows) {
      int t = Math.min(to, f + rows);
      units.add(new Unit(f, t, t - f));
    }
  }

  /**
   * Runs {@code task} for batches {@code 0..batches-1}, {@code lanes} at a time, each lane taking
   * the next batch when it finishes one; the first failure is rethrown once every lane stopped.
   */
  static void inLanes(int lanes, int batches, IntConsumer task) {
    AtomicInteger next = new AtomicInteger();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Runnable lane =
        () -> {
          for (int i = next.getAndIncrement();
              i < batches && failure.get() == null;
              i = next.getAndIncrement()) {
            try {
              task.accept(i);
            } catch (RuntimeException | Error e) {
              failure.compareAndSet(null, e);
            }
          }
        };
    List<Thread> threads = new ArrayList<>(lanes - 1);
    for (int l = 1; l < lanes; l++) {
      Thread t = new Thread(lane, "rme-generation-lane-" + l);
      t.setDaemon(true);
      threads.add(t);
      t.start();
    }
    lane.run(); // the caller is lane 0
    boolean interrupted = false;
    for (Thread t : threads) {
      while (true) {
        try {
          t.join();
          break;
        } catch (InterruptedException e) {
          interrupted = true; // the lanes hold native tensors: wait for them before returning
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    Throwable f = failure.get();
    if (f instanceof RuntimeException re) {
      throw re;
    }
    if (f instanceof Error er) {
      throw er;
    }
  }

  private void check(int index, int[] prompt, SamplingConfig cfg) {
    if (prompt.length == 0) {
      throw new IllegalArgumentException("prompt " + index + " is empty");
    }
    for (int j = 0; j < prompt.length; j++) {
      if (prompt[j] < 0 || prompt[j] >= config.vocabSize()) {
        throw new IllegalArgumentException(
            "prompt "
                + index
                + ": token "
                + j
                + " = "
                + prompt[j]
                + " is outside the vocabulary [0, "
                + config.vocabSize()
                + ")");
      }
    }
    if ((long) prompt.length + cfg.maxNewTokens() > config.maxPositions()) {
      throw new IllegalArgumentException(
          "prompt "
              + index
              + ": "
              + prompt.length
              + " prompt tokens + "
              + cfg.maxNewTokens()
              + " new tokens exceed the model's "
              + config.maxPositions()
              + " positions");
    }
  }

  /**
   * One uniform number per row and step; row {@code b} of the batch is prompt {@code first + b} of
   * the request and draws from its own stream, so batching does not change the draws. Greedy
   * decoding uses zeros (the first candidate).
   */
  private static float[][] uniforms(SamplingConfig cfg, int first, int rows) {
    float[][] u = new float[rows][cfg.maxNewTokens()];
    if (cfg.greedy()) {
      return u;
    }
    for (int b = 0; b < rows; b++) {
      SplittableRandom rng = new SplittableRandom(cfg.seed() * 0x9E3779B97F4A7C15L + first + b);
      for (int t = 0; t < u[b].length; t++) {
        u[b][t] = Math.min((float) rng.nextDouble(), Math.nextDown(1f));
      }
    }
    return u;
  }

  private int effectiveTopK(SamplingConfig cfg) {
    if (cfg.greedy()) {
      return 1;
    }
    return cfg.topK() == 0 ? config.vocabSize() : Math.min(cfg.topK(), config.vocabSize());
  }

  private int eosId(SamplingConfig cfg) {
    return cfg.stopAtEos() ? config.eosTokenId() : -1;
  }

  /** Cuts a row's tokens after its first EOS (when stopping at EOS). */
  private Generation trim(int[] prompt, int[] toks, float[] lps, SamplingConfig cfg) {
    int eosId = eosId(cfg);
    int n = toks.length;
    boolean finished = false;
    if (eosId >= 0) {
      for (int t = 0; t < toks.length; t++) {
        if (toks[t] == eosId) {
          n = t + 1;
          finished = true;
          break;
        }
      }
    }
    return new Generation(prompt.clone(), Arrays.copyOf(toks, n), Arrays.copyOf(lps, n), finished);
  }

  /**
   * Raw output of a batch: {@code [B][n]} tokens (padding after EOS) and their log-probabilities.
   */
  private record Decoded(int[][] tokens, float[][] logprobs) {}

  private Decoded runCached(List<int[]> batch, SamplingConfig cfg, float[][] u) {
    TokenBatch tb = Padding.leftPad(batch, config.padTokenId());
    List<Tensor> feeds = new ArrayList<>();
    try {
      Session.Runner r = session.runner();
      r.feed(ids, keep(feeds, ints(tb.ids(), tb.batch(), tb.time())));
      r.feed(mask, keep(feeds, ints(tb.mask(), tb.batch(), tb.time())));
      r.feed(uniforms, keep(feeds, floats(u)));
      r.feed(maxNew, keep(feeds, TInt32.scalarOf(cfg.maxNewTokens())));
      r.feed(eos, keep(feeds, TInt32.scalarOf(eosId(cfg))));
      feedSampling(r, feeds, cfg);
      try (Result res = RunProfile.run(r.fetch(outTokens).fetch(outLogprobs))) {
        TInt32 t = (TInt32) res.get(0);
        TFloat32 l = (TFloat32) res.get(1);
        int requests = (int) t.shape().get(0); // u.length: the rows, or more when refilled
        int n = (int) t.shape().get(1);
        int[] flatT = new int[requests * n];
        float[] flatL = new float[requests * n];
        t.asRawTensor().data().asInts().read(flatT);
        l.asRawTensor().data().asFloats().read(flatL);
        int[][] toks = new int[requests][];
        float[][] lps = new float[requests][];
        for (int b = 0; b < requests; b++) {
          toks[b] = Arrays.copyOfRange(flatT, b * n, (b + 1) * n);
          lps[b] = Arrays.copyOfRange(flatL, b * n, (b + 1) * n);
        }
        return new Decoded(toks, lps);
      }
    } finally {
      feeds.forEach(Tensor::close);
    }
  }

  private Decoded runUncached(List<int[]> batch, SamplingConfig cfg, float[][] u) {
    TokenBatch tb = Padding.leftPad(batch, config.padTokenId());
    int rows = tb.batch();
    int m = cfg.maxNewTokens();
    int eosId = eosId(cfg);
    int time = tb.time();
    int stride = time + m; // row b of the growing sequences starts at b * stride
    int[] seq = new int[rows * stride];
    int[] msk = new int[rows * stride];
    for (int b = 0; b < rows; b++) {
      System.arraycopy(tb.ids(), b * time, seq, b * stride, time);
      System.arraycopy(tb.mask(), b * time, msk, b * stride, time);
    }
    int[][] outT = new int[rows][m];
    float[][] outL = new float[rows][m];
    boolean[] done = new boolean[rows];
    int steps = 0;
    for (int t = 0; t < m; t++) {
      // Row-major [rows, time] view of the first `time` columns.
      int[] idsNow = new int[rows * time];
      int[] maskNow = new int[rows * time];
      for (int b = 0; b < rows; b++) {
        System.arraycopy(seq, b * stride, idsNow, b * time, time);
        System.arraycopy(msk, b * stride, maskNow, b * time, time);
      }
      float[] uNow = new float[rows];
      for (int b = 0; b < rows; b++) {
        uNow[b] = u[b][t];
      }
      List<Tensor> feeds = new ArrayList<>();
      try {
        Session.Runner r = session.runner();
        r.feed(ids, keep(feeds, ints(idsNow, rows, time)));
        r.feed(mask, keep(feeds, ints(maskNow, rows, time)));
        r.feed(
            uniform,
            keep(feeds, TFloat32.tensorOf(Shape.of(rows), DataBuffers.of(uNow, true, false))));
        feedSampling(r, feeds, cfg);
        try (Result res = RunProfile.run(r.fetch(nextToken).fetch(nextLogprob))) {
          int[] tok = new int[rows];
          float[] lp = new float[rows];
          ((TInt32) res.get(0)).asRawTensor().data().asInts().read(tok);
          ((TFloat32) res.get(1)).asRawTensor().data().asFloats().read(lp);
          for (int b = 0; b < rows; b++) {
            int at = b * stride + time;
            if (done[b]) {
              outT[b][t] = config.padTokenId();
              seq[at] = config.padTokenId();
              msk[at] = 0;
            } else {
              outT[b][t] = tok[b];
              outL[b][t] = lp[b];
              seq[at] = tok[b];
              msk[at] = 1;
              done[b] = tok[b] == eosId;
            }
          }
        }
      } finally {
        feeds.forEach(Tensor::close);
      }
      time++;
      steps++;
      boolean all = true;
      for (boolean d : done) {
        all &= d;
      }
      if (all) {
        break;
      }
    }
    int[][] toks = new int[rows][];
    float[][] lps = new float[rows][];
    for (int b = 0; b < rows; b++) {
      toks[b] = Arrays.copyOf(outT[b], steps);
      lps[b] = Arrays.copyOf(outL[b], steps);
    }
    return new Decoded(toks, lps);
  }

  private void feedSampling(Session.Runner r, List<Tensor> feeds, SamplingConfig cfg) {
    r.feed(
        temperature, keep(feeds, TFloat32.scalarOf(cfg.greedy() ? 1f : (float) cfg.temperature())));
    r.feed(topP, keep(feeds, TFloat32.scalarOf(cfg.greedy() ? 1f : (float) cfg.topP())));
    r.feed(topK, keep(feeds, TInt32.scalarOf(effectiveTopK(cfg))));
  }

  // ---- graph construction ----

  /** Logits {@code [B, V]} after the last position of {@code ids}, recomputing the whole prefix. */
  private Operand<TFloat32> uncachedLogits(BuildContext cx, ParameterStore params) {
    Ops tf = cx.tf();
    Attention.Geometry g = Attention.geometry(tf, mask);
    Operand<TFloat32> rows =
        Transformers.trunk(cx, config, params, ids, g, Projector.NONE); // [B*T, H]
    Operand<TFloat32> last = lastRow(tf, rows, g, config.hiddenSize()); // [B, H]
    return LmHead.logits(cx, config, params, last); // [B, V]
  }

  /** Rows {@code [B*S, H]} -> the last row of each sequence {@code [B, H]}. */
  private static Operand<TFloat32> lastRow(
      Ops tf, Operand<TFloat32> rows, Attention.Geometry g, int hidden) {
    Operand<TFloat32> seq =
        tf.reshape(rows, tf.stack(List.of(g.batch(), g.time(), tf.constant(hidden)))); // [B, S, H]
    return tf.stridedSlice(seq, Indices.all(), Indices.at(-1), Indices.all()); // [B, H]
  }

  // Loop variables of the decode loop, in order; the cache follows.
  private static final int MAX_NEW = 0;
  private static final int LAST = 1; // [B] token chosen at the previous step
  private static final int DONE = 2; // [B] 1 once the row's response ended (EOS or M tokens)
  private static final int REQUEST = 3; // [B] the request (row of the uniforms) the row answers
  private static final int COUNT = 4; // [B] tokens of that response chosen so far
  private static final int NEXT = 5; // the first request no row has taken
  private static final int WIDTH = 6; // the most tokens of any response so far
  private static final int TOKENS = 7; // [N, M] chosen tokens per request
  private static final int LOGPROBS = 8; // [N, M]
  private static final int CACHE = 9; // KvCache.state(): next slots, key mask, keys and values

  // What the body reads but never changes (LoopInvariants), in order; the weights follow.
  private static final int UNIFORMS = 0; // [N, M]
  private static final int TEMPERATURE = 1;
  private static final int TOP_P = 2;
  private static final int TOP_K = 3;
  private static final int EOS = 4;
  private static final int PROMPT_LOGITS = 5; // [B, V] the prefill's: a restarted row's first token
  private static final int PROMPT_WIDTH = 6; // P, where a restarted row writes again
  private static final int WEIGHTS = 7;

  /**
   * Prefill plus the in-graph decode loop; returns the loop's tokens and log-probabilities. Both
   * run the family's one forward ({@link Transformers#forward}) over a {@link KvCache} of the
   * prompt length plus {@code max_new_tokens} slots: the prefill writes the prompt's keys and
   * values, each step its token's. The prefill's weight products take {@code cx}'s precision, the
   * steps' {@link #stepPrecision}; the loop's body and condition are graphs of their own, built
   * with TensorFlow's placement (as they always were).
   *
   * <p>Requests and refill: the uniforms' rows are the requests, N >= B; row b starts on request b.
   * When a row's response ends (EOS or {@code max_new_tokens}) and requests remain, the row takes
   * the next one: its cache forgets the response ({@link KvCache#restart}) and keeps the prompt,
   * and the new response's first token is chosen from the prefill's logits with the request's own
   * uniform numbers. The caller feeds more requests than rows only when every row holds the same
   * prompt (Best-of-n's n samples of a prompt), so that a restarted row answers its own prompt; N =
   * B is a plain batch, one response per row. A response's tokens equal those of the same request
   * in a batch of its own: its row computes the same things, the forgotten slots weighted by an
   * exact zero.
   */
  private Output<?>[] buildCachedLoop(
      BuildContext cx, ParameterStore params, KvCache.Layout layout) {
    Ops tf = cx.tf();
    Map<String, long[]> shapes = LmHead.weightShapes(config);
    List<String> keys = new ArrayList<>(shapes.keySet());
    int pad = config.padTokenId();

    // Prefill: the whole prompt into an empty cache.
    Weights fromVariables = Weights.of(params, shapes);
    Operand<TInt32> promptLength =
        tf.reshape(tf.stridedSlice(tf.shape(ids), Indices.at(1)), tf.constant(new int[0]));
    KvCache cache0 =
        layout == KvCache.Layout.PREALLOCATED
            ? KvCache.preallocated(tf, tf.math.add(promptLength, maxNew))
            : KvCache.concatenated(tf);
    Attention.Geometry g0 = cache0.extend(tf, mask);
    Operand<TFloat32> rows0 =
        Transformers.forward(cx, config, fromVariables, ids, g0, Projector.NONE, null, cache0);
    Operand<TFloat32> last0 = lastRow(tf, rows0, g0, config.hiddenSize());
    Operand<TFloat32> logits0 = fewRowLogits(cx, fromVariables.after(last0), last0);
    Operand<TInt32> rowRange = tf.range(tf.constant(0), g0.batch(), tf.constant(1)); // [B]
    Operand<TFloat32> u0 =
        tf.gather(tf.gather(uniforms, rowRange, tf.constant(0)), tf.constant(0), tf.constant(1));
    Operand<TInt32> tok0 = Sampling.choose(tf, logits0, u0, temperature, topP, topK); // [B]
    Operand<TFloat32> lp0 = Sampling.logProb(tf, logits0, tok0); // [B]
    Operand<TInt32> done0 =
        tf.dtypes.cast(
            tf.math.logicalOr(
                tf.math.equal(tok0, eos),
                tf.broadcastTo(tf.math.lessEqual(maxNew, tf.constant(1)), tf.shape(tok0))),
            TInt32.class); // [B]
    Operand<TInt32> requests = dim(tf, tf.shape(uniforms), 0); // N
    Operand<TInt32> outShape = tf.stack(List.of(requests, maxNew)); // [2]: N, M

    List<Operand<?>> state0 = cache0.state();
    int cacheSize = state0.size();
    Output<?>[] init = new Output<?>[CACHE + cacheSize];
    init[MAX_NEW] = maxNew.asOutput();
    init[LAST] = tok0.asOutput();
    init[DONE] = done0.asOutput();
    init[REQUEST] = rowRange.asOutput();
    init[COUNT] = tf.onesLike(tok0).asOutput();
    init[NEXT] = g0.batch().asOutput();
    init[WIDTH] = tf.constant(1).asOutput();
    init[TOKENS] = column(tf, tf.fill(outShape, tf.constant(pad)), tf.constant(0), tok0).asOutput();
    init[LOGPROBS] = column(tf, tf.fill(outShape, tf.constant(0f)), tf.constant(0), lp0).asOutput();
    for (int i = 0; i < cacheSize; i++) {
      init[CACHE + i] = state0.get(i).asOutput();
    }
    // The weights enter the loop's frame once, in their storage dtype (LoopInvariants: not as loop
    // variables, which cost four ops per weight and step); under float32 steps bfloat16 weights
    // are widened inside the body, block by block, as scoring does, so bfloat16 storage holds no
    // float32 copy of the model across the loop; bfloat16 steps multiply them as stored.
    List<Operand<?>> invariants =
        new ArrayList<>(
            List.of(
                uniforms, temperature, topP, topK, eos, logits0, promptLength)); // by the indices
    boolean storedBf16 = false;
    for (String key : keys) {
      Operand<?> stored = params.stored(key, shapes.get(key));
      storedBf16 |= stored.type() == TBfloat16.class && shapes.get(key).length == 2;
      invariants.add(tf.identity(stored));
    }
    Precision stepPrecision = stepPrecision(cx.precision(), storedBf16);
    boolean refills = layout == KvCache.Layout.PREALLOCATED;

    Output<?>[] out =
        graph.whileLoop(
            init,
            (cg, in, cond) -> {
              Ops c = Ops.create(cg);
              Operand<TInt32> done = as(in[DONE]);
              Operand<TInt32> open =
                  c.math.sub(c.size(done), c.sum(done, c.constant(0))); // rows still going
              Operand<TInt32> waiting = // requests no row has taken (none without refill)
                  refills
                      ? c.math.sub(dim(c, c.shape(as(in[TOKENS])), 0), as(in[NEXT]))
                      : c.constant(0);
              cond[0] =
                  c.math
                      .logicalOr(
                          c.math.greater(open, c.constant(0)),
                          c.math.greater(waiting, c.constant(0)))
                      .asOutput();
            },
            (bg, in, next) -> {
              Ops b = Ops.create(bg);
              Operand<TInt32> done = as(in[DONE]); // [B]
              Operand<TInt32> live = b.math.sub(b.constant(1), done); // [B]
              Operand<TInt32> request = as(in[REQUEST]);
              Operand<TInt32> count = as(in[COUNT]);
              Operand<TInt32> taken = as(in[NEXT]);
              List<Operand<?>> fixed = LoopInvariants.standIns(b, invariants);
              Operand<TFloat32> u = as(fixed.get(UNIFORMS).asOutput()); // [N, M]
              // Rows whose response ended take the next requests, in row order, while any remain.
              Operand<TInt32> restart;
              Operand<TInt32> nextTaken;
              Operand<TInt32> fresh; // [B] the request a restarted row takes
              if (refills) {
                Operand<TInt32> rank = b.math.cumsum(done, b.constant(0), Cumsum.exclusive(true));
                Operand<TInt32> waiting = b.math.sub(dim(b, b.shape(u), 0), taken);
                restart = b.dtypes.cast(b.math.less(rank, waiting), TInt32.class);
                restart = b.math.mul(restart, done);
                fresh = b.math.add(taken, rank);
                nextTaken = b.math.add(taken, b.sum(restart, b.constant(0)));
              } else {
                restart = b.math.mul(done, b.constant(0));
                fresh = request;
                nextTaken = taken;
              }
              Operand<TInt32> choosing = b.math.add(live, restart); // [B] 0 or 1
              // Finished rows feed padding, masked out of every later attention.
              Operand<TInt32> fed =
                  b.math.add(
                      b.math.mul(as(in[LAST]), live), b.math.mul(done, b.constant(pad))); // [B]
              Operand<TInt32> newIds = b.expandDims(fed, b.constant(1)); // [B, 1]
              KvCache cache = cache0.withState(Arrays.asList(in).subList(CACHE, CACHE + cacheSize));
              Attention.Geometry g = cache.extendByOne(b, b.expandDims(live, b.constant(1)));
              Map<String, Operand<?>> weights = new LinkedHashMap<>();
              for (int i = 0; i < keys.size(); i++) {
                weights.put(keys.get(i), fixed.get(WEIGHTS + i));
              }
              BuildContext bcx = new BuildContext(b, stepPrecision, false).forDecoding();
              Weights w = Weights.widening(b, weights);
              Operand<TFloat32> rows =
                  Transformers.forward(bcx, config, w, newIds, g, Projector.NONE, null, cache);
              Operand<TFloat32> last = lastRow(b, rows, g, config.hiddenSize());
              if (refills) {
                cache.restart(b, restart, as(fixed.get(PROMPT_WIDTH).asOutput()));
              }
              // The request and column each choosing row writes: a restarted row its new
              // request's first; the others (finished rows included, which write nothing) their
              // own next, clamped into the buffer.
              Operand<TInt32> keep = b.math.sub(b.constant(1), restart);
              Operand<TInt32> req =
                  b.math.add(b.math.mul(request, keep), b.math.mul(fresh, restart)); // [B]
              Operand<TInt32> col =
                  b.math.minimum(
                      b.math.mul(count, keep), b.math.sub(as(in[MAX_NEW]), b.constant(1))); // [B]
              Operand<TInt32> at =
                  b.stack(List.of(req, col), org.tensorflow.op.core.Stack.axis(1L));
              Operand<TFloat32> uRow = b.gatherNd(u, at); // [B]
              Operand<?>[] chosen =
                  nextTokens(b, bcx, w, last, live, restart, uRow, fixed); // [B] each
              Operand<TInt32> tok = as(chosen[0].asOutput());
              Operand<TFloat32> lp = as(chosen[1].asOutput());
              Operand<TInt32> counted =
                  b.math.add(b.math.mul(b.math.add(count, live), keep), restart); // [B]
              Operand<TInt32> ended =
                  b.dtypes.cast(
                      b.math.logicalOr(
                          b.math.equal(tok, as(fixed.get(EOS).asOutput())),
                          b.math.greaterEqual(counted, as(in[MAX_NEW]))),
                      TInt32.class);
              Operand<TInt32> idle = b.math.sub(done, restart); // finished, nothing to take
              // Only the choosing rows write their token into the requests' buffers.
              Operand<TInt64> writers = b.where(b.math.notEqual(choosing, b.constant(0))); // [m, 1]
              Operand<TInt32> where = b.gatherNd(at, writers); // [m, 2]
              next[LAST] = tok.asOutput();
              next[DONE] = b.math.maximum(idle, b.math.mul(ended, choosing)).asOutput();
              next[REQUEST] = req.asOutput();
              next[COUNT] = counted.asOutput();
              next[NEXT] = nextTaken.asOutput();
              next[WIDTH] = b.math.maximum(as(in[WIDTH]), b.max(counted, b.constant(0))).asOutput();
              next[TOKENS] =
                  b.tensorScatterNdUpdate(as(in[TOKENS]), where, b.gatherNd(tok, writers))
                      .asOutput();
              next[LOGPROBS] =
                  b.tensorScatterNdUpdate(as(in[LOGPROBS]), where, b.gatherNd(lp, writers))
                      .asOutput();
              List<Operand<?>> state = cache.state();
              for (int i = 0; i < cacheSize; i++) {
                next[CACHE + i] = state.get(i).asOutput();
              }
              next[MAX_NEW] = in[MAX_NEW];
            },
            "decode");
    LoopInvariants.bind(graph, tf, out, invariants);
    // The columns written: as many as the longest response.
    Operand<TInt32> width = tf.stack(List.of(tf.constant(-1), as(out[WIDTH]))); // [2]
    Operand<TInt32> origin = tf.constant(new int[] {0, 0});
    return new Output<?>[] {
      tf.slice(as(out[TOKENS]), origin, width).asOutput(),
      tf.slice(as(out[LOGPROBS]), origin, width).asOutput()
    };
  }

  /**
   * A decode step's tokens and their log-probabilities, {@code [B]} each, 0 in rows that choose
   * nothing: a live row chooses from its step's logits, a restarted row from its prompt's (the
   * prefill's, {@link #PROMPT_LOGITS}). With a vocabulary larger than {@link Sampling#CANDIDATES}
   * only the choosing rows are gathered into the head's product and the token choice, whose cost
   * per row is the vocabulary's: in Best-of-n and PPO rollouts rows finish at different steps and
   * the loop runs to the longest. Each row's choice is its own (same logits, same uniform number),
   * so which rows share a step changes nothing but float rounding; smaller vocabularies (the demo's
   * 100) multiply every row, as before.
   */
  private Operand<?>[] nextTokens(
      Ops b,
      BuildContext bcx,
      Weights w,
      Operand<TFloat32> last,
      Operand<TInt32> live,
      Operand<TInt32> restart,
      Operand<TFloat32> u,
      List<Operand<?>> fixed) {
    Operand<TFloat32> temperature = as(fixed.get(TEMPERATURE).asOutput());
    Operand<TFloat32> topP = as(fixed.get(TOP_P).asOutput());
    Operand<TInt32> topK = as(fixed.get(TOP_K).asOutput());
    Operand<TFloat32> promptLogits = as(fixed.get(PROMPT_LOGITS).asOutput()); // [B, V]
    Operand<TInt32> choosing = b.math.add(live, restart);
    if (config.vocabSize() <= Sampling.CANDIDATES) {
      // The head widened (when it is) only once this step's rows exist: an ungated cast reads
      // only a loop invariant, so it would run as each later iteration starts, and the while
      // loop's parallel iterations would hold a float32 head per iteration.
      Operand<TFloat32> stepLogits = fewRowLogits(bcx, w.after(last), last); // [B, V]
      Operand<TFloat32> logits =
          b.select(
              b.expandDims(b.math.notEqual(restart, b.constant(0)), b.constant(1)),
              promptLogits,
              stepLogits); // [B, V]
      Operand<TInt32> tok = Sampling.choose(b, logits, u, temperature, topP, topK); // [B]
      Operand<TFloat32> lp =
          b.math.mul(Sampling.logProb(b, logits, tok), b.dtypes.cast(choosing, TFloat32.class));
      return new Operand<?>[] {b.math.mul(tok, choosing), lp};
    }
    Operand<TInt64> at = b.where(b.math.notEqual(live, b.constant(0))); // [m, 1]
    Operand<TInt64> liveRows = b.reshape(at, b.constant(new int[] {-1})); // [m]
    Operand<TFloat32> lastLive = b.gather(last, liveRows, b.constant(0)); // [m, H]
    Operand<TFloat32> stepLogits = fewRowLogits(bcx, w.after(lastLive), lastLive); // [m, V]
    Operand<TInt64> again = b.where(b.math.notEqual(restart, b.constant(0))); // [r, 1]
    Operand<TFloat32> restarted =
        b.gather(promptLogits, b.reshape(again, b.constant(new int[] {-1})), b.constant(0));
    Operand<TFloat32> logits =
        b.concat(List.of(stepLogits, restarted), b.constant(0)); // [m + r, V]
    Operand<TInt64> rowsAt = b.concat(List.of(at, again), b.constant(0)); // [m + r, 1]
    Operand<TInt32> tok =
        Sampling.choose(b, logits, b.gatherNd(u, rowsAt), temperature, topP, topK); // [m + r]
    Operand<TInt64> batch = b.shape(live, TInt64.class);
    return new Operand<?>[] {
      b.scatterNd(rowsAt, tok, batch), b.scatterNd(rowsAt, Sampling.logProb(b, logits, tok), batch)
    };
  }

  /**
   * The LM logits of a few rows (the prefill's last rows, a step's rows), as both compute them: in
   * float32 weight-first ({@link LmHead#fewRowLogits}: the rows-first product repacks the whole
   * {@code [V, H]} head for oneDNN, memory that TensorFlow's allocator then keeps: 147 MiB at GPT-2
   * 124M), else in the context's precision with the head multiplied as stored.
   */
  private Operand<TFloat32> fewRowLogits(BuildContext cx, Weights w, Operand<TFloat32> rows) {
    return cx.precision() == Precision.FLOAT32
        ? LmHead.fewRowLogits(cx.tf(), config, w, rows)
        : LmHead.logits(cx, config, w, rows);
  }

  /**
   * The precision of a decode step's weight products: the sampler's ({@code --compute}) when its
   * weights are stored in bfloat16 and oneDNN multiplies bfloat16 ({@link
   * OneDnn#bfloat16Products}), so that a step multiplies them as stored; float32 otherwise. A step
   * reads every weight for a few rows, so its time is the weights' bytes: bfloat16 storage widened
   * to float32 every step (as float32 compute needs) writes and reads twice the stored bytes again
   * (the 1.2B Llama on the Intel Xeon: 6.4 tokens/s, against 14.0 with float32 storage and 26.6
   * multiplied as stored); bfloat16 compute over float32 storage would round every weight every
   * step, and without oneDNN's bfloat16 products a bfloat16 product widens both operands anyway.
   */
  static Precision stepPrecision(Precision compute, boolean storedBf16) {
    return storedBf16 && OneDnn.bfloat16Products() ? compute : Precision.FLOAT32;
  }

  /** {@code x [B, M]} with column {@code at} (a scalar) set to {@code values [B]}, in place. */
  private static <T extends TType> Operand<T> column(
      Ops tf, Operand<T> x, Operand<TInt32> at, Operand<T> values) {
    Operand<TInt32> rows = tf.size(values);
    Operand<TInt32> index =
        tf.stack(
            List.of(
                tf.range(tf.constant(0), rows, tf.constant(1)),
                tf.fill(tf.expandDims(rows, tf.constant(0)), at)),
            org.tensorflow.op.core.Stack.axis(1L)); // [B, 2]: (row, at)
    return tf.tensorScatterNdUpdate(x, index, values);
  }

  private static Operand<TInt32> dim(Ops tf, Operand<TInt32> shape, int i) {
    return tf.reshape(tf.stridedSlice(shape, Indices.at(i)), tf.constant(new int[0]));
  }

  @SuppressWarnings("unchecked")
  private static <T extends TType> Operand<T> as(Output<?> o) {
    return (Operand<T>) o;
  }

  private static <T extends Tensor> T keep(List<Tensor> feeds, T t) {
    feeds.add(t);
    return t;
  }

  private static TInt32 ints(int[] data, int rows, int cols) {
    return TInt32.tensorOf(Shape.of(rows, cols), DataBuffers.of(data, true, false));
  }

  private static TFloat32 floats(float[][] a) {
    int cols = a.length == 0 ? 0 : a[0].length;
    float[] flat = new float[a.length * cols];
    for (int i = 0; i < a.length; i++) {
      System.arraycopy(a[i], 0, flat, i * cols, cols);
    }
    return TFloat32.tensorOf(Shape.of(a.length, cols), DataBuffers.of(flat, true, false));
  }

  @Override
  public void close() {
    if (owned) {
      owner.close();
    }
  }
}
