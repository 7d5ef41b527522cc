package dev.rewardensemble.lora;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.Members;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.Transformers;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.family.TFloating;

/**
 * K LoRA adapters per targeted projection, stacked: variables {@code <module>.lora_A [K, in, R]}
 * and {@code <module>.lora_B [K, R, out]} (e.g. {@code model.layers.1.self_attn.q_proj.lora_A}) in
 * the {@link ParameterStore}.
 *
 * <p>Applied to the member-major rows of a forked trunk ({@link dev.rewardensemble.model.Members});
 * {@code W + BA} is never materialised. How the deltas are computed is a {@link LoraProduct} chosen
 * once when the graph is built: scoring builds ({@link #scoring}) use {@link BatchedProduct} under
 * XLA and {@link FoldedProduct} otherwise, training builds ({@link #training}) {@link
 * MaskedTrainingProduct}. Modules of one block that read the same rows (the family passes them
 * together: q/k/v, gate/up) share the A product; the fork block's first projections take the
 * batch's rows once ({@link Projector#project}'s {@code fork}).
 *
 * <p>Only modules of {@link LoraConfig#targetModules()} in blocks {@code >= forkLayer} get
 * adapters; the trunk must fork at {@link LoraConfig#forkLayer} into the same K members.
 *
 * <p>Two builds: {@link #scoring} is deterministic; {@link #training} drops adapter inputs with
 * {@link LoraConfig#dropout()} (PEFT's {@code lora_dropout}, a mask per module). Both compute the
 * same function without dropout and read the same variables, so they can share one store.
 *
 * <p>Training dropout is stateless: each module's mask is {@code StatelessRandomUniform} seeded by
 * {@code (mix(seed, module index), key)}, where the key is the scalar placeholder {@link
 * #DROPOUT_KEY} that the trainer feeds per micro-batch (the run's global micro-batch index). A mask
 * is thus a pure function of (seed, step, micro-batch, module, row), and the rows are member-major,
 * so each member draws its own mask. Nothing is carried from run to run, so a resumed run draws
 * exactly the masks an uninterrupted one would (stateful {@code RandomUniform} restarts its stream
 * in every new session). {@link #DROPOUT_RATE} defaults to the configured rate; evaluation feeds 0
 * (no dropout, as PEFT's {@code eval()}).
 */
public final class StackedLora implements Projector {

  /** Suffix of the stacked down-projection variable. */
  public static final String A = ".lora_A";

  /** Suffix of the stacked up-projection variable. */
  public static final String B = ".lora_B";

  /**
   * Op name of a training build's dropout key: int64 scalar placeholder (default 0); every distinct
   * key draws fresh masks, the same key the same masks. Only present when the dropout rate is
   * positive.
   */
  public static final String DROPOUT_KEY = "lora_dropout_key";

  /**
   * Op name of a training build's dropout rate: float scalar placeholder defaulting to the
   * configured rate.
   */
  public static final String DROPOUT_RATE = "lora_dropout_rate";

  /**
   * One adapted projection.
   *
   * @param module Hugging Face module key, e.g. {@code model.layers.0.mlp.down_proj}
   * @param target PEFT module name, e.g. {@code down_proj}
   */
  public record Module(String module, String target, int layer, int in, int out) {}

  /**
   * One module's adapters in a graph.
   *
   * @param index position of the module in checkpoint order (its dropout stream)
   * @param readA {@code a}'s value as a plain float tensor: the products read the variables through
   *     an Identity, since a VariableV2 output is float_ref, which some ops' registered gradients
   *     copy into attributes that reject it (BatchMatMulV3's Tout)
   * @param readB the same for {@code b}
   */
  public record Adapter(
      Module module,
      int index,
      Variable<TFloat32> a,
      Variable<TFloat32> b,
      Operand<TFloat32> readA,
      Operand<TFloat32> readB) {}

  private final ModelConfig config;
  private final LoraConfig lora;
  private final int k;
  private final Map<String, Adapter> adapters = new LinkedHashMap<>();
  private final LoraProduct product;

  private StackedLora(
      BuildContext cx,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      Function<LoraConfig, LoraProduct> product) {
    this(cx, c, lora, k, params, product, null);
  }

  private StackedLora(
      BuildContext cx,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      Function<LoraConfig, LoraProduct> product,
      int[] memberRanks) {
    // K >= 1 is validated once, by ensemble.EnsembleSpec.
    this.config = c;
    this.lora = lora.checkFor(c);
    this.k = k;
    this.product = product.apply(this.lora);
    Ops tf = cx.tf();
    Operand<TFloat32> rankMask = memberRanks == null ? null : rankMask(tf, memberRanks, this.lora);
    for (Module m : modules(c, lora)) {
      Variable<TFloat32> a = params.get(m.module() + A, k, m.in(), lora.rank());
      Variable<TFloat32> b = params.get(m.module() + B, k, lora.rank(), m.out());
      Operand<TFloat32> readA =
          rankMask == null ? tf.identity(a) : tf.math.mul(tf.identity(a), rankMask);
      adapters.put(m.module(), new Adapter(m, adapters.size(), a, b, readA, tf.identity(b)));
    }
  }

  /**
   * Per-member ranks in the stacked layout: member k uses the first {@code r_k} of the R = {@link
   * LoraConfig#rank()} columns of its A, each scaled by {@code R / r_k}, the rest multiplied by 0:
   * with the graph's one scaling {@code alpha / R} member k computes {@code alpha / r_k * B_k A_k}
   * over its own r_k columns, exactly a PEFT adapter of rank r_k and the same alpha. The masked
   * columns of A get no gradient and B's matching rows get none either (their input is 0), so B
   * keeps them at their initial 0.
   *
   * @return {@code [K, 1, R]}
   */
  private static Operand<TFloat32> rankMask(Ops tf, int[] ranks, LoraConfig lora) {
    int r = lora.rank();
    float[] mask = new float[ranks.length * r];
    for (int m = 0; m < ranks.length; m++) {
      if (ranks[m] < 1 || ranks[m] > r) {
        throw new IllegalArgumentException(
            "member " + m + "'s LoRA rank " + ranks[m] + " is outside 1.." + r);
      }
      for (int j = 0; j < ranks[m]; j++) {
        mask[m * r + j] = (float) r / ranks[m];
      }
    }
    return tf.constant(
        org.tensorflow.ndarray.Shape.of(ranks.length, 1, r),
        org.tensorflow.ndarray.buffer.DataBuffers.of(mask, true, false));
  }

  /**
   * Deterministic adapters (no dropout) for a graph built in {@code cx}, creating or reusing their
   * variables in {@code params}: {@link LoraProduct#forScoring} (batched under XLA, folded
   * otherwise).
   */
  public static StackedLora scoring(
      BuildContext cx, ModelConfig c, LoraConfig lora, int k, ParameterStore params) {
    return new StackedLora(cx, c, lora, k, params, l -> LoraProduct.forScoring(cx, k, l));
  }

  /** {@link #scoring} in float32 without XLA: folded products. */
  public static StackedLora inference(
      Ops tf, ModelConfig c, LoraConfig lora, int k, ParameterStore params) {
    return scoring(BuildContext.float32(tf), c, lora, k, params);
  }

  /**
   * Adapters whose inputs are dropped with rate {@link LoraConfig#dropout()} (inverted dropout,
   * masks a pure function of {@code seed}, the fed {@link #DROPOUT_KEY}, the module and the row),
   * as masked 2-D products; identical to {@link #scoring} when the rate is 0.
   */
  public static StackedLora training(
      BuildContext cx, ModelConfig c, LoraConfig lora, int k, ParameterStore params, long seed) {
    return new StackedLora(cx, c, lora, k, params, l -> LoraProduct.maskedTraining(cx, k, l, seed));
  }

  /**
   * {@link #training} with a rank per member ({@code rme train-rm --lora-rank 4,8,16}): the
   * variables have R = {@code lora.rank()} = the largest rank, member k uses its first {@code
   * memberRanks[k]} with PEFT's scaling {@code alpha / r_k} (see {@link #rankMask}); null: every
   * member rank R.
   */
  public static StackedLora training(
      BuildContext cx,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      long seed,
      int[] memberRanks) {
    if (memberRanks != null && memberRanks.length != k) {
      throw new IllegalArgumentException(
          memberRanks.length + " member ranks for " + k + " members");
    }
    return new StackedLora(
        cx, c, lora, k, params, l -> LoraProduct.maskedTraining(cx, k, l, seed), memberRanks);
  }

  /**
   * Adapters computed with {@code product}, which must have been made for {@code cx}'s graph, the
   * same K and this {@code lora} (e.g. to compare formulations).
   */
  public static StackedLora withProduct(
      BuildContext cx,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      LoraProduct product) {
    return new StackedLora(cx, c, lora, k, params, l -> product);
  }

  /**
   * The projections that get adapters, in checkpoint order: modules of {@code lora.targetModules()}
   * in blocks {@code >= lora.forkLayer(c)}. {@code in}/{@code out} come from the base weight (torch
   * Linear {@code [out, in]} for Llama, Conv1D {@code [in, out]} for GPT-2).
   */
  public static List<Module> modules(ModelConfig c, LoraConfig lora) {
    lora.checkFor(c);
    int fork = lora.forkLayer(c);
    List<Module> out = new ArrayList<>();
    boolean conv1d = c.conv1dWeights();
    for (Map.Entry<String, long[]> e : Transformers.parameterShapes(c).entrySet()) {
      String key = e.getKey();
      if (!key.endsWith(".weight")) {
        continue;
      }
      String module = key.substring(0, key.length() - ".weight".length());
      String target = module.substring(module.lastIndexOf('.') + 1);
      int layer = layerOf(module);
      if (layer < fork || !lora.targetModules().contains(target)) {
        continue;
      }
      long[] s = e.getValue();
      int in = Math.toIntExact(conv1d ? s[0] : s[1]);
      int outDim = Math.toIntExact(conv1d ? s[1] : s[0]);
      out.add(new Module(module, target, layer, in, outDim));
    }
    return out;
  }

  /**
   * Block index of a module key ({@code model.layers.3.mlp.up_proj} -> 3), or -1 outside blocks.
   */
  public static int layerOf(String module) {
    return dev.rewardensemble.io.PeftFiles.layerOf(module);
  }

  /** The formulation of this graph's deltas. */
  public LoraProduct product() {
    return product;
  }

  @Override
  public <T extends TFloating> List<Operand<T>> project(
      BuildContext cx,
      int layer,
      List<String> modules,
      Operand<T> x,
      List<Operand<TFloat32>> weights,
      Layout layout,
      Members fork) {
    List<Adapter> group = new ArrayList<>();
    List<Operand<TFloat32>> groupWeights = new ArrayList<>();
    for (int i = 0; i < modules.size(); i++) {
      Adapter e = adapters.get(modules.get(i));
      if (e != null) {
        group.add(e);
        groupWeights.add(weights.get(i));
      }
    }
    if (group.isEmpty()) {
      return Projector.plain(cx, x, weights, layout, fork);
    }
    List<Operand<T>> adapted =
        fork == null
            ? product.project(cx, group, x, groupWeights, layout)
            : product.projectShared(cx, group, x, groupWeights, layout, fork);
    if (group.size() == modules.size()) {
      return adapted;
    }
    // Modules without adapters: plain products, in the caller's order.
    List<Operand<T>> out = new ArrayList<>(modules.size());
    int next = 0;
    for (int i = 0; i < modules.size(); i++) {
      out.add(
          adapters.containsKey(modules.get(i))
              ? adapted.get(next++)
              : Projector.plain(cx, x, List.of(weights.get(i)), layout, fork).get(0));
    }
    return out;
  }

  public LoraConfig lora() {
    return lora;
  }

  public ModelConfig config() {
    return config;
  }

  /** K. */
  public int members() {
    return k;
  }

  /** The adapted projections, in checkpoint order. */
  public List<Module> adaptedModules() {
    List<Module> out = new ArrayList<>();
    adapters.values().forEach(e -> out.add(e.module()));
    return Collections.unmodifiableList(out);
  }

  /** Names of the adapter variables ({@code lora_A}, {@code lora_B} per module), in order. */
  public List<String> variableNames() {
    List<String> out = new ArrayList<>();
    for (String m : adapters.keySet()) {
      out.add(m + A);
      out.add(m + B);
    }
    return out;
  }

  /** The adapter variables, in the order of {@link #variableNames()}. */
  public List<Variable<TFloat32>> variables() {
    List<Variable<TFloat32>> out = new ArrayList<>();
    adapters
        .values()
        .forEach(
            e -> {
              out.add(e.a());
              out.add(e.b());
            });
    return out;
  }

  /**
   * PEFT's initialisation: every {@code A} kaiming-uniform with {@code a = sqrt(5)} (uniform in
   * {@code [-1/sqrt(in), 1/sqrt(in))}) and every {@code B} zero, so that a fresh ensemble computes
   * the base model. Member k's values depend only on {@code seed}, k and the module key, not on K.
   */
  public Map<String, FloatTensor> initialValues(long seed) {
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    int r = lora.rank();
    for (Adapter e : adapters.values()) {
      Module m = e.module();
      float[] a = new float[k * m.in() * r];
      float bound = (float) (1.0 / Math.sqrt(m.in()));
      for (int member = 0; member < k; member++) {
        SplittableRandom rnd =
            new SplittableRandom(seed * 1_000_003L + member * 7919L + m.module().hashCode());
        int off = member * m.in() * r;
        for (int i = 0; i < m.in() * r; i++) {
          a[off + i] = (float) rnd.nextDouble(-bound, bound);
        }
      }
      out.put(m.module() + A, new FloatTensor(new long[] {k, m.in(), r}, a));
      out.put(m.module() + B, FloatTensor.zeros(k, r, m.out()));
    }
    return out;
  }
}
