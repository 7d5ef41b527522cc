package dev.rewardensemble.train;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.Attention;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.GraphSession;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.LmHead;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.Recompute;
import dev.rewardensemble.model.Transformers;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Predicate;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Op;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TBool;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * Causal-LM training (supervised fine-tuning) of a trunk and its language-model head: next-token
 * cross-entropy on the response tokens only ({@link LmLoss}), gradients for an explicit trainable
 * set, global-norm clipping ({@link GradientAccumulator} with one micro-batch) and AdamW with the
 * learning rate of {@link LmTrainConfig#toSchedule()} fed each step.
 *
 * <pre>
 *   ids, mask [B, T] -> trunk rows [B*T, H] -> logits [B*T, V] -> loss against targets [B*T] weighted [B*T]
 * </pre>
 *
 * One {@link #trainStep} is two {@code Session.run}s (forward/backward into the accumulators, then
 * the update); no weight crosses to the host until {@link #weights()}.
 */
public final class LmTrainer implements AutoCloseable {
  private final ModelConfig config;
  private final LmTrainConfig tc;
  private final Schedule schedule;
  private final GraphSession owner = new GraphSession();
  private final Session session;
  private final ParameterStore params;
  private final List<String> trainable;
  private final Placeholder<TInt32> ids;
  private final Placeholder<TInt32> mask;
  private final Placeholder<TInt32> targets;
  private final Placeholder<TFloat32> lossWeights;
  private final Operand<TFloat32> loss;
  private final GradientAccumulator acc;
  private final AdamW adamw;
  private final Op step;
  private int stepsDone;

  /** Trains every weight. */
  public LmTrainer(
      ModelConfig config, Map<String, FloatTensor> init, LmTrainConfig tc, ExecConfig exec) {
    this(config, init, tc, exec, name -> true);
  }

  /**
   * @param init a value for every trunk weight and for {@code lm_head.weight} (unless the config
   *     ties it to the embedding), by checkpoint key
   * @param isTrainable which weights are trained; the others are never touched by the update
   */
  public LmTrainer(
      ModelConfig config,
      Map<String, FloatTensor> init,
      LmTrainConfig tc,
      ExecConfig exec,
      Predicate<String> isTrainable) {
    this.config = config;
    this.tc = tc;
    this.schedule = tc.toSchedule();
    try {
      BuildContext cx = BuildContext.of(owner.graph(), exec);
      Ops tf = cx.tf();
      params = new ParameterStore(tf);
      ids = tf.withName("input_ids").placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
      mask =
          tf.withName("attention_mask")
              .placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
      targets =
          tf.withName("targets").placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
      lossWeights =
          tf.withName("loss_mask").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1)));
      Attention.Geometry g = Attention.geometry(tf, mask);
      // With recomputation the forward records its blocks, and the backward pass rebuilds them.
      Recompute recompute =
          exec.recompute().any() ? new Recompute(exec.recompute().blocks()) : null;
      Operand<TFloat32> rows =
          Transformers.trunk(
              recompute == null ? cx : cx.withBlocks(recompute),
              config,
              params,
              ids,
              g,
              Projector.NONE); // [B*T, H]
      Operand<TFloat32> logits = LmHead.logits(cx, config, params, rows); // [B*T, V]
      Operand<TInt32> flatTargets = tf.reshape(targets, tf.constant(new int[] {-1})); // [B*T]
      Operand<TFloat32> flatWeights = tf.reshape(lossWeights, tf.constant(new int[] {-1})); // [B*T]
      loss =
          tf.withName("lm_loss")
              .identity(
                  LmLoss.maskedCrossEntropy(
                      tf, logits, flatTargets, flatWeights, config.vocabSize()));
      trainable = params.names().stream().filter(isTrainable).toList();
      if (trainable.isEmpty()) {
        throw new IllegalArgumentException(
            "no trainable variables selected among " + params.names());
      }
      List<Variable<TFloat32>> vars = new ArrayList<>();
      trainable.forEach(n -> vars.add(params.variable(n)));
      List<Operand<TFloat32>> gradList = RewardTrainer.gradients(tf, loss, vars, recompute);
      acc = GradientAccumulator.build(tf, vars, gradList, 1, (float) tc.maxGradNorm());
      adamw =
          AdamW.build(tf, vars, acc.clipped(), new AdamWConfig(0.9, 0.999, 1e-8, tc.weightDecay()));
      step = acc.resetAfter(tf, adamw.update());
      session = owner.open(exec);
      params.load(session, init, false, "initial weights");
    } catch (RuntimeException | Error e) {
      owner.close(); // the session first: Graph.close() waits for open sessions
      throw e;
    }
  }

  /**
   * Seeded random weights of a causal LM: {@link Init#trunk} plus {@code lm_head.weight ~ N(0,
   * 0.02)} when the head is not tied.
   */
  public static Map<String, FloatTensor> initialWeights(ModelConfig config, long seed) {
    Map<String, FloatTensor> w = new LinkedHashMap<>(Init.trunk(config, seed));
    if (!config.tieWordEmbeddings()) {
      w.put(
          LmHead.KEY,
          Init.normal(
              new long[] {config.vocabSize(), config.hiddenSize()},
              Init.STD,
              new SplittableRandom(seed ^ 0x5DEECE66DL)));
    }
    return w;
  }

  /** Statistics of one optimizer step. */
  public record StepStats(double loss, double gradNorm, double lr, int responseTokens) {}

  /**
   * One optimizer step on a batch.
   *
   * @param seqs whole sequences (prompt, response, EOS)
   * @param promptLengths prompt tokens of each sequence (see {@link LmLoss#batch})
   * @return the loss of the batch before the update
   * @throws IllegalStateException after {@link LmTrainConfig#steps()} steps
   * @throws TrainingDivergedException if the loss or the gradients are not finite
   */
  public double trainStep(List<int[]> seqs, List<Integer> promptLengths) {
    return step(seqs, promptLengths).loss();
  }

  /** Like {@link #trainStep}, with the gradient norm and learning rate of the step. */
  public StepStats step(List<int[]> seqs, List<Integer> promptLengths) {
    if (stepsDone >= tc.steps()) {
      throw new IllegalStateException(
          "the schedule has "
              + tc.steps()
              + " steps and all have been taken; build a trainer with more steps");
    }
    if (guard == null) {
      guard = new DivergenceGuard(weightStats()[0]); // the weights before the first update
    }
    LmLoss.Batch b = LmLoss.batch(seqs, promptLengths, config.padTokenId(), tc.leftPad());
    double lossValue;
    try (TInt32 idT = ints(b.batch().ids(), b);
        TInt32 maskT = ints(b.batch().mask(), b);
        TInt32 tgtT = ints(b.targets(), b);
        TFloat32 wT = TFloat32.tensorOf(shape(b), DataBuffers.of(b.weights(), true, false));
        Result r =
            session
                .runner()
                .feed(ids, idT)
                .feed(mask, maskT)
                .feed(targets, tgtT)
                .feed(lossWeights, wT)
                .fetch(loss)
                .addTarget(acc.accumulate())
                .run()) {
      lossValue = ((TFloat32) r.get(0)).getFloat();
    }
    double lr = schedule.lr(stepsDone);
    double norm;
    try (TFloat32 lrT = TFloat32.scalarOf((float) lr);
        TFloat32 stepT = TFloat32.scalarOf((float) (stepsDone + 1));
        Result r =
            session
                .runner()
                .feed(adamw.lr(), lrT)
                .feed(adamw.step(), stepT)
                .fetch(acc.globalNorm())
                .fetch(acc.finite())
                .addTarget(step)
                .run()) {
      norm = ((TFloat32) r.get(0)).getFloat();
      // A batch without response tokens has loss 0 and no gradient: not a collapse (the guard needs
      // loss > 0).
      String problem = guard.checkGradients(lossValue, norm, ((TBool) r.get(1)).getBoolean());
      if (problem == null) {
        problem = guard.checkWeights(weightStats());
      }
      if (problem != null) {
        throw new TrainingDivergedException(
            "causal-LM training diverged at step "
                + (stepsDone + 1)
                + ": "
                + problem
                + " (loss "
                + lossValue
                + ", gradient norm "
                + norm
                + ", lr "
                + lr
                + "): lower the learning rate, set a max grad norm or "
                + "warm up longer");
      }
    }
    stepsDone++;
    return new StepStats(lossValue, norm, lr, b.responseTokens());
  }

  /**
   * Divergence checks of {@link #step} (created at the first step) and their weight ops (built
   * then).
   */
  private DivergenceGuard guard;

  private DivergenceGuard.WeightProbe weightProbe;

  private double[] weightStats() {
    if (weightProbe == null) {
      weightProbe = new DivergenceGuard.WeightProbe(owner, params, trainable);
    }
    return weightProbe.stats();
  }

  /** The loss of a batch without training on it. */
  public double loss(List<int[]> seqs, List<Integer> promptLengths) {
    LmLoss.Batch b = LmLoss.batch(seqs, promptLengths, config.padTokenId(), tc.leftPad());
    try (TInt32 idT = ints(b.batch().ids(), b);
        TInt32 maskT = ints(b.batch().mask(), b);
        TInt32 tgtT = ints(b.targets(), b);
        TFloat32 wT = TFloat32.tensorOf(shape(b), DataBuffers.of(b.weights(), true, false));
        Result r =
            session
                .runner()
                .feed(ids, idT)
                .feed(mask, maskT)
                .feed(targets, tgtT)
                .feed(lossWeights, wT)
                .fetch(loss)
                .run()) {
      return ((TFloat32) r.get(0)).getFloat();
    }
  }

  private static Shape shape(LmLoss.Batch b) {
    return Shape.of(b.batch().batch(), b.batch().time());
  }

  private static TInt32 ints(int[] data, LmLoss.Batch b) {
    return TInt32.tensorOf(shape(b), DataBuffers.of(data, true, false));
  }

  /** Optimizer steps taken. */
  public int stepsDone() {
    return stepsDone;
  }

  /** Checkpoint keys of the trained weights. */
  public List<String> trainableNames() {
    return trainable;
  }

  /** Every weight by checkpoint key (trunk and LM head, the {@code LlamaForCausalLM} layout). */
  public Map<String, FloatTensor> weights() {
    return params.readAll(session);
  }

  @Override
  public void close() {
    owner.close();
  }
}
