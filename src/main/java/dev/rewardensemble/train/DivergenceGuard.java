package dev.rewardensemble.train;

import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.GraphSession;
import dev.rewardensemble.model.ParameterStore;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TFloat32;

/**
 * Tells a collapsed or exploding training run from a healthy one, step by step. A run has diverged
 * when
 *
 * <ul>
 *   <li>the loss or the accumulated gradient is not finite (NaN/Inf);
 *   <li>the loss exceeds {@link #LOSS_GROWTH} times the run's first loss (at least 1): {@code loss
 *       > 1e3 * max(1, loss_1)}, a mean Bradley-Terry loss of 1000 being a mean wrong margin of
 *       1000 reward units;
 *   <li>the gradient norm is exactly 0 while the loss is above {@link #LIVE_LOSS}, after a step
 *       whose norm was not: nothing the optimizer can do lowers the loss any more (e.g. the
 *       activations saturated so every reward is the same and every pair's loss sits at log 2).
 *       Fitted pairs cannot do this: a pair's gradient {@code sigmoid(-d)} underflows only where
 *       its loss {@code softplus(-d)}, about the same number, is far below 1e-3; a bootstrap
 *       resample that drew no pair has loss 0;
 *   <li>after an update, a trainable weight is not finite or its magnitude exceeds {@link
 *       #WEIGHT_GROWTH} times the largest initial magnitude (at least 1): {@code max|w| > 1e4 *
 *       max(1, max|w_0|)}.
 * </ul>
 *
 * Why these limits cannot fire on a healthy run: AdamW moves each weight by at most about {@code
 * lr} (a few times {@code lr} right after a gradient spike) per step, so from an initial {@code |w|
 * <= 1} (Hugging Face's N(0, 0.02) and unit norm gains) reaching 1e4 takes 1e7 steps at lr 1e-3
 * (the demo's largest); an exactly zero gradient norm with a positive loss needs every trainable
 * weight's gradient to vanish, which a live network does not do; a healthy Bradley-Terry loss
 * starts near log 2 and falls. A learning rate that throws the weights to 1e6 in one step (lr 1e6)
 * trips the weight test at once; lr 1e2 on the tiny preset (weights ~1e3, losses ~1e5) trips the
 * loss test; lr 1e3 collapses the model to equal rewards (loss log 2, gradient 0).
 *
 * <p>The loss limit and the previous norm are this process's: a resumed run starts them afresh, so
 * it may stop a step later than an uninterrupted one would (never on weights that differ).
 */
public final class DivergenceGuard {
  /** How far the largest weight may grow relative to {@code max(1, largest initial weight)}. */
  public static final double WEIGHT_GROWTH = 1e4;

  /** How far the loss may grow relative to {@code max(1, the first step's loss)}. */
  public static final double LOSS_GROWTH = 1e3;

  /** A loss above which a zero gradient means a dead model rather than fitted pairs. */
  public static final double LIVE_LOSS = 1e-3;

  private final double weightLimit;
  private double previousNorm = Double.NaN;
  private double lossLimit = Double.NaN;

  /**
   * @param initialMaxAbs the largest magnitude among the trainable weights at the start of the run
   */
  public DivergenceGuard(double initialMaxAbs) {
    this.weightLimit =
        WEIGHT_GROWTH * Math.max(1, Double.isFinite(initialMaxAbs) ? initialMaxAbs : 1);
  }

  /** A guard whose weight limit comes from the trainable ones of {@code init}. */
  public static DivergenceGuard forInitial(
      Map<String, FloatTensor> init, Predicate<String> trainable) {
    double max = 0;
    for (Map.Entry<String, FloatTensor> e : init.entrySet()) {
      if (trainable == null || trainable.test(e.getKey())) {
        for (float v : e.getValue().data()) {
          max = Math.max(max, Math.abs(v));
        }
      }
    }
    return new DivergenceGuard(max);
  }

  /** The weight magnitude above which a run counts as exploded. */
  public double weightLimit() {
    return weightLimit;
  }

  /**
   * Before an update: what is wrong with this step's loss and gradient, or null when nothing is.
   *
   * @param loss the step's mean loss
   * @param gradNorm the accumulated gradient's global norm
   * @param finite whether every accumulated gradient is finite
   */
  public String checkGradients(double loss, double gradNorm, boolean finite) {
    String problem = null;
    if (!Double.isFinite(loss)) {
      problem = "the loss is not finite (" + loss + ")";
    } else if (!finite || !Double.isFinite(gradNorm)) {
      problem = "the gradient is not finite";
    } else if (loss > lossLimit) {
      problem =
          String.format(
              "the loss exploded (%.3g, above the limit %.3g: %.0e x max(1, the first step's loss))",
              loss, lossLimit, LOSS_GROWTH);
    } else if (gradNorm == 0 && loss > LIVE_LOSS && previousNorm > 0) {
      problem =
          String.format(
              "the gradient vanished (norm 0 at loss %.4g, after %.3g at the previous step): the model collapsed, "
                  + "no update can lower the loss any more",
              loss, previousNorm);
    }
    previousNorm = gradNorm;
    if (Double.isNaN(lossLimit) && Double.isFinite(loss)) {
      lossLimit = LOSS_GROWTH * Math.max(1, loss);
    }
    return problem;
  }

  /**
   * After an update: what is wrong with the weights ({@link #weightStats}), or null when nothing
   * is.
   */
  public String checkWeights(double[] stats) {
    double maxAbs = stats[0];
    double sumAbs = stats[1];
    if (!Double.isFinite(sumAbs) || !Double.isFinite(maxAbs)) {
      return "the weights are not finite after the update";
    }
    if (maxAbs > weightLimit) {
      return String.format(
          "the weights exploded (largest |w| %.3g after the update, above the limit %.3g: %.0e x max(1, "
              + "largest initial |w|))",
          maxAbs, weightLimit, WEIGHT_GROWTH);
    }
    return null;
  }

  /**
   * {@code {max|w|, sum|w|}} over a trainer's trainable weights (a non-finite sum means a
   * non-finite or overflowing weight), for {@link #checkWeights}. The reading ops are added to the
   * graph, in a sub-scope {@code divergence_guard}, on the first call (the open session picks them
   * up), so trainers that never ask pay nothing.
   */
  public static final class WeightProbe {
    private final GraphSession owner;
    private final ParameterStore params;
    private final List<String> names;
    private Operand<TFloat32> maxAbs;
    private Operand<TFloat32> sumAbs;

    public WeightProbe(GraphSession owner, ParameterStore params, List<String> names) {
      this.owner = owner;
      this.params = params;
      this.names = names;
    }

    public double[] stats() {
      if (maxAbs == null) {
        build();
      }
      try (Result r = owner.session().runner().fetch(maxAbs).fetch(sumAbs).run()) {
        return new double[] {((TFloat32) r.get(0)).getFloat(), ((TFloat32) r.get(1)).getFloat()};
      }
    }

    private void build() {
      Ops s = Ops.create(owner.graph()).withSubScope("divergence_guard");
      List<Operand<TFloat32>> maxes = new ArrayList<>();
      List<Operand<TFloat32>> sums = new ArrayList<>();
      for (String name : names) {
        Variable<TFloat32> v = params.variable(name);
        int rank = v.shape().numDimensions();
        int[] axes = new int[rank];
        for (int d = 0; d < rank; d++) {
          axes[d] = d;
        }
        Operand<TFloat32> abs = s.math.abs(v);
        maxes.add(s.reshape(s.max(abs, s.constant(axes)), s.constant(new int[] {1}))); // [1]
        sums.add(s.sum(abs, s.constant(axes))); // []
      }
      Operand<TFloat32> all =
          maxes.size() == 1 ? maxes.get(0) : s.concat(maxes, s.constant(0)); // [vars]
      maxAbs = s.max(all, s.constant(0)); // []
      sumAbs = sums.size() == 1 ? sums.get(0) : s.math.addN(sums); // []
    }
  }
}
