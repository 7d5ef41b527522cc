package dev.rewardensemble.rl;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.ensemble.Aggregation;
import dev.rewardensemble.ensemble.MemberScores;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.model.Attention;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.GraphSession;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.Layers;
import dev.rewardensemble.model.LmHead;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.Recompute;
import dev.rewardensemble.model.Transformers;
import dev.rewardensemble.train.AdamW;
import dev.rewardensemble.train.AdamWConfig;
import dev.rewardensemble.train.GradientAccumulator;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.Tensor;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.ndarray.index.Indices;
import org.tensorflow.op.Op;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gradients;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TBool;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * PPO finetuning of a causal-LM policy against a {@link SequenceScorer} (a reward model or
 * ensemble), in one graph and one session: the policy, a frozen reference copy, a value model
 * (trunk initialised from the reward model's, fresh scalar head), and a sampler built over the
 * policy's own variables, so rollouts always use the current weights without copying them.
 *
 * <p>One iteration ({@link #step}): sample a rollout batch of prompts, generate with the in-graph
 * KV-cache loop, score (prompt, response) with the scorer, compute log-probabilities of the policy
 * and reference and the values with one teacher-forced pass, per-token rewards = - KL coef * KL
 * estimate + the score at the last response token, GAE and whitened advantages on the host, then
 * {@code epochsPerRollout} passes of clipped policy + clipped value loss over minibatches of {@code
 * stepBatch} with AdamW.
 *
 * <p>With {@link ExecConfig#recompute()} the policy's and the value model's blocks are recomputed
 * in the backward pass ({@link Recompute}): the same gradients, keeping only each block's input.
 */
public final class PpoTrainer implements AutoCloseable {
  /** Checkpoint key prefixes of the three models in the graph. */
  public static final String POLICY = "policy.";

  public static final String REFERENCE = "ref.";
  public static final String VALUE = "value.";
  static final String VALUE_HEAD = "v_head.weight";
  static final String VALUE_BIAS = "v_head.bias";

  private final PpoConfig cfg;
  private final ModelConfig policyConfig;
  private final GraphSession owner = new GraphSession();
  private final Session session;
  private final ParameterStore params;
  private final Sampler sampler;
  private final SequenceScorer scorer;
  private final KlPenalty.KlController kl;
  private final List<String> trainable = new ArrayList<>();
  // Teacher-forced pass.
  private final Placeholder<TInt32> ids;
  private final Placeholder<TInt32> mask;
  private final Placeholder<TFloat32> actionMask;
  private final Operand<TFloat32> logp;
  private final Operand<TFloat32> refLogp;
  private final Operand<TFloat32> values;
  private final Operand<TFloat32> entropy;
  private final Operand<TFloat32> entropyMean;
  // Losses.
  private final Placeholder<TFloat32> oldLogp;
  private final Placeholder<TFloat32> advantages;
  private final Placeholder<TFloat32> returns;
  private final Placeholder<TFloat32> oldValues;
  private final PpoLosses.PolicyLoss policyLoss;
  private final PpoLosses.ValueLoss valueLoss;
  private final GradientAccumulator acc;
  private final AdamW adamw;
  private final Op update;
  private int optimizerSteps;
  private int iteration;

  /** Metrics of one iteration. */
  public record Stats(
      int iteration,
      double meanScore,
      Map<String, Double> aggregations,
      double kl,
      double klCoef,
      double entropy,
      double policyLoss,
      double valueLoss,
      double clipFraction,
      double approxKl,
      double meanResponseLength,
      double eosFraction,
      Map<String, Double> seconds) {}

  /**
   * @param policy the policy's weights (trunk + {@code lm_head.weight} unless tied), also the
   *     frozen reference
   * @param valueConfig architecture of the value model's trunk (the reward model's)
   * @param valueTrunk its trunk weights; the scalar head is initialised fresh from {@code seed}
   */
  public PpoTrainer(
      ModelConfig policyConfig,
      Map<String, FloatTensor> policy,
      ModelConfig valueConfig,
      Map<String, FloatTensor> valueTrunk,
      SequenceScorer scorer,
      PpoConfig cfg,
      ExecConfig exec) {
    if (valueConfig.vocabSize() != policyConfig.vocabSize()) {
      throw new IllegalArgumentException(
          "the value model's vocabulary ("
              + valueConfig.vocabSize()
              + ") differs from the policy's ("
              + policyConfig.vocabSize()
              + ")");
    }
    this.cfg = cfg;
    this.policyConfig = policyConfig;
    this.scorer = scorer;
    this.kl = cfg.newKlController();
    try {
      Graph graph = owner.graph();
      BuildContext cx = BuildContext.of(graph, exec);
      Ops tf = cx.tf();
      params = new ParameterStore(tf);
      // The frozen reference in the storage exec.weights() asks for (auto: bfloat16 when the
      // policy's checkpoint is bf16 and still on disk); policy and value model train in float32.
      Precision refStorage = exec.weights().resolve(LazyWeights.allBf16(policy));
      params.storeAs(k -> k.startsWith(REFERENCE) ? refStorage : Precision.FLOAT32);
      ParameterStore pol = params.view(POLICY);
      ParameterStore ref = params.view(REFERENCE);
      ParameterStore val = params.view(VALUE);
      sampler =
          Sampler.inGraph(
              graph, cx.with(tf.withSubScope("sampler")).forInference(), policyConfig, pol);

      ids = tf.withName("ppo_ids").placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
      mask = tf.withName("ppo_mask").placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
      actionMask =
          tf.withName("ppo_action_mask")
              .placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1)));
      Attention.Geometry g = Attention.geometry(tf, mask);
      // With recomputation the trained models' forwards (policy, value model) record their blocks
      // and the backward pass rebuilds them; the frozen reference and the sampler build plainly.
      Recompute recompute =
          exec.recompute().any() ? new Recompute(exec.recompute().blocks()) : null;
      BuildContext trained = recompute == null ? cx : cx.withBlocks(recompute);
      Operand<TInt32> next = tf.stridedSlice(ids, Indices.all(), Indices.sliceFrom(1)); // [N, T-1]
      Operand<TFloat32> polLogits = shiftedLogits(trained, policyConfig, pol, g); // [N, T-1, V]
      logp = PpoLosses.tokenLogProbs(tf, polLogits, next, actionMask); // [N, T-1]
      entropy = PpoLosses.entropy(tf, polLogits, actionMask); // [N, T-1]
      entropyMean = PpoLosses.maskedMean(tf, entropy, actionMask); // []
      refLogp =
          PpoLosses.tokenLogProbs(tf, shiftedLogits(cx, policyConfig, ref, g), next, actionMask);
      Operand<TFloat32> vRows =
          Transformers.trunk(trained, valueConfig, val, ids, g, Projector.NONE); // [N*T, Hv]
      Operand<TFloat32> v =
          tf.nn.biasAdd(
              Layers.linear(trained, vRows, val.get(VALUE_HEAD, 1, valueConfig.hiddenSize())),
              val.get(VALUE_BIAS, 1)); // [N*T, 1]
      values =
          tf.stridedSlice(
              tf.reshape(v, tf.stack(List.of(g.batch(), g.time()))),
              Indices.all(),
              Indices.sliceTo(-1)); // [N, T-1]

      oldLogp =
          tf.withName("ppo_old_logp")
              .placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1)));
      advantages =
          tf.withName("ppo_advantages")
              .placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1)));
      returns =
          tf.withName("ppo_returns")
              .placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1)));
      oldValues =
          tf.withName("ppo_old_values")
              .placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1)));
      policyLoss =
          PpoLosses.policyLoss(tf, logp, oldLogp, advantages, actionMask, (float) cfg.clipRange());
      valueLoss =
          PpoLosses.valueLoss(
              tf, values, oldValues, returns, actionMask, (float) cfg.valueClipRange());
      Operand<TFloat32> total =
          PpoLosses.total(tf, policyLoss.loss(), valueLoss.loss(), (float) cfg.valueCoef());

      for (String key : params.names()) {
        if (key.startsWith(POLICY) || key.startsWith(VALUE)) {
          trainable.add(key);
        }
      }
      List<Variable<TFloat32>> vars = new ArrayList<>();
      trainable.forEach(k -> vars.add(params.variable(k)));
      List<Operand<TFloat32>> gl;
      if (recompute != null) {
        gl = recompute.gradients(tf, total, vars);
      } else {
        Gradients grads = tf.gradients(total, vars);
        gl = new ArrayList<>();
        for (int i = 0; i < vars.size(); i++) {
          @SuppressWarnings("unchecked")
          Operand<TFloat32> gi = (Operand<TFloat32>) (Operand<?>) grads.dy(i);
          gl.add(gi);
        }
      }
      acc = GradientAccumulator.build(tf, vars, gl, 1, 1.0f);
      adamw = AdamW.build(tf, vars, acc.clipped(), new AdamWConfig(0.9, 0.999, 1e-8, 0.0));
      update = acc.resetAfter(tf, adamw.update());

      session = owner.open(exec);
      sampler.attach(session);
      // Tensors still on disk stay there until streamed into their variables, one at a time.
      LazyWeights init = new LazyWeights();
      for (String key : policy.keySet()) {
        if (policyConfig.tieWordEmbeddings() && key.equals(LmHead.KEY)) {
          continue;
        }
        init.putFrom(POLICY + key, policy, key);
        init.putFrom(REFERENCE + key, policy, key);
      }
      for (String key : valueTrunk.keySet()) {
        init.putFrom(VALUE + key, valueTrunk, key);
      }
      init.put(
          VALUE + VALUE_HEAD,
          Init.normal(
              new long[] {1, valueConfig.hiddenSize()},
              1.0 / (valueConfig.hiddenSize() + 1),
              new SplittableRandom(cfg.seed())));
      init.put(VALUE + VALUE_BIAS, FloatTensor.zeros(1));
      params.load(session, init, false, "PPO initial weights");
    } catch (RuntimeException | Error e) {
      owner.close(); // the session first: Graph.close() waits for open sessions
      throw e;
    }
  }

  /**
   * {@code [N, T-1, V]} logits at positions 0..T-2 (predicting tokens 1..T-1), divided by the
   * temperature.
   */
  private Operand<TFloat32> shiftedLogits(
      BuildContext cx, ModelConfig c, ParameterStore p, Attention.Geometry g) {
    Ops tf = cx.tf();
    Operand<TFloat32> rows = Transformers.trunk(cx, c, p, ids, g, Projector.NONE); // [N*T, H]
    Operand<TFloat32> logits = LmHead.logits(cx, c, p, rows); // [N*T, V]
    Operand<TFloat32> l3 =
        tf.reshape(
            logits,
            tf.stack(List.of(g.batch(), g.time(), tf.constant(c.vocabSize())))); // [N, T, V]
    Operand<TFloat32> shifted =
        tf.stridedSlice(l3, Indices.all(), Indices.sliceTo(-1), Indices.all()); // [N, T-1, V]
    return tf.math.div(shifted, tf.constant((float) cfg.temperature()));
  }

  public Sampler sampler() {
    return sampler;
  }

  /** The current KL coefficient (changes with an adaptive controller). */
  public double klCoef() {
    return kl.coef();
  }

  /** Completed iterations. */
  public int iteration() {
    return iteration;
  }

  /** One PPO iteration on {@code prompts} (a rollout batch). */
  /** The variables of the trainer's graph (policy, reference and value model), for tests. */
  ParameterStore params() {
    return params;
  }

  /** The trainer's graph, for tests that inspect its ops. */
  Graph graph() {
    return owner.graph();
  }

  public Stats step(List<int[]> prompts) {
    if (guard == null) {
      guard =
          new dev.rewardensemble.train.DivergenceGuard(
              weightStats()[0]); // before this process's first update
    }
    Map<String, Double> seconds = new LinkedHashMap<>();
    long t0 = System.nanoTime();
    SamplingConfig sc =
        new SamplingConfig(
            cfg.maxNewTokens(),
            false,
            cfg.temperature(),
            cfg.topP(),
            0,
            cfg.seed() * 1_000_003L + iteration,
            true);
    List<Generation> gens =
        sampler.generate(prompts, sc, Math.max(1, Math.min(prompts.size(), cfg.stepBatch())));
    long t1 = System.nanoTime();
    seconds.put("rollout", (t1 - t0) / 1e9);

    int n = gens.size();
    int eos = policyConfig.eosTokenId();
    List<int[]> responses = new ArrayList<>(n);
    boolean[] ended = new boolean[n];
    for (int i = 0; i < n; i++) {
      Generation gen = gens.get(i);
      ended[i] = gen.finished();
      int[] r = gen.responseIds();
      responses.add(
          r.length > 0 && eos >= 0 && r[r.length - 1] == eos ? Arrays.copyOf(r, r.length - 1) : r);
    }
    List<MemberScores> scored = scorer.score(prompts, responses);
    double[] scores = new double[n];
    Map<String, Double> aggs = new LinkedHashMap<>();
    for (int i = 0; i < n; i++) {
      MemberScores s = scored.get(i);
      scores[i] = s.reward();
      float[] m = s.standardized() != null ? s.standardized() : s.members();
      aggs.merge("mean", Aggregation.mean(m) / n, Double::sum);
      aggs.merge("lcb(0.5)", (Aggregation.mean(m) - 0.5 * Aggregation.std(m)) / n, Double::sum);
      aggs.merge("min", Aggregation.min(m) / n, Double::sum);
      aggs.merge("uwo(1.0)", (Aggregation.mean(m) - Aggregation.variance(m)) / n, Double::sum);
    }
    if (cfg.missingEosPenalty() != 0) {
      scores = KlPenalty.applyMissingEosPenalty(scores, ended, cfg.missingEosPenalty());
    }
    long t2 = System.nanoTime();
    seconds.put("score", (t2 - t1) / 1e9);

    // Teacher-forced pass over prompt + full response (EOS included as an action).
    Batch b = Batch.of(gens, policyConfig.padTokenId());
    double[][][] fwd = forward(b);
    double[][] lp = fwd[0];
    double[][] lpRef = fwd[1];
    double[][] vals = fwd[2];
    KlPenalty.Rewards rw =
        KlPenalty.rewards(lp, lpRef, b.action, scores, kl.coef(), cfg.klEstimator());
    Gae.Batch gae = Gae.compute(rw.rewards(), vals, b.action, cfg.gamma(), cfg.lambda());
    double[][] adv =
        cfg.whitenAdvantages() ? Gae.whiten(gae.advantages(), b.action, true) : gae.advantages();
    double seqKl = KlPenalty.meanSequenceKl(rw.kl());
    long t3 = System.nanoTime();
    seconds.put("forward", (t3 - t2) / 1e9);

    double pl = 0;
    double vl = 0;
    double cf = 0;
    double ak = 0;
    double ent = 0;
    int updates = 0;
    SplittableRandom rng = new SplittableRandom(cfg.seed() * 31 + iteration);
    for (int epoch = 0; epoch < cfg.epochsPerRollout(); epoch++) {
      int[] order = permutation(n, rng);
      for (int from = 0; from < n; from += cfg.stepBatch()) {
        int[] rows = Arrays.copyOfRange(order, from, Math.min(n, from + cfg.stepBatch()));
        double[] m = train(b, rows, lp, adv, gae.returns(), vals);
        pl += m[0];
        vl += m[1];
        cf += m[2];
        ak += m[3];
        ent += m[4];
        updates++;
      }
    }
    long t4 = System.nanoTime();
    seconds.put("train", (t4 - t3) / 1e9);
    kl.update(seqKl, n);
    iteration++;
    double len = 0;
    int eosCount = 0;
    for (int i = 0; i < n; i++) {
      len += gens.get(i).responseIds().length;
      eosCount += ended[i] ? 1 : 0;
    }
    double meanScore = Arrays.stream(scores).average().orElse(0);
    return new Stats(
        iteration,
        meanScore,
        aggs,
        seqKl,
        kl.coef(),
        ent / updates,
        pl / updates,
        vl / updates,
        cf / updates,
        ak / updates,
        len / n,
        (double) eosCount / n,
        seconds);
  }

  /** Right-padded prompt + response rows with their action masks ({@code [N][T-1]}). */
  private record Batch(int n, int t, int[] ids, int[] mask, double[][] action) {
    static Batch of(List<Generation> gens, int pad) {
      int n = gens.size();
      int t = 2;
      for (Generation g : gens) {
        t = Math.max(t, g.promptIds().length + g.responseIds().length);
      }
      int[] ids = new int[n * t];
      int[] mask = new int[n * t];
      Arrays.fill(ids, pad);
      double[][] action = new double[n][t - 1];
      for (int i = 0; i < n; i++) {
        int[] p = gens.get(i).promptIds();
        int[] r = gens.get(i).responseIds();
        System.arraycopy(p, 0, ids, i * t, p.length);
        System.arraycopy(r, 0, ids, i * t + p.length, r.length);
        Arrays.fill(mask, i * t, i * t + p.length + r.length, 1);
        for (int j = 0; j < r.length; j++) {
          action[i][p.length - 1 + j] = 1; // position p-1+j predicts response token j
        }
      }
      return new Batch(n, t, ids, mask, action);
    }

    int[] rowsIds(int[] rows) {
      return gather(ids, rows);
    }

    int[] rowsMask(int[] rows) {
      return gather(mask, rows);
    }

    private int[] gather(int[] a, int[] rows) {
      int[] out = new int[rows.length * t];
      for (int i = 0; i < rows.length; i++) {
        System.arraycopy(a, rows[i] * t, out, i * t, t);
      }
      return out;
    }
  }

  /**
   * Policy log-probs, reference log-probs and values of every row, {@code [3][N][T-1]}, in
   * minibatches.
   */
  private double[][][] forward(Batch b) {
    double[][][] out = new double[3][b.n()][];
    for (int from = 0; from < b.n(); from += cfg.stepBatch()) {
      int[] rows = new int[Math.min(b.n(), from + cfg.stepBatch()) - from];
      for (int i = 0; i < rows.length; i++) {
        rows[i] = from + i;
      }
      List<Tensor> feeds = new ArrayList<>();
      try {
        Session.Runner r = feedBatch(session.runner(), b, rows, feeds);
        try (Result res = r.fetch(logp).fetch(refLogp).fetch(values).run()) {
          for (int k = 0; k < 3; k++) {
            float[] flat = new float[rows.length * (b.t() - 1)];
            ((TFloat32) res.get(k)).asRawTensor().data().asFloats().read(flat);
            for (int i = 0; i < rows.length; i++) {
              double[] row = new double[b.t() - 1];
              for (int j = 0; j < row.length; j++) {
                row[j] = flat[i * row.length + j];
              }
              out[k][rows[i]] = row;
            }
          }
        }
      } finally {
        feeds.forEach(Tensor::close);
      }
    }
    return out;
  }

  private Session.Runner feedBatch(Session.Runner r, Batch b, int[] rows, List<Tensor> feeds) {
    r.feed(
        ids,
        keep(
            feeds,
            TInt32.tensorOf(
                Shape.of(rows.length, b.t()), DataBuffers.of(b.rowsIds(rows), true, false))));
    r.feed(
        mask,
        keep(
            feeds,
            TInt32.tensorOf(
                Shape.of(rows.length, b.t()), DataBuffers.of(b.rowsMask(rows), true, false))));
    r.feed(actionMask, keep(feeds, rowsTensor(b.action(), rows)));
    return r;
  }

  /**
   * One clipped PPO update on a minibatch; returns policy loss, value loss, clip fraction, approx
   * KL, entropy.
   */
  private double[] train(
      Batch b, int[] rows, double[][] lp, double[][] adv, double[][] ret, double[][] vals) {
    List<Tensor> feeds = new ArrayList<>();
    try {
      optimizerSteps++;
      double lr =
          cfg.lr() * Math.min(1.0, (double) optimizerSteps / Math.max(1, cfg.warmupSteps()));
      Session.Runner r = feedBatch(session.runner(), b, rows, feeds);
      r.feed(oldLogp, keep(feeds, rowsTensor(lp, rows)));
      r.feed(advantages, keep(feeds, rowsTensor(adv, rows)));
      r.feed(returns, keep(feeds, rowsTensor(ret, rows)));
      r.feed(oldValues, keep(feeds, rowsTensor(vals, rows)));
      r.feed(adamw.lr(), keep(feeds, TFloat32.scalarOf((float) lr)));
      r.feed(adamw.step(), keep(feeds, TFloat32.scalarOf(optimizerSteps)));
      // Gradients first (accumulate), checked finite, then the update: two runs, no host copy of
      // gradients.
      try (Result res =
          r.fetch(policyLoss.loss())
              .fetch(valueLoss.loss())
              .fetch(policyLoss.clipFraction())
              .fetch(policyLoss.approxKl())
              .fetch(entropyMean)
              .addTarget(acc.accumulate())
              .run()) {
        double[] m = new double[5];
        for (int i = 0; i < 5; i++) {
          m[i] = ((TFloat32) res.get(i)).getFloat();
        }
        if (gradientSink != null) {
          gradientSink.add(accumulatedGradients());
        }
        try (Result chk = session.runner().fetch(acc.finite()).run()) {
          if (!((TBool) chk.get(0)).getBoolean() || !Double.isFinite(m[0])) {
            session.runner().addTarget(acc.reset()).run().close();
            throw new dev.rewardensemble.train.TrainingDivergedException(
                "PPO diverged at iteration "
                    + (iteration + 1)
                    + " (non-finite loss or gradient): try a lower --lr "
                    + "(now "
                    + cfg.lr()
                    + "), a larger --kl-coef, or fewer epochs per rollout");
          }
        }
        try (TFloat32 lrT = TFloat32.scalarOf((float) lr);
            TFloat32 stT = TFloat32.scalarOf(optimizerSteps)) {
          session
              .runner()
              .feed(adamw.lr(), lrT)
              .feed(adamw.step(), stT)
              .addTarget(update)
              .run()
              .close();
        }
        String problem = guard.checkWeights(weightStats());
        if (problem != null) {
          throw new dev.rewardensemble.train.TrainingDivergedException(
              "PPO diverged at iteration "
                  + (iteration + 1)
                  + ": "
                  + problem
                  + ": try a lower --lr (now "
                  + cfg.lr()
                  + "), a larger --kl-coef, or fewer epochs per rollout");
        }
        return m;
      }
    } finally {
      feeds.forEach(Tensor::close);
    }
  }

  private static TFloat32 rowsTensor(double[][] a, int[] rows) {
    int w = a[rows[0]].length;
    float[] flat = new float[rows.length * w];
    for (int i = 0; i < rows.length; i++) {
      for (int j = 0; j < w; j++) {
        flat[i * w + j] = (float) a[rows[i]][j];
      }
    }
    return TFloat32.tensorOf(Shape.of(rows.length, w), DataBuffers.of(flat, true, false));
  }

  private static <T extends Tensor> T keep(List<Tensor> feeds, T t) {
    feeds.add(t);
    return t;
  }

  private static int[] permutation(int n, SplittableRandom rng) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = i;
    }
    for (int i = n - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      int tmp = p[i];
      p[i] = p[j];
      p[j] = tmp;
    }
    return p;
  }

  /** Weight checks after every update (created at this process's first iteration). */
  private dev.rewardensemble.train.DivergenceGuard guard;

  private dev.rewardensemble.train.DivergenceGuard.WeightProbe weightProbe;

  private double[] weightStats() {
    if (weightProbe == null) {
      weightProbe =
          new dev.rewardensemble.train.DivergenceGuard.WeightProbe(owner, params, trainable);
    }
    return weightProbe.stats();
  }

  /** Where {@link #train} puts each update's gradients (tests only; null: nowhere). */
  private List<Map<String, FloatTensor>> gradientSink;

  /** Tests: every later update adds its gradients (by trainable key) to {@code sink}. */
  void captureGradients(List<Map<String, FloatTensor>> sink) {
    gradientSink = sink;
  }

  /** The accumulated (not yet applied) gradients by trainable key. */
  private Map<String, FloatTensor> accumulatedGradients() {
    List<Operand<TFloat32>> acc = this.acc.accumulated();
    Session.Runner r = session.runner();
    acc.forEach(r::fetch);
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    try (Result res = r.run()) {
      for (int i = 0; i < trainable.size(); i++) {
        TFloat32 t = (TFloat32) res.get(i);
        float[] d = new float[Math.toIntExact(t.shape().size())];
        t.asRawTensor().data().asFloats().read(d);
        out.put(trainable.get(i), new FloatTensor(t.shape().asArray(), d));
      }
    }
    return out;
  }

  /** Trainable weights (policy and value model, prefixed keys): what a checkpoint holds. */
  public Map<String, FloatTensor> trainableWeights() {
    return params.read(session, trainable);
  }

  /**
   * {@link #trainableWeights}, read from the session one variable at a time when written (valid
   * while the trainer is open).
   */
  public LazyWeights trainableWeightsDeferred() {
    return params.deferred(session, trainable);
  }

  /** {@link #optimizerState}, read one slot at a time when written. */
  public LazyWeights optimizerStateDeferred() {
    return adamw.deferredSlots(session);
  }

  /**
   * {@link #policyWeights}, read from the session one variable at a time when written (valid while
   * the trainer is open).
   */
  public LazyWeights policyWeightsDeferred() {
    List<String> keys = params.names().stream().filter(k -> k.startsWith(POLICY)).toList();
    LazyWeights live = params.deferred(session, keys);
    LazyWeights out = new LazyWeights();
    keys.forEach(k -> out.putFrom(k.substring(POLICY.length()), live, k));
    return out;
  }

  /** AdamW's moments by slot name. */
  public Map<String, FloatTensor> optimizerState() {
    return adamw.readSlots(session);
  }

  /** Counters a checkpoint must restore: iteration, optimizer steps and the KL coefficient. */
  public record State(int iteration, int optimizerSteps, double klCoef) {}

  public State state() {
    return new State(iteration, optimizerSteps, kl.coef());
  }

  /** Restores a checkpoint: trainable weights, AdamW moments and counters. */
  public void restore(
      Map<String, FloatTensor> weights,
      Map<String, FloatTensor> slots,
      State state,
      String source) {
    if (!weights.keySet().equals(new java.util.HashSet<>(trainable))) {
      throw new IllegalArgumentException(
          source + ": checkpoint does not hold the policy and value weights");
    }
    params.load(session, weights, true, source);
    adamw.loadSlots(session, slots, source);
    iteration = state.iteration();
    optimizerSteps = state.optimizerSteps();
    kl.restore(state.klCoef());
  }

  /** The policy's current weights by checkpoint key (no prefix), e.g. for export. */
  public Map<String, FloatTensor> policyWeights() {
    List<String> keys = params.names().stream().filter(k -> k.startsWith(POLICY)).toList();
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    params.read(session, keys).forEach((k, v) -> out.put(k.substring(POLICY.length()), v));
    return out;
  }

  @Override
  public void close() {
    owner.close();
  }
}
