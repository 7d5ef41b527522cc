package dev.rewardensemble.lora;

import dev.rewardensemble.config.Gpt2Config;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.Layers;
import dev.rewardensemble.model.Members;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.Transformers;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.PlaceholderWithDefault;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.TInt64;

/**
 * K LoRA adapters per targeted projection, stacked: variables {@code <module>.lora_A [K, in, R]} and {@code
 * <module>.lora_B [K, R, out]} (e.g. {@code model.layers.1.self_attn.q_proj.lora_A}) in the {@link
 * ParameterStore}.
 *
 * <p>Applied to the member-major rows of a forked trunk ({@link dev.rewardensemble.model.Members}); {@code W + BA}
 * is never materialised. Scoring builds ({@link #inference}) use batched products over the members, {@code x [K,
 * B*T, in] @ A [K, in, R] @ (scaling * B) [K, R, out]}, added to the frozen base output {@code x @ W}, as {@code
 * BatchMatMulV2}, which oneDNN runs (the {@code BatchMatMulV3} that TF Java's typed op builds stays on Eigen and was
 * slower; the masked form below is 5% slower end to end). Modules of one block that read the same rows (q/k/v,
 * gate/up) share the A product; the fork block's first projections take the batch's rows once ({@link
 * #projectShared}); with TensorFlow's own kernels, modules much wider than their input fold the adapters into
 * the base product, {@code [x | xA] @ [W ; B]} (see {@link #inference(Ops, ModelConfig, LoraConfig, int,
 * ParameterStore, boolean)}). Training builds ({@link #training}) use plain 2-D products whose gradients run
 * faster: every row against all members' A, masked to its own member's columns, then all members' B stacked
 * ({@code maskedDelta}).
 *
 * <p>Only modules of {@link LoraConfig#targetModules()} in blocks {@code >= forkLayer} get
 * adapters; the trunk must fork at {@link LoraConfig#forkLayer} into the same K members.
 *
 * <p>Two builds: {@link #inference} is deterministic; {@link #training} drops adapter inputs with {@link
 * LoraConfig#dropout()} (PEFT's {@code lora_dropout}, a mask per module). Both compute the same function without
 * dropout and read the same variables, so they can share one store.
 *
 * <p>Training dropout is stateless: each module's mask is {@code StatelessRandomUniform} seeded by {@code
 * (mix(seed, module index), key)}, where the key is the scalar placeholder {@link #DROPOUT_KEY} that the trainer
 * feeds per micro-batch (the run's global micro-batch index). A mask is thus a pure function of (seed, step,
 * micro-batch, module, row), and the rows are member-major, so each member draws its own mask. Nothing is
 * carried from run to run, so a resumed run draws exactly the masks an uninterrupted one would (stateful {@code
 * RandomUniform} restarts its stream in every new session). {@link #DROPOUT_RATE} defaults to the configured
 * rate; evaluation feeds 0 (no dropout, as PEFT's {@code eval()}).
 */
public final class StackedLora implements Projector {

  /** Suffix of the stacked down-projection variable. */
  public static final String A = ".lora_A";

  /** Suffix of the stacked up-projection variable. */
  public static final String B = ".lora_B";

  /**
   * Op name of a training build's dropout key: int64 scalar placeholder (default 0); every distinct key draws
   * fresh masks, the same key the same masks. Only present when the dropout rate is positive.
   */
  public static final String DROPOUT_KEY = "lora_dropout_key";

  /** Op name of a training build's dropout rate: float scalar placeholder defaulting to the configured rate. */
  public static final String DROPOUT_RATE = "lora_dropout_rate";

  /**
   * One adapted projection.
   *
   * @param module Hugging Face module key, e.g. {@code model.layers.0.mlp.down_proj}
   * @param target PEFT module name, e.g. {@code down_proj}
   */
  public record Module(String module, String target, int layer, int in, int out) {}

  /**
   * {@code readA}/{@code readB}: the variables' values as plain float tensors (see the
   * constructor).
   */
  private record Entry(
      Module module,
      Variable<TFloat32> a,
      Variable<TFloat32> b,
      Operand<TFloat32> readA,
      Operand<TFloat32> readB) {}

  private final ModelConfig config;
  private final LoraConfig lora;
  private final int k;
  private final float dropout;
  private final long seed;
  private final Map<String, Entry> entries = new LinkedHashMap<>();
  /** Per module: the adapted modules of its block that read the same input rows, itself included. */
  private final Map<String, List<Entry>> groups = new LinkedHashMap<>();
  /** A training build's {@link #DROPOUT_KEY} and {@link #DROPOUT_RATE} (null without dropout). */
  private final PlaceholderWithDefault<TInt64> dropoutKey;
  private final PlaceholderWithDefault<TFloat32> dropoutRate;
  private final boolean fold;
  /** A training build: masked 2-D products, see {@link #maskedDelta}. */
  private final boolean training;
  /** {@link #memberMask}, built once per graph. */
  private Operand<TFloat32> mask;
  /** {@link #rowMask}, built once per graph. */
  private Operand<TFloat32> rowMask;
  /** A training build's last fork input and its K copies, so that the fork block's projections copy it once. */
  private Operand<TFloat32> forkRows;
  private Operand<TFloat32> forkCopies;
  private SharedProduct shared;

  /** The last group product: its input rows and {@code x @ [A_1 | .. | A_G]} per member, {@code [K, B*T, G*R]}. */
  private final class SharedProduct {
    final Operand<TFloat32> x;
    final Operand<TFloat32> product;
    final int size;
    private Operand<TFloat32> extended;

    SharedProduct(Operand<TFloat32> x, Operand<TFloat32> product, int size) {
      this.x = x;
      this.product = product;
      this.size = size;
    }

    /**
     * {@code [x | xA_1 | .. | xA_G]}, {@code [rows, in + G*K*R]}: each {@code xA_g} is {@code [rows, K*R]} with the
     * row's own member's R columns (times {@code scaling}) and zeros elsewhere.
     */
    Operand<TFloat32> extended(Ops tf) {
      if (extended == null) {
        int r = lora.rank();
        Operand<TFloat32> spread =
            tf.math.mul(tf.reshape(product, tf.constant(new int[] {k, -1, size, 1, r})), memberMask(tf)); // [K, B*T, G, K, R]
        Operand<TFloat32> masked = tf.reshape(spread, tf.constant(new int[] {-1, size * k * r}));
        extended = tf.concat(List.of(x, masked), tf.constant(1));
      }
      return extended;
    }
  }

  /** Projections of one block that read the same rows: Llama's attention inputs and MLP inputs. */
  private static final List<Set<String>> SHARED_INPUTS =
      List.of(Set.of("q_proj", "k_proj", "v_proj"), Set.of("gate_proj", "up_proj"));

  private StackedLora(
      Ops tf,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      float dropout,
      long seed,
      boolean fold,
      boolean training) {
    // K >= 1 is validated once, by ensemble.EnsembleSpec.
    this.config = c;
    this.lora = lora.checkFor(c);
    this.k = k;
    this.dropout = dropout;
    this.seed = seed;
    this.fold = fold;
    this.training = training;
    if (training && dropout > 0) {
      dropoutKey = tf.withName(DROPOUT_KEY).placeholderWithDefault(tf.constant(0L), Shape.scalar());
      dropoutRate = tf.withName(DROPOUT_RATE).placeholderWithDefault(tf.constant(dropout), Shape.scalar());
    } else {
      dropoutKey = null;
      dropoutRate = null;
    }
    for (Module m : modules(c, lora)) {
      Variable<TFloat32> a = params.get(m.module() + A, k, m.in(), lora.rank());
      Variable<TFloat32> b = params.get(m.module() + B, k, lora.rank(), m.out());
      // The products read the variables through an Identity: a VariableV2 output is float_ref, which some ops'
      // registered gradients copy into attributes that reject it (BatchMatMulV3's Tout).
      entries.put(m.module(), new Entry(m, a, b, tf.identity(a), tf.identity(b)));
    }
    for (Entry e : entries.values()) {
      Set<String> shares = SHARED_INPUTS.stream().filter(g -> g.contains(e.module.target())).findFirst().orElse(Set.of());
      List<Entry> group = new ArrayList<>();
      for (Entry o : entries.values()) {
        if (o == e || (o.module.layer() == e.module.layer() && shares.contains(o.module.target()))) {
          group.add(o);
        }
      }
      groups.put(e.module.module(), group);
    }
  }

  /**
   * Deterministic adapters (no dropout), creating or reusing their variables in {@code params}, folded into the
   * base products where that pays ({@code inference(.., true)}).
   */
  public static StackedLora inference(
      Ops tf, ModelConfig c, LoraConfig lora, int k, ParameterStore params) {
    return inference(tf, c, lora, k, params, true);
  }

  /**
   * Deterministic adapters. {@code fold}: compute {@code [x | xA] @ [W ; B]} (one product per projection, the
   * delta never written; fastest with TensorFlow's own kernels) instead of {@code x @ W + xA @ B} (fastest
   * under XLA, which fuses the add into its consumer but copies the concatenation). Same function either way.
   */
  public static StackedLora inference(
      Ops tf, ModelConfig c, LoraConfig lora, int k, ParameterStore params, boolean fold) {
    return new StackedLora(tf, c, lora, k, params, 0f, 0L, fold, false);
  }

  /**
   * Adapters whose inputs are dropped with rate {@link LoraConfig#dropout()} (inverted dropout, masks a pure
   * function of {@code seed}, the fed {@link #DROPOUT_KEY}, the module and the row); identical to {@link
   * #inference} when the rate is 0.
   */
  public static StackedLora training(
      Ops tf, ModelConfig c, LoraConfig lora, int k, ParameterStore params, long seed) {
    return new StackedLora(tf, c, lora, k, params, (float) lora.dropout(), seed, false, true);
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
    boolean conv1d = c instanceof Gpt2Config;
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
    for (String part : module.split("\\.")) {
      if (!part.isEmpty() && part.chars().allMatch(Character::isDigit)) {
        return Integer.parseInt(part);
      }
    }
    return -1;
  }

  @Override
  public Operand<TFloat32> project(
      Ops tf, String module, int layer, Operand<TFloat32> x, Operand<TFloat32> w, Layout layout) {
    Entry e = entries.get(module);
    if (e == null) {
      return layout.apply(tf, x, w);
    }
    List<Entry> group = groups.get(module);
    int index = group.indexOf(e);
    int r = lora.rank();
    int out = e.module.out();
    if (training) {
      return tf.math.add(layout.apply(tf, x, w), maskedDelta(tf, e, x));
    }
    if (!(fold && foldable(group))) {
      // Each member's rows against its own A and B: [K, B*T, in] @ [K, in, R] @ [K, R, out], batched over K.
      Operand<TFloat32> xa; // [K, B*T, R]
      if (group.size() > 1) {
        xa = tf.slice(shared(tf, x, group).product, tf.constant(new int[] {0, 0, r * index}), tf.constant(new int[] {-1, -1, r}));
      } else {
        xa = Layers.batchMatMul(tf, byMember(tf, x, e.module.in()), e.readA, false);
      }
      Operand<TFloat32> delta = tf.reshape(Layers.batchMatMul(tf, xa, scaledB(tf, e), false), tf.constant(new int[] {-1, out}));
      return tf.math.add(layout.apply(tf, x, w), delta); // [rows, out]
    }
    SharedProduct sp = shared(tf, x, group);
    // [x | xA_1 | .. | xA_G] @ [W ; 0 ; B ; 0], every xA_g masked to the row's own member's R columns: base and
    // delta in one product, so the [rows, out] delta is never written and added; the other modules' columns meet
    // zeros and the other members' rows of B meet the mask's zeros.
    int kr = k * r;
    boolean linear = layout == Layout.LINEAR;
    Operand<TFloat32> bCat = tf.reshape(e.readB, tf.constant(new int[] {kr, out})); // [K*R, out], member-major
    List<Operand<TFloat32>> parts = new ArrayList<>();
    parts.add(w);
    if (index > 0) {
      parts.add(zeros(tf, linear ? out : kr * index, linear ? kr * index : out));
    }
    parts.add(linear ? tf.linalg.transpose(bCat, tf.constant(new int[] {1, 0})) : bCat);
    int after = group.size() - 1 - index;
    if (after > 0) {
      parts.add(zeros(tf, linear ? out : kr * after, linear ? kr * after : out));
    }
    // [W ; 0 ; B ; 0] depends only on weights, so the executor could build every module's copy at the start of a
    // run and hold them all; tying it to the input rows builds each one just before its product.
    Operand<TFloat32> xExt = sp.extended(tf);
    Operand<TFloat32> wExt =
        tf.withControlDependencyOps(List.of(xExt.op())).concat(parts, tf.constant(linear ? 1 : 0));
    return layout.apply(tf, xExt, wExt);
  }

  /**
   * The fork block's first projections: the base product once on the batch's rows, every member's A on the same
   * rows (a batched product broadcasting the rows), then each member's B, and the base added to every
   * member's delta by broadcasting. Training builds copy the rows first (every member drops its own inputs).
   */
  @Override
  public Operand<TFloat32> projectShared(
      Ops tf, String module, int layer, Operand<TFloat32> x, Operand<TFloat32> w, Layout layout, Members members) {
    Entry e = entries.get(module);
    if (e == null) {
      return Projector.super.projectShared(tf, module, layer, x, w, layout, members);
    }
    if (training) {
      if (forkRows != x) {
        forkRows = x;
        forkCopies = members.expand(tf, x);
      }
      return project(tf, module, layer, forkCopies, w, layout);
    }
    int in = e.module.in();
    int out = e.module.out();
    // [1, rows, in] @ [K, in, R] broadcasts the rows over the members.
    Operand<TFloat32> xa = Layers.batchMatMul(tf, tf.reshape(x, tf.constant(new int[] {1, -1, in})), e.readA, false);
    Operand<TFloat32> delta = Layers.batchMatMul(tf, xa, scaledB(tf, e), false); // [K, rows, out]
    return tf.reshape(tf.math.add(delta, layout.apply(tf, x, w)), tf.constant(new int[] {-1, out}));
  }

  /**
   * A training build's delta, {@code [rows, out]}: every row (dropped per module) against all members' A side by
   * side, {@code [rows, in] @ [in, K*R]}, masked to the row's own member's R columns and scaled, then {@code @ B
   * [K*R, out]} (all members' B stacked). It wastes (K-1)/K of the first product, but its gradients are plain 2-D
   * products: measured on the 2-core CPU, LoRA steps ran 4-9% faster than with the batched form's.
   */
  private Operand<TFloat32> maskedDelta(Ops tf, Entry e, Operand<TFloat32> x) {
    int kr = k * lora.rank();
    Operand<TFloat32> aCat = // [in, K*R], member-major columns
        tf.reshape(tf.linalg.transpose(e.readA, tf.constant(new int[] {1, 0, 2})), tf.constant(new int[] {e.module.in(), kr}));
    Operand<TFloat32> dropped = dropoutKey != null ? dropout(tf, x, moduleIndex(e)) : x;
    Operand<TFloat32> xa = tf.math.mul(Layers.matMul(tf, dropped, aCat, false), rowMask(tf, x));
    return Layers.matMul(tf, xa, tf.reshape(e.readB, tf.constant(new int[] {kr, e.module.out()})), false);
  }

  /**
   * {@code [K*B*T, K*R]}: {@code scaling} where the row's member owns the column, else 0. Rows are member-major
   * ({@code rows / K} per member).
   */
  private Operand<TFloat32> rowMask(Ops tf, Operand<TFloat32> x) {
    if (rowMask == null) {
      Operand<TInt32> n =
          tf.reshape(
              tf.slice(tf.shape(x), tf.constant(new int[] {0}), tf.constant(new int[] {1})),
              tf.constant(new int[0])); // rows
      Operand<TInt32> member =
          tf.math.floorDiv(tf.range(tf.constant(0), n, tf.constant(1)), tf.math.floorDiv(n, tf.constant(k)));
      Operand<TFloat32> oneHot =
          tf.oneHot(member, tf.constant(k), tf.constant((float) lora.scaling()), tf.constant(0f)); // [rows, K]
      Operand<TFloat32> perColumn =
          tf.math.mul(
              tf.expandDims(oneHot, tf.constant(2)),
              tf.ones(tf.constant(new int[] {1, 1, lora.rank()}), TFloat32.class)); // [rows, K, R]
      rowMask = tf.reshape(perColumn, tf.constant(new int[] {-1, k * lora.rank()}));
    }
    return rowMask;
  }

  /** {@code B * scaling}, {@code [K, R, out]} (small). */
  private Operand<TFloat32> scaledB(Ops tf, Entry e) {
    return tf.math.mul(e.readB, tf.constant((float) lora.scaling()));
  }

  /**
   * Whether to fold a group's adapters into its base products: when every module's output is at least twice
   * as wide as the shared input (Llama's gate/up, GPT-2's c_attn and c_fc). Folding saves writing and adding
   * each {@code [rows, out]} delta and costs a copy of the {@code [rows, in]} input and of the weights; measured
   * on the 2-core CPU, folding q/k/v as well bought no time and raised the ensemble's peak memory by ~5%.
   */
  private static boolean foldable(List<Entry> group) {
    return group.stream().allMatch(g -> g.module.out() >= 2 * g.module.in());
  }

  private static Operand<TFloat32> zeros(Ops tf, int rows, int cols) {
    return tf.zeros(tf.constant(new int[] {rows, cols}), TFloat32.class);
  }

  /** Member-major rows {@code [K*B*T, in]} as {@code [K, B*T, in]}. */
  private Operand<TFloat32> byMember(Ops tf, Operand<TFloat32> x, int in) {
    return tf.reshape(x, tf.constant(new int[] {k, -1, in}));
  }

  /** The group's product {@code x @ [A_1 | .. | A_G]} per member, {@code [K, B*T, G*R]}, built once per input. */
  private SharedProduct shared(Ops tf, Operand<TFloat32> x, List<Entry> group) {
    if (shared == null || shared.x != x) {
      List<Operand<TFloat32>> as = new ArrayList<>();
      group.forEach(g -> as.add(g.readA));
      Operand<TFloat32> a = as.size() == 1 ? as.get(0) : tf.concat(as, tf.constant(2)); // [K, in, G*R]
      shared = new SharedProduct(x, Layers.batchMatMul(tf, byMember(tf, x, group.get(0).module.in()), a, false), group.size());
    }
    return shared;
  }

  /**
   * {@code [K, 1, 1, K, 1]}: {@code scaling} where the member (first axis) owns the column block (fourth axis),
   * else 0. Times a product {@code [K, B*T, G, 1, R]} it spreads each member's R columns into its own block of
   * {@code K*R}.
   */
  private Operand<TFloat32> memberMask(Ops tf) {
    if (mask == null) {
      float[] m = new float[k * k];
      for (int i = 0; i < k; i++) {
        m[i * k + i] = (float) lora.scaling();
      }
      mask = tf.constant(org.tensorflow.ndarray.Shape.of(k, 1, 1, k, 1), org.tensorflow.ndarray.buffer.DataBuffers.of(m));
    }
    return mask;
  }

  /** Position of a module in checkpoint order: its dropout stream. */
  private int moduleIndex(Entry e) {
    return new ArrayList<>(entries.keySet()).indexOf(e.module.module());
  }

  /**
   * Inverted dropout: {@code x * (u >= rate) / (1 - rate)} with {@code u ~ U[0, 1)} from {@code
   * StatelessRandomUniform} seeded by {@code [seed * 1000003 + module, key]}: no state, the same masks for the
   * same key.
   */
  private Operand<TFloat32> dropout(Ops tf, Operand<TFloat32> x, int module) {
    Operand<TInt64> seeds =
        tf.stack(List.of(tf.constant(seed * 1_000_003L + module), dropoutKey)); // [2]
    Operand<TFloat32> u = tf.random.statelessRandomUniform(tf.shape(x), seeds, TFloat32.class); // [rows, in]
    Operand<TFloat32> keep =
        tf.dtypes.cast(tf.math.greaterEqual(u, dropoutRate), TFloat32.class); // [rows, in]
    Operand<TFloat32> scale = tf.math.div(tf.constant(1f), tf.math.sub(tf.constant(1f), dropoutRate)); // []
    return tf.math.mul(x, tf.math.mul(keep, scale));
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
    entries.values().forEach(e -> out.add(e.module));
    return Collections.unmodifiableList(out);
  }

  /** Names of the adapter variables ({@code lora_A}, {@code lora_B} per module), in order. */
  public List<String> variableNames() {
    List<String> out = new ArrayList<>();
    for (String m : entries.keySet()) {
      out.add(m + A);
      out.add(m + B);
    }
    return out;
  }

  /** The adapter variables, in the order of {@link #variableNames()}. */
  public List<Variable<TFloat32>> variables() {
    List<Variable<TFloat32>> out = new ArrayList<>();
    entries
        .values()
        .forEach(
            e -> {
              out.add(e.a);
              out.add(e.b);
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
    for (Entry e : entries.values()) {
      Module m = e.module;
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
