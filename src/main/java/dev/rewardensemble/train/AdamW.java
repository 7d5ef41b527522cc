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
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TFloat64;

/**
 * In-graph AdamW (decoupled weight decay) over an explicit list of variables, matching the
 * single-tensor CPU path of {@code torch.optim.AdamW} ({@code amsgrad=False, maximize=False}).
 *
 * <p>One run of {@link #update()} with learning rate {@code lr} and 1-based step {@code t} does,
 * for every variable {@code p} with gradient {@code g} and slots {@code m}, {@code v}:
 *
 * <pre>
 *   p &lt;- p * (1 - lr * weightDecay)
 *   m &lt;- beta1 * m + (1 - beta1) * g
 *   v &lt;- beta2 * v + (1 - beta2) * g * g
 *   p &lt;- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * </pre>
 *
 * The weight decay is one multiplication; the rest is TensorFlow's fused {@code ApplyAdam} kernel
 * (one pass over {@code p}, {@code m}, {@code v} and {@code g} instead of about fifteen
 * element-wise ops per variable), fed so that it computes the same update: with both beta powers 0
 * it does {@code m += (g - m) * (1 - beta1)}, {@code v += (g*g - v) * (1 - beta2)}, {@code p -=
 * alpha * m / (sqrt(v) + eps')}, and {@code alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)}, {@code
 * eps' = eps * sqrt(1 - beta2^t)} turn torch's {@code (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1
 * - beta2^t) + eps)} into it exactly in real arithmetic. Where the float32 results differ from
 * torch's:
 *
 * <ul>
 *   <li>the kernel rounds {@code 1 - beta2} from the float32 {@code beta2} ({@code 1 - 0.999f =
 *       0.00099998713} against torch's {@code 0.001f}), so its second moment {@code v} (the {@code
 *       adam_v} slot) is torch's times {@link #secondMomentScale} ({@code 0.9999871} for 0.999);
 *       the fed {@code alpha} and {@code eps'} carry the square root of that factor, so the update
 *       divides it out again;
 *   <li>{@code 1 - beta1} likewise ({@code 0.10000002} against {@code 0.1f}): 2.4e-7 relative in
 *       the first moment's increment;
 *   <li>the operation order otherwise: a few float32 roundings of the update.
 * </ul>
 *
 * Measured against a float32 emulation of torch's single-tensor step over several steps, the
 * weights and {@code m} agree to 1.1e-6 relative (2e-6 is tested; a weight off by 1.1e-8 after a
 * 1e-2 update), and {@code v} to 1e-6 after the documented factor ({@code AdamWTest}). The scalars
 * ({@code 1 - lr*wd}, {@code alpha}, {@code eps'}) are computed in float64 and then rounded to
 * float32, as torch does with Python floats: in float32, {@code 1 - 0.999^1} would already be off
 * by 1.3e-5 relative.
 *
 * <p>The learning rate and the step count are {@link #lr()} and {@link #step()} placeholders, both
 * fed every step (there is no default), so that schedules ({@link Schedule}) and resumption stay on
 * the Java side. A fed step below 1 fails the run (the bias correction would divide by zero).
 *
 * <p>Slots are variables named {@code <varName>/adam_m} and {@code <varName>/adam_v},
 * zero-initialised (see {@link TrainVariables#zeros}); save and restore them with the parameters to
 * resume training. Variables not in the list are never touched, unlike the framework's {@code
 * Optimizer.minimize}.
 *
 * <p>With {@code average} ({@link #build(Ops, List, List, AdamWConfig, boolean)}; stochastic weight
 * averaging, {@link TrainConfig#swa}) each variable also has a slot {@code <varName>/swa}, the
 * running mean of the weights it was given by {@link #average()}: {@code a <- a + (p - a) * w}, w
 * fed as {@code 1 / count} (so that the first call copies {@code p} exactly), and {@link
 * #useAverage()} assigns every {@code a} to its {@code p}. The slots are optimizer state like the
 * moments: checkpoints hold them, so that a resumed run averages the same weights.
 *
 * <p>Gradients are read when {@link #update()} runs; when they come from {@link
 * GradientAccumulator}, zero the accumulators only afterwards ({@link
 * GradientAccumulator#resetAfter}).
 */
public final class AdamW {
  /** Name suffix of the first-moment slot. */
  public static final String M_SUFFIX = "/adam_m";

  /** Name suffix of the second-moment slot. */
  public static final String V_SUFFIX = "/adam_v";

  /** Name suffix of the running-average slot (when built with {@code average}). */
  public static final String SWA_SUFFIX = "/swa";

  private final AdamWConfig config;
  private final List<Variable<TFloat32>> vars;
  private final Placeholder<TFloat32> lr;
  private final Placeholder<TFloat32> step;
  private final Op update;
  private final Map<String, Variable<TFloat32>> slots;
  private final Map<String, Placeholder<TFloat32>> slotFeeds;
  private final Map<String, Op> slotLoads;
  private final Placeholder<TFloat32> averageWeight;
  private final Op average;
  private final Op useAverage;

  private AdamW(
      AdamWConfig config,
      List<Variable<TFloat32>> vars,
      Placeholder<TFloat32> lr,
      Placeholder<TFloat32> step,
      Op update,
      Map<String, Variable<TFloat32>> slots,
      Map<String, Placeholder<TFloat32>> slotFeeds,
      Map<String, Op> slotLoads,
      Placeholder<TFloat32> averageWeight,
      Op average,
      Op useAverage) {
    this.config = config;
    this.vars = vars;
    this.lr = lr;
    this.step = step;
    this.update = update;
    this.slots = slots;
    this.slotFeeds = slotFeeds;
    this.slotLoads = slotLoads;
    this.averageWeight = averageWeight;
    this.average = average;
    this.useAverage = useAverage;
  }

  /**
   * Builds the slots, placeholders and update ops.
   *
   * @param tf ops of the graph; helper ops go to a sub-scope {@code adamw}
   * @param vars the trainable variables, fully defined shapes, no duplicates
   * @param grads gradient of the loss for each variable, same order and shapes as {@code vars}
   * @param cfg betas, eps, weight decay
   * @throws IllegalArgumentException on mismatched lists, duplicate variables, bad shapes or taken
   *     slot names
   */
  public static AdamW build(
      Ops tf,
      List<Variable<TFloat32>> vars,
      List<? extends Operand<TFloat32>> grads,
      AdamWConfig cfg) {
    return build(tf, vars, grads, cfg, false);
  }

  /**
   * As {@link #build(Ops, List, List, AdamWConfig)}, with a running-average slot per variable when
   * {@code average} (class comment).
   */
  public static AdamW build(
      Ops tf,
      List<Variable<TFloat32>> vars,
      List<? extends Operand<TFloat32>> grads,
      AdamWConfig cfg,
      boolean average) {
    if (cfg == null) {
      throw new IllegalArgumentException("AdamW config must not be null");
    }
    TrainVariables.checkPairs("AdamW", vars, grads);
    Ops s = tf.withSubScope("adamw");

    Placeholder<TFloat32> lr =
        s.withName("lr").placeholder(TFloat32.class, Placeholder.shape(Shape.scalar()));
    Placeholder<TFloat32> step =
        s.withName("step").placeholder(TFloat32.class, Placeholder.shape(Shape.scalar()));

    // Scalars, float64 like torch's Python floats, then rounded once to float32.     // all []
    Op stepCheck =
        s.withName("step_at_least_1")
            .assertThat(
                s.math.greaterEqual(step, s.constant(1f)),
                List.of(s.constant("AdamW step t must be >= 1 (1-based), got"), step));
    Ops sc = s.withControlDependencies(List.of(stepCheck));
    Operand<TFloat64> t64 = sc.dtypes.cast(step, TFloat64.class);
    Operand<TFloat64> lr64 = s.dtypes.cast(lr, TFloat64.class);
    Operand<TFloat64> one = s.constant(1.0);
    Operand<TFloat64> biasCorrection1 = s.math.sub(one, s.math.pow(s.constant(cfg.beta1()), t64));
    Operand<TFloat64> biasCorrection2 = s.math.sub(one, s.math.pow(s.constant(cfg.beta2()), t64));
    Operand<TFloat32> decay =
        cfg.weightDecay() == 0
            ? null
            : s.withName("decay")
                .dtypes
                .cast(
                    s.math.sub(one, s.math.mul(lr64, s.constant(cfg.weightDecay()))),
                    TFloat32.class);

    // TensorFlow's fused kernel, fed so that it computes torch's update (class comment): no bias
    // correction inside it (beta powers 0), the bias-corrected step size and eps fed instead.
    double secondMomentScale = secondMomentScale(cfg.beta2());
    double rootScale = Math.sqrt(secondMomentScale);
    Operand<TFloat64> root2 = s.math.sqrt(biasCorrection2);
    Operand<TFloat32> alpha =
        s.withName("alpha")
            .dtypes
            .cast(
                s.math.mul(
                    s.math.mul(s.math.div(lr64, biasCorrection1), root2), s.constant(rootScale)),
                TFloat32.class);
    Operand<TFloat32> epsilon =
        s.withName("epsilon")
            .dtypes
            .cast(s.math.mul(root2, s.constant(cfg.eps() * rootScale)), TFloat32.class);
    Operand<TFloat32> zero = s.constant(0f);
    Operand<TFloat32> beta1 = s.constant((float) cfg.beta1());
    Operand<TFloat32> beta2 = s.constant((float) cfg.beta2());

    Map<String, Variable<TFloat32>> slots = new LinkedHashMap<>();
    List<Op> assigns = new ArrayList<>();
    for (int i = 0; i < vars.size(); i++) {
      Variable<TFloat32> p =
          vars.get(i); //                                         all [shape of p]
      Operand<TFloat32> g = grads.get(i);
      String name = TrainVariables.name(p);
      Variable<TFloat32> m = TrainVariables.zeros(tf, name + M_SUFFIX, p.shape());
      Variable<TFloat32> v = TrainVariables.zeros(tf, name + V_SUFFIX, p.shape());
      slots.put(name + M_SUFFIX, m);
      slots.put(name + V_SUFFIX, v);
      // torch: p.mul_(1 - lr * weight_decay), before the moments' update
      Ops after =
          decay == null ? s : s.withControlDependencies(List.of(s.assign(p, s.math.mul(p, decay))));
      assigns.add(after.train.applyAdam(p, m, v, zero, zero, alpha, beta1, beta2, epsilon, g));
    }
    Op update = s.withControlDependencies(assigns).withName("update").noOp();
    Placeholder<TFloat32> averageWeight = null;
    Op averageOp = null;
    Op useAverage = null;
    if (average) {
      averageWeight =
          s.withName("average_weight")
              .placeholder(TFloat32.class, Placeholder.shape(Shape.scalar()));
      List<Op> adds = new ArrayList<>();
      List<Op> uses = new ArrayList<>();
      for (Variable<TFloat32> p : vars) {
        String name = TrainVariables.name(p);
        Variable<TFloat32> a = TrainVariables.zeros(tf, name + SWA_SUFFIX, p.shape());
        slots.put(name + SWA_SUFFIX, a);
        adds.add(s.assignAdd(a, s.math.mul(s.math.sub(p, a), averageWeight)));
        uses.add(s.assign(p, a));
      }
      averageOp = s.withControlDependencies(adds).withName("average").noOp();
      useAverage = s.withControlDependencies(uses).withName("use_average").noOp();
    }
    // One placeholder + assign per slot, so that a checkpoint's moments load in one run.
    Map<String, Placeholder<TFloat32>> feeds = new LinkedHashMap<>();
    Map<String, Op> loads = new LinkedHashMap<>();
    for (Map.Entry<String, Variable<TFloat32>> e : slots.entrySet()) {
      Placeholder<TFloat32> f =
          tf.placeholder(TFloat32.class, Placeholder.shape(e.getValue().shape()));
      feeds.put(e.getKey(), f);
      loads.put(e.getKey(), tf.assign(e.getValue(), f));
    }
    return new AdamW(
        cfg,
        List.copyOf(vars),
        lr,
        step,
        update,
        Collections.unmodifiableMap(slots),
        feeds,
        loads,
        averageWeight,
        averageOp,
        useAverage);
  }

  /**
   * The factor between the second moment TensorFlow's Adam kernel keeps and torch's: the kernel
   * adds {@code (g*g - v) * (1 - beta2)} with {@code 1 - beta2} computed in float32 from the
   * float32 {@code beta2} ({@code 1 - 0.999f = 0.00099998713}), torch adds {@code (1 - beta2) * g *
   * g} with {@code 1 - beta2} rounded once from double ({@code 0.001f}); both decay {@code v} by
   * the same float32 {@code beta2}, so the kernel's {@code v} is torch's times this factor ({@code
   * 0.9999871} for 0.999), which the update divides out again through the fed step size and eps.
   */
  static double secondMomentScale(double beta2) {
    float kernel = 1f - (float) beta2;
    float torch = (float) (1 - beta2);
    return (double) kernel / (double) torch;
  }

  /**
   * The moments' current values by slot name ({@code <var>/adam_m}, {@code <var>/adam_v}), for
   * checkpoints.
   */
  public Map<String, dev.rewardensemble.io.FloatTensor> readSlots(org.tensorflow.Session session) {
    return dev.rewardensemble.model.ParameterStore.fetch(session, slots);
  }

  /**
   * The moments as a {@link dev.rewardensemble.io.LazyWeights} that reads each slot from the
   * session only when it is read or written (one slot in flight): what a checkpoint writes. Valid
   * while the session is open.
   */
  public dev.rewardensemble.io.LazyWeights deferredSlots(org.tensorflow.Session session) {
    dev.rewardensemble.io.LazyWeights out = new dev.rewardensemble.io.LazyWeights();
    slots.forEach(
        (name, v) ->
            out.putDeferred(
                name,
                dev.rewardensemble.model.ParameterStore.deferred(
                    session, v, v.shape().asArray(), dev.rewardensemble.config.Precision.FLOAT32)));
    return out;
  }

  /**
   * Loads every moment from a checkpoint, one slot per run (a {@link
   * dev.rewardensemble.io.LazyWeights} is streamed from its file, one slot in flight); names and
   * shapes must match exactly and are checked before anything is loaded.
   */
  public void loadSlots(
      org.tensorflow.Session session,
      Map<String, dev.rewardensemble.io.FloatTensor> values,
      String source) {
    if (!slots.keySet().equals(values.keySet())) {
      throw new IllegalArgumentException(
          source
              + ": optimizer state holds "
              + values.size()
              + " slots, the trainable set needs "
              + slots.size());
    }
    for (String key : values.keySet()) {
      long[] want = slots.get(key).shape().asArray();
      long[] got = dev.rewardensemble.io.LazyWeights.shapeOf(values, key);
      if (!java.util.Arrays.equals(want, got)) {
        throw new IllegalArgumentException(
            source
                + ": optimizer slot '"
                + key
                + "' has shape "
                + java.util.Arrays.toString(got)
                + ", expected "
                + java.util.Arrays.toString(want));
      }
    }
    dev.rewardensemble.io.LazyWeights lazy =
        values instanceof dev.rewardensemble.io.LazyWeights l
            ? l
            : new dev.rewardensemble.io.LazyWeights(values);
    try (dev.rewardensemble.io.LazyWeights.Reader reader = lazy.open()) {
      for (String key : values.keySet()) {
        try (org.tensorflow.Tensor t =
            dev.rewardensemble.model.ParameterStore.tensorOf(
                reader,
                key,
                slots.get(key).shape().asArray(),
                dev.rewardensemble.config.Precision.FLOAT32)) {
          session.runner().feed(slotFeeds.get(key), t).addTarget(slotLoads.get(key)).run().close();
        }
      }
    }
  }

  /** Scalar learning-rate placeholder, fed every step. */
  public Placeholder<TFloat32> lr() {
    return lr;
  }

  /**
   * Scalar placeholder for the 1-based step count {@code t} of the bias correction, fed every step.
   */
  public Placeholder<TFloat32> step() {
    return step;
  }

  /** Scalar placeholder {@code 1 / count} of {@link #average()}; null without averaging slots. */
  public Placeholder<TFloat32> averageWeight() {
    return averageWeight;
  }

  /** Target that adds the current weights to the running averages; null without them. */
  public Op average() {
    return average;
  }

  /** Target that assigns every running average to its variable; null without averages. */
  public Op useAverage() {
    return useAverage;
  }

  /** Target that applies one AdamW step to every listed variable. */
  public Op update() {
    return update;
  }

  /**
   * The slot variables by graph name ({@code <varName>/adam_m}, {@code <varName>/adam_v}), in var
   * order.
   */
  public Map<String, Variable<TFloat32>> slots() {
    return slots;
  }

  /** The first-moment slot of {@code vars().get(i)}. */
  public Variable<TFloat32> firstMoment(int i) {
    return slots.get(TrainVariables.name(vars.get(i)) + M_SUFFIX);
  }

  /** The second-moment slot of {@code vars().get(i)}. */
  public Variable<TFloat32> secondMoment(int i) {
    return slots.get(TrainVariables.name(vars.get(i)) + V_SUFFIX);
  }

  /** The variables this optimizer updates. */
  public List<Variable<TFloat32>> vars() {
    return vars;
  }

  public AdamWConfig config() {
    return config;
  }
}
