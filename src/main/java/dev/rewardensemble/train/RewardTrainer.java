package dev.rewardensemble.train;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.data.PreferencePair;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.ForwardGraph;
import dev.rewardensemble.model.GraphSession;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.Recompute;
import dev.rewardensemble.model.RewardGraph;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
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
 * The training graph of a reward model with K heads: chosen and rejected sequences of a micro-batch
 * go through the trunk together as {@code [2B, T]}, one Bradley-Terry loss per head, gradients for
 * an explicit trainable set, in-graph accumulation and clipping, and AdamW with the learning rate
 * fed per step.
 *
 * <p>One optimizer step is {@code gradAccum} {@code Session.run}s of {@link #accumulate} plus one
 * {@link #apply} run; no weight or gradient crosses to the host.
 */
public final class RewardTrainer implements AutoCloseable {
  private final GraphSession owner = new GraphSession();
  private final Session session;
  private final ForwardGraph fg;
  private final org.tensorflow.op.core.PlaceholderWithDefault<TFloat32> pairWeights;
  private final ParameterStore params;
  private final List<String> trainable;
  private final Placeholder<TFloat32> margin;
  private final BradleyTerry.Loss loss;
  private final Operand<TFloat32> meanMargin;
  private final GradientAccumulator acc;
  private final AdamW adamw;
  private final Op step;
  private final int heads;
  // The session compiles with XLA (micro-batches are padded to Padding.bucket lengths), and the
  // longest sequence the graph takes.
  private final boolean compiled;
  private final int positionLimit;

  /** Result of one micro-batch or one evaluation batch; arrays are per head. */
  public record BatchStats(int pairs, double loss, double[] accuracy, double[] margin) {}

  /** Result of one optimizer step. */
  public record StepStats(double loss, double accuracy, double gradNorm, boolean finite) {}

  /**
   * A plain reward model (K heads on one trunk, K = 1 for a single model) reading its rewards at
   * {@code rewardToken}.
   */
  public RewardTrainer(
      ModelConfig config,
      int heads,
      RewardToken rewardToken,
      Map<String, FloatTensor> init,
      TrainConfig tc,
      ExecConfig exec,
      Predicate<String> isTrainable) {
    this(plainForward(config, heads, rewardToken, null), init, tc, exec, isTrainable);
  }

  /**
   * The forward graph of a plain reward model with {@code heads} heads, a fixed prior added to the
   * heads ({@link dev.rewardensemble.model.RewardHeads#withPrior}; null: none).
   */
  public static java.util.function.Function<BuildContext, ForwardGraph> plainForward(
      ModelConfig config, int heads, RewardToken rewardToken, FloatTensor prior) {
    return cx -> {
      ParameterStore p = new ParameterStore(cx.tf());
      RewardGraph g = RewardGraph.build(cx, config, heads, p, Projector.NONE, rewardToken, prior);
      return new ForwardGraph(g.inputIds(), g.attentionMask(), g.rewards(), p, heads);
    };
  }

  /**
   * @param build builds the forward graph into the trainer's graph, in the given context ({@code
   *     exec}'s precision)
   * @param init a value for every variable of the forward graph, by checkpoint key
   * @param isTrainable which variables are trained (by checkpoint key); every other variable is
   *     frozen and never touched by the update
   */
  public RewardTrainer(
      java.util.function.Function<BuildContext, ForwardGraph> build,
      Map<String, FloatTensor> init,
      TrainConfig tc,
      ExecConfig exec,
      Predicate<String> isTrainable) {
    this(build, init, tc, exec, isTrainable, 0);
  }

  /**
   * @param diversityWeight lambda of the LoRA members' diversity regulariser ({@link
   *     LoraDiversity}; 0: none, the graph exactly as without it)
   */
  public RewardTrainer(
      java.util.function.Function<BuildContext, ForwardGraph> build,
      Map<String, FloatTensor> init,
      TrainConfig tc,
      ExecConfig exec,
      Predicate<String> isTrainable,
      double diversityWeight) {
    try {
      // The forward + backward has fixed shapes per micro-batch: under --xla auto it compiles,
      // with the sequence length padded to buckets (run).
      exec = exec.forFixedShapes();
      compiled = exec.xla();
      BuildContext cx = BuildContext.of(owner.graph(), exec);
      Ops tf = cx.tf();
      // With recomputation the forward records its blocks, and the backward pass rebuilds them.
      Recompute recompute =
          exec.recompute().any() ? new Recompute(exec.recompute().blocks()) : null;
      ForwardGraph fg = build.apply(recompute == null ? cx : cx.withBlocks(recompute));
      this.fg = fg;
      this.heads = fg.heads();
      params = fg.params();
      margin = tf.withName("margin").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)));
      Operand<TFloat32> pairs =
          tf.reshape(fg.rewards(), tf.constant(new int[] {2, -1, heads})); // [2, B, K]
      Operand<TFloat32> rc =
          tf.reshape(
              tf.stridedSlice(pairs, Indices.at(0)), tf.constant(new int[] {-1, heads})); // [B, K]
      Operand<TFloat32> rr =
          tf.reshape(
              tf.stridedSlice(pairs, Indices.at(1)), tf.constant(new int[] {-1, heads})); // [B, K]
      // The default must not depend on the rewards: PlaceholderWithDefault has no gradient, so no
      // path from the loss to the variables may run through it.
      Operand<TFloat32> ones =
          tf.fill(
              tf.concat(
                  java.util.List.of(tf.shape(margin), tf.constant(new int[] {heads})),
                  tf.constant(0)),
              tf.constant(1f)); // [B, K]
      pairWeights =
          tf.withName("pair_weights").placeholderWithDefault(ones, Shape.of(-1, heads)); // [B, K]
      loss = BradleyTerry.loss(tf, rc, rr, margin, pairWeights, (float) tc.centeringCoef());
      meanMargin = tf.math.mean(tf.math.sub(rc, rr), tf.constant(0)); // [K]
      trainable = params.names().stream().filter(isTrainable).toList();
      if (this.trainable.isEmpty()) {
        throw new IllegalArgumentException("no trainable variables selected");
      }
      List<Variable<TFloat32>> vars = new ArrayList<>();
      this.trainable.forEach(n -> vars.add(params.variable(n)));
      List<Operand<TFloat32>> gradList = gradients(tf, loss.total(), vars, recompute);
      if (diversityWeight != 0) {
        gradList = LoraDiversity.addGradients(tf, vars, trainable, gradList, diversityWeight);
      }
      acc = GradientAccumulator.build(tf, vars, gradList, tc.gradAccum(), (float) tc.maxGradNorm());
      adamw =
          AdamW.build(
              tf,
              vars,
              acc.clipped(),
              new AdamWConfig(0.9, 0.999, 1e-8, tc.weightDecay()),
              tc.swa() > 0);
      step = acc.resetAfter(tf, adamw.update());
      positionLimit = positionLimit(params);
      session = owner.open(exec);
      params.load(session, init, false, "initial weights");
    } catch (RuntimeException | Error e) {
      owner.close(); // the session first: Graph.close() waits for open sessions
      throw e;
    }
  }

  /**
   * The length a micro-batch whose longest sequence has {@code t} tokens runs at: its shape bucket
   * ({@link dev.rewardensemble.data.Padding#bucket}) when the session compiles with XLA, else
   * {@code t}.
   */
  public int runLength(int t) {
    return compiled ? dev.rewardensemble.data.Padding.bucket(t, positionLimit) : t;
  }

  /**
   * The longest sequence the forward accepts: the rows of a learned position table (GPT-2's {@code
   * wpe}), else unbounded (rotary positions hold at any length; sequences themselves are checked
   * against the model's positions when encoded).
   */
  private static int positionLimit(ParameterStore params) {
    for (String n : params.names()) {
      if (n.endsWith("wpe.weight")) {
        return (int) params.shape(n)[0];
      }
    }
    return Integer.MAX_VALUE;
  }

  /**
   * The gradients of {@code loss} with respect to {@code vars}: {@code tf.gradients} of the whole
   * graph, or block by block with the blocks {@code recompute} recorded rebuilt in the backward
   * pass (null: none).
   */
  static List<Operand<TFloat32>> gradients(
      Ops tf, Operand<TFloat32> loss, List<Variable<TFloat32>> vars, Recompute recompute) {
    if (recompute != null) {
      return recompute.gradients(tf, loss, vars);
    }
    Gradients grads = tf.gradients(loss, vars);
    List<Operand<TFloat32>> out = new ArrayList<>();
    for (int i = 0; i < vars.size(); i++) {
      @SuppressWarnings("unchecked")
      Operand<TFloat32> gi = (Operand<TFloat32>) (Operand<?>) grads.dy(i);
      out.add(gi);
    }
    return out;
  }

  public List<String> trainableNames() {
    return trainable;
  }

  public long trainableCount() {
    return params.count(trainable);
  }

  public ParameterStore params() {
    return params;
  }

  /** The training graph (for inspection; owned by this trainer). */
  public org.tensorflow.Graph graph() {
    return owner.graph();
  }

  /**
   * Forward + backward of one micro-batch, adding its gradients times {@code 1/gradAccum} to the
   * accumulators (right when every micro-batch of the step is full), dropout key 0.
   */
  public BatchStats accumulate(List<PreferencePair> batch, int padId) {
    return run(batch, padId, true, null, Float.NaN, 0L);
  }

  /**
   * Like {@link #accumulate}, with per-pair, per-head weights {@code [B][K]} (e.g. Poisson(1)
   * bootstrap counts, so that each head sees its own resample of the batch).
   */
  public BatchStats accumulate(List<PreferencePair> batch, int padId, float[][] weights) {
    return run(batch, padId, true, weights, Float.NaN, 0L);
  }

  /**
   * One micro-batch of an optimizer step.
   *
   * @param weights per-pair, per-head weights {@code [B][K]}, or null
   * @param scale the micro-batch gradient's weight in the step: its pairs over the step's real
   *     pairs ({@link #microBatchScale}), so the accumulated gradient is that of the mean loss over
   *     the pairs the step really has, also in a shorter last window of an epoch
   * @param randomKey the key of every random draw of this micro-batch (LoRA dropout masks, {@link
   *     dev.rewardensemble.lora.StackedLora#DROPOUT_KEY}): a pure function of the step and the
   *     micro-batch, so that a resumed run draws what an uninterrupted one would
   */
  public BatchStats accumulate(
      List<PreferencePair> batch, int padId, float[][] weights, float scale, long randomKey) {
    if (!(Float.isFinite(scale) && scale > 0)) {
      throw new IllegalArgumentException("micro-batch scale must be finite and > 0, got " + scale);
    }
    return run(batch, padId, true, weights, scale, randomKey);
  }

  /**
   * The weight of a micro-batch of {@code pairs} pairs in a step of {@code stepPairs} pairs: {@code
   * pairs / stepPairs} in float, which is exactly {@code 1f / gradAccum} when every micro-batch is
   * full.
   */
  public static float microBatchScale(int pairs, int stepPairs) {
    if (pairs <= 0 || stepPairs < pairs) {
      throw new IllegalArgumentException(
          "micro-batch of " + pairs + " pairs in a step of " + stepPairs);
    }
    return (float) pairs / (float) stepPairs;
  }

  /** Forward only: loss, accuracy and margin of a batch (no dropout). */
  public BatchStats evaluate(List<PreferencePair> batch, int padId) {
    return run(batch, padId, false, null, Float.NaN, 0L);
  }

  /** The LoRA dropout placeholders of the forward graph, when it has them (looked up once). */
  private boolean dropoutLooked;

  private String dropoutKeyOp;
  private String dropoutRateOp;

  private void lookUpDropout() {
    if (!dropoutLooked) {
      String key = dev.rewardensemble.lora.StackedLora.DROPOUT_KEY;
      String rate = dev.rewardensemble.lora.StackedLora.DROPOUT_RATE;
      dropoutKeyOp = owner.graph().operation(key) != null ? key : null;
      dropoutRateOp = owner.graph().operation(rate) != null ? rate : null;
      dropoutLooked = true;
    }
  }

  private BatchStats run(
      List<PreferencePair> batch,
      int padId,
      boolean train,
      float[][] weights,
      float scale,
      long randomKey) {
    lookUpDropout();
    int b = batch.size();
    int t = 1;
    for (PreferencePair p : batch) {
      t = Math.max(t, Math.max(p.chosen().length, p.rejected().length));
    }
    // Right padding with mask 0 changes no reward (causal attention; the reward token is an
    // attended one) and bounds XLA's compilations to a few lengths.
    t = runLength(t);
    int[] ids = new int[2 * b * t];
    int[] mask = new int[2 * b * t];
    Arrays.fill(ids, padId);
    float[] m = new float[b];
    for (int i = 0; i < b; i++) {
      PreferencePair p = batch.get(i);
      System.arraycopy(p.chosen(), 0, ids, i * t, p.chosen().length);
      Arrays.fill(mask, i * t, i * t + p.chosen().length, 1);
      System.arraycopy(p.rejected(), 0, ids, (b + i) * t, p.rejected().length);
      Arrays.fill(mask, (b + i) * t, (b + i) * t + p.rejected().length, 1);
      m[i] = p.margin();
    }
    try (TInt32 idT = TInt32.tensorOf(Shape.of(2L * b, t), DataBuffers.of(ids, true, false));
        TInt32 maskT = TInt32.tensorOf(Shape.of(2L * b, t), DataBuffers.of(mask, true, false));
        TFloat32 marginT = TFloat32.tensorOf(Shape.of(b), DataBuffers.of(m, true, false))) {
      Session.Runner r =
          session
              .runner()
              .feed(fg.inputIds(), idT)
              .feed(fg.attentionMask(), maskT)
              .feed(margin, marginT)
              .fetch(loss.total())
              .fetch(loss.accuracy())
              .fetch(meanMargin);
      List<Tensor> extra = new ArrayList<>();
      if (train) {
        r.addTarget(acc.accumulate());
        if (!Float.isNaN(scale)) {
          r.feed(acc.scale(), keep(extra, TFloat32.scalarOf(scale)));
        }
        if (dropoutKeyOp != null) {
          r.feed(dropoutKeyOp, keep(extra, org.tensorflow.types.TInt64.scalarOf(randomKey)));
        }
      } else if (dropoutRateOp != null) {
        r.feed(dropoutRateOp, keep(extra, TFloat32.scalarOf(0f)));
      }
      TFloat32 wT = null;
      if (weights != null) {
        float[] flat = new float[b * heads];
        for (int i = 0; i < b; i++) {
          System.arraycopy(weights[i], 0, flat, i * heads, heads);
        }
        wT = TFloat32.tensorOf(Shape.of(b, heads), DataBuffers.of(flat, true, false));
        r.feed(pairWeights, wT);
      }
      try (Result res = dev.rewardensemble.model.RunProfile.run(r)) {
        return new BatchStats(b, scalar(res.get(0)), doubles(res.get(1)), doubles(res.get(2)));
      } finally {
        if (wT != null) {
          wT.close();
        }
        extra.forEach(Tensor::close);
      }
    }
  }

  /** Gradient norm of the accumulated gradients and whether they are all finite. */
  public double[] gradientCheck() {
    try (Result res = session.runner().fetch(acc.globalNorm()).fetch(acc.finite()).run()) {
      double norm = scalar(res.get(0));
      boolean finite = ((TBool) res.get(1)).getBoolean();
      return new double[] {norm, finite ? 1 : 0};
    }
  }

  /** The divergence guard's weight statistics ops, built on first use. */
  private DivergenceGuard.WeightProbe weightProbe;

  /**
   * {@code {max|w|, sum|w|}} over the trainable weights, for {@link DivergenceGuard#checkWeights}.
   * The ops are added to the graph on the first call (the session picks them up), so trainers that
   * never ask pay nothing.
   */
  public double[] weightStats() {
    if (weightProbe == null) {
      weightProbe = new DivergenceGuard.WeightProbe(owner, params, trainable);
    }
    return weightProbe.stats();
  }

  /**
   * Applies the accumulated gradients with AdamW at {@code lr}, as optimizer step {@code t}
   * (1-based), and zeroes them.
   */
  public void apply(double lr, int t) {
    try (TFloat32 lrT = TFloat32.scalarOf((float) lr);
        TFloat32 stepT = TFloat32.scalarOf((float) t)) {
      dev.rewardensemble.model.RunProfile.run(
              session.runner().feed(adamw.lr(), lrT).feed(adamw.step(), stepT).addTarget(step))
          .close();
    }
  }

  /**
   * Adds the current trainable weights to their running averages as the {@code count}-th (1-based)
   * weights averaged ({@link TrainConfig#swa}; the trainer must be built with it).
   */
  public void average(int count) {
    if (adamw.average() == null || count < 1) {
      throw new IllegalStateException("no weight averaging in this trainer, or count " + count);
    }
    try (TFloat32 w = TFloat32.scalarOf((float) (1.0 / count))) {
      session.runner().feed(adamw.averageWeight(), w).addTarget(adamw.average()).run().close();
    }
  }

  /** Replaces every trainable weight with its running average ({@link #average}). */
  public void useAverage() {
    if (adamw.useAverage() == null) {
      throw new IllegalStateException("no weight averaging in this trainer");
    }
    session.runner().addTarget(adamw.useAverage()).run().close();
  }

  /** Zeroes the accumulators without applying them (after a diverged micro-batch). */
  public void discardGradients() {
    session.runner().addTarget(acc.reset()).run().close();
  }

  /** Every model weight by checkpoint key. */
  public Map<String, FloatTensor> weights() {
    return params.readAll(session);
  }

  /** AdamW's moment slots, by slot name ({@code <key>/adam_m}, {@code <key>/adam_v}). */
  public Map<String, FloatTensor> optimizerState() {
    return adamw.readSlots(session);
  }

  /**
   * The trainable weights (what a checkpoint must hold; frozen ones come from the initial values).
   */
  public Map<String, FloatTensor> trainableWeights() {
    return params.read(session, trainable);
  }

  /**
   * Every model weight by checkpoint key, read from the session one variable at a time when it is
   * read or written (no whole-model copy); valid while this trainer is open.
   */
  public dev.rewardensemble.io.LazyWeights weightsDeferred() {
    return params.deferred(session, params.names());
  }

  /** {@link #trainableWeights}, read one variable at a time ({@link #weightsDeferred}). */
  public dev.rewardensemble.io.LazyWeights trainableWeightsDeferred() {
    return params.deferred(session, trainable);
  }

  /** {@link #optimizerState}, read one slot at a time ({@link #weightsDeferred}). */
  public dev.rewardensemble.io.LazyWeights optimizerStateDeferred() {
    return adamw.deferredSlots(session);
  }

  /** Restores the trainable weights and optimizer slots, e.g. from a checkpoint. */
  public void restore(
      Map<String, FloatTensor> weights, Map<String, FloatTensor> slots, String source) {
    if (!weights.keySet().equals(new java.util.HashSet<>(trainable))) {
      throw new IllegalArgumentException(
          source
              + ": checkpoint holds "
              + weights.size()
              + " tensors, the trainable set has "
              + trainable.size());
    }
    params.load(session, weights, true, source);
    adamw.loadSlots(session, slots, source);
  }

  private static <T extends Tensor> T keep(List<Tensor> feeds, T t) {
    feeds.add(t);
    return t;
  }

  private static double scalar(Tensor t) {
    return ((TFloat32) t).getFloat();
  }

  private static double[] doubles(Tensor t) {
    TFloat32 f = (TFloat32) t;
    float[] a = new float[Math.toIntExact(f.size())];
    f.asRawTensor().data().asFloats().read(a);
    double[] d = new double[a.length];
    for (int i = 0; i < a.length; i++) {
      d[i] = a[i];
    }
    return d;
  }

  public int heads() {
    return heads;
  }

  @Override
  public void close() {
    owner.close();
  }
}
