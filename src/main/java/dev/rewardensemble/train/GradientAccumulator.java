package dev.rewardensemble.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Op;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.PlaceholderWithDefault;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TBool;
import org.tensorflow.types.TFloat32;

/**
 * In-graph gradient accumulation over micro-batches, global-norm clipping ({@code
 * torch.nn.utils.clip_grad_norm_}) and a finiteness check, so that no gradient tensor crosses to
 * the host.
 *
 * <p>A training step with {@code n} micro-batches:
 *
 * <pre>{@code
 * GradientAccumulator acc = GradientAccumulator.build(tf, vars, microGrads, n, maxNorm);
 * AdamW opt = AdamW.build(tf, vars, acc.clipped(), cfg);
 * Op step = acc.resetAfter(tf, opt.update());    // update, then zero the accumulators
 * for each micro-batch: run(feed batch, fetch loss, target acc.accumulate())
 * run(feed lr and t, fetch acc.globalNorm() and acc.finite(), target step)
 * }</pre>
 *
 * The accumulators hold {@code sum_i scale * g_i}; with the default {@code scale = 1/n} that is the
 * mean micro-batch gradient, the gradient of the mean loss over equal micro-batches. {@link
 * #scale()} and {@link #maxNorm()} are placeholders with defaults: feed them to override for one
 * run (e.g. a last, shorter accumulation window).
 *
 * <p>Clipping follows torch: {@code norm = sqrt(sum_i sum(acc_i^2))}, {@code clipped_i = acc_i *
 * min(1, maxNorm / (norm + 1e-6))}; {@code maxNorm <= 0} turns clipping off (factor 1). The norm
 * and {@link #finite()} are those of the accumulated gradients before clipping. A sum of squares
 * above float32 range reads as infinite, which is treated as a divergence like a NaN would be.
 *
 * <p>Accumulators are variables named {@code <varName>/grad_accum}, zero-initialised. They are read
 * through their reference, so a tensor fetched from {@link #accumulated()} in the same run as a
 * reset may already show the zeros: fetch {@link #globalNorm()} / {@link #finite()} there instead
 * (they are computed before the reset of {@link #resetAfter}).
 */
public final class GradientAccumulator {
  /** Name suffix of the accumulator variables. */
  public static final String SUFFIX = "/grad_accum";

  /** The epsilon of {@code torch.nn.utils.clip_grad_norm_}. */
  public static final float CLIP_EPS = 1e-6f;

  private final List<Variable<TFloat32>> vars;
  private final List<Variable<TFloat32>> accumulators;
  private final List<Operand<TFloat32>> accumulated;
  private final List<Operand<TFloat32>> clipped;
  private final PlaceholderWithDefault<TFloat32> scale;
  private final PlaceholderWithDefault<TFloat32> maxNorm;
  private final Operand<TFloat32> globalNorm;
  private final Operand<TFloat32> clipCoefficient;
  private final Operand<TBool> finite;
  private final Op accumulate;
  private final Op reset;

  private GradientAccumulator(
      List<Variable<TFloat32>> vars,
      List<Variable<TFloat32>> accumulators,
      List<Operand<TFloat32>> accumulated,
      List<Operand<TFloat32>> clipped,
      PlaceholderWithDefault<TFloat32> scale,
      PlaceholderWithDefault<TFloat32> maxNorm,
      Operand<TFloat32> globalNorm,
      Operand<TFloat32> clipCoefficient,
      Operand<TBool> finite,
      Op accumulate,
      Op reset) {
    this.vars = vars;
    this.accumulators = accumulators;
    this.accumulated = accumulated;
    this.clipped = clipped;
    this.scale = scale;
    this.maxNorm = maxNorm;
    this.globalNorm = globalNorm;
    this.clipCoefficient = clipCoefficient;
    this.finite = finite;
    this.accumulate = accumulate;
    this.reset = reset;
  }

  /**
   * Builds accumulators and ops.
   *
   * @param tf ops of the graph; helper ops go to a sub-scope {@code grad_accum}
   * @param vars the trainable variables, fully defined shapes, no duplicates
   * @param microGrads gradient of the micro-batch loss for each variable (same order and shapes)
   * @param numMicroBatches micro-batches per optimizer step, {@code > 0}; the default scale is its
   *     inverse
   * @param maxGradNorm default clipping threshold, finite and {@code >= 0}; 0 turns clipping off
   * @throws IllegalArgumentException on bad arguments or taken accumulator names
   */
  public static GradientAccumulator build(
      Ops tf,
      List<Variable<TFloat32>> vars,
      List<? extends Operand<TFloat32>> microGrads,
      int numMicroBatches,
      float maxGradNorm) {
    if (numMicroBatches <= 0) {
      throw new IllegalArgumentException("numMicroBatches must be > 0, got " + numMicroBatches);
    }
    if (!(Float.isFinite(maxGradNorm) && maxGradNorm >= 0)) {
      throw new IllegalArgumentException(
          "maxGradNorm must be finite and >= 0 (0 = off), got " + maxGradNorm);
    }
    TrainVariables.checkPairs("GradientAccumulator", vars, microGrads);
    Ops s = tf.withSubScope("grad_accum");

    PlaceholderWithDefault<TFloat32> scale =
        s.withName("scale")
            .placeholderWithDefault(s.constant(1f / numMicroBatches), Shape.scalar());
    PlaceholderWithDefault<TFloat32> maxNorm =
        s.withName("max_norm").placeholderWithDefault(s.constant(maxGradNorm), Shape.scalar());

    List<Variable<TFloat32>> accumulators = new ArrayList<>();
    List<Operand<TFloat32>> accumulated = new ArrayList<>();
    List<Op> adds = new ArrayList<>();
    List<Op> zeroes = new ArrayList<>();
    List<Operand<TFloat32>> squares = new ArrayList<>();
    for (int i = 0; i < vars.size(); i++) {
      Variable<TFloat32> var = vars.get(i);
      Variable<TFloat32> acc =
          TrainVariables.zeros(
              tf, TrainVariables.name(var) + SUFFIX, var.shape()); // [shape of var]
      accumulators.add(acc);
      adds.add(s.assignAdd(acc, s.math.mul(microGrads.get(i), scale)));
      zeroes.add(s.assign(acc, s.zerosLike(acc)));
      accumulated.add(acc);
      squares.add(s.nn.l2Loss(acc)); // []: sum(acc^2) / 2 in one pass
    }
    Operand<TFloat32> globalNorm = // []
        s.withName("global_norm")
            .math
            .sqrt(
                s.math.mul(s.math.addN(squares), s.constant(2f))); // halves summed, doubled: exact
    Operand<TBool> finite = s.withName("finite").math.isFinite(globalNorm); // []
    Operand<TFloat32> one = s.constant(1f);
    Operand<TFloat32> clipCoefficient = // []
        s.withName("clip_coefficient")
            .select(
                s.math.greater(maxNorm, s.constant(0f)),
                s.math.minimum(
                    one, s.math.div(maxNorm, s.math.add(globalNorm, s.constant(CLIP_EPS)))),
                one);
    List<Operand<TFloat32>> clipped = new ArrayList<>();
    for (Variable<TFloat32> acc : accumulators) {
      clipped.add(s.math.mul(acc, clipCoefficient));
    }
    Op accumulate = s.withControlDependencies(adds).withName("accumulate").noOp();
    Op reset = s.withControlDependencies(zeroes).withName("reset").noOp();
    return new GradientAccumulator(
        List.copyOf(vars),
        List.copyOf(accumulators),
        Collections.unmodifiableList(accumulated),
        Collections.unmodifiableList(clipped),
        scale,
        maxNorm,
        globalNorm,
        clipCoefficient,
        finite,
        accumulate,
        reset);
  }

  /**
   * A target that runs {@code update} and then zeroes the accumulators: one {@code Session.run} per
   * optimizer step. The zeroing also waits for {@link #globalNorm()} and {@link #finite()}, so both
   * can be fetched in the same run and report the gradients that were applied.
   */
  public Op resetAfter(Ops tf, Op update) {
    Ops s =
        tf.withSubScope("grad_accum")
            .withControlDependencyOps(List.of(update.op(), globalNorm.op(), finite.op()));
    List<Op> zeroes = new ArrayList<>();
    for (Variable<TFloat32> acc : accumulators) {
      zeroes.add(s.assign(acc, s.zerosLike(acc)));
    }
    return tf.withSubScope("grad_accum")
        .withControlDependencies(zeroes)
        .withName("step_and_reset")
        .noOp();
  }

  /**
   * Target adding {@code scale * microGrad} to every accumulator (fetch the loss in the same run).
   */
  public Op accumulate() {
    return accumulate;
  }

  /** Target zeroing every accumulator (e.g. to drop a window whose gradients were not finite). */
  public Op reset() {
    return reset;
  }

  /** The accumulated gradients, one per variable, read from the accumulators. */
  public List<Operand<TFloat32>> accumulated() {
    return accumulated;
  }

  /**
   * The accumulated gradients scaled by {@link #clipCoefficient()}: feed these to {@link
   * AdamW#build}.
   */
  public List<Operand<TFloat32>> clipped() {
    return clipped;
  }

  /** Scalar L2 norm over all accumulated gradients (before clipping). */
  public Operand<TFloat32> globalNorm() {
    return globalNorm;
  }

  /**
   * Scalar clipping factor {@code min(1, maxNorm / (norm + 1e-6))}, or 1 when {@code maxNorm <= 0}.
   */
  public Operand<TFloat32> clipCoefficient() {
    return clipCoefficient;
  }

  /** Scalar: whether every accumulated gradient is finite (computed from the global norm). */
  public Operand<TBool> finite() {
    return finite;
  }

  /** Scalar multiplier of each micro-batch gradient; defaults to {@code 1/numMicroBatches}. */
  public PlaceholderWithDefault<TFloat32> scale() {
    return scale;
  }

  /** Scalar clipping threshold; defaults to the built value, {@code <= 0} means no clipping. */
  public PlaceholderWithDefault<TFloat32> maxNorm() {
    return maxNorm;
  }

  /** The accumulator variables by graph name ({@code <varName>/grad_accum}), in var order. */
  public Map<String, Variable<TFloat32>> accumulators() {
    Map<String, Variable<TFloat32>> map = new LinkedHashMap<>();
    for (Variable<TFloat32> acc : accumulators) {
      map.put(TrainVariables.name(acc), acc);
    }
    return Collections.unmodifiableMap(map);
  }

  /** The variables whose gradients are accumulated. */
  public List<Variable<TFloat32>> vars() {
    return vars;
  }
}
