package dev.rewardensemble.model;

import dev.rewardensemble.config.Gpt2Config;
import java.util.List;
import java.util.Map;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.family.TFloating;

/**
 * GPT-2 trunk, read top to bottom: token + learned position embeddings, {@code n_layer} pre-norm
 * blocks (LayerNorm, fused {@code c_attn} attention, LayerNorm, {@code gelu_new} MLP), final {@code
 * ln_f}. Weights are Conv1D {@code [in, out]} and named as in Hugging Face checkpoints ({@code
 * transformer.h.0.attn.c_attn.weight}, ...).
 *
 * <p>One {@link #forward} serves scoring, training and generation, as {@link Llama#forward} does.
 */
public final class Gpt2 {
  private Gpt2() {}

  /** Checkpoint key to shape of every trunk parameter ({@link Gpt2Config#parameterShapes}). */
  public static Map<String, long[]> parameterShapes(Gpt2Config c) {
    return c.parameterShapes();
  }

  /** Modules a LoRA adapter may target in GPT-2 (PEFT names). */
  public static final java.util.List<String> LORA_TARGETS = Gpt2Config.LORA_TARGETS;

  /**
   * The forward ({@link Family#forward}): the trunk's final hidden rows, after {@code ln_f}.
   *
   * @param ids {@code [B, T]} token ids (the new tokens only, with a cache)
   * @param members null, or where the trunk forks into ensemble members
   * @param cache null, or the key/value cache the attention layers write and read
   * @return rows {@code [B*T, H]}, or {@code [K*B*T, H]} when forked
   */
  public static Operand<TFloat32> forward(
      BuildContext cx,
      Gpt2Config c,
      Weights w,
      Operand<TInt32> ids,
      Attention.Geometry g,
      Projector proj,
      Members members,
      KvCache cache) {
    Ops tf = cx.tf();
    double eps = c.layerNormEpsilon();

    Operand<TInt32> flatIds = tf.reshape(ids, tf.constant(new int[] {-1})); // [B*T]
    Operand<TInt32> flatPos = tf.reshape(g.positions(), tf.constant(new int[] {-1})); // [B*T]
    Operand<TFloat32> x =
        tf.math.add(
            w.rows(tf, "transformer.wte.weight", flatIds),
            w.rows(tf, "transformer.wpe.weight", flatPos)); // [B*T, H]

    // From the fork block's attention on, B*T stands for K*B*T.
    Attention.Geometry gk = members != null ? members.geometry() : null;
    for (int i = 0; i < c.nLayer(); i++) {
      int layer = i;
      // The fork block's attention input is the same rows for every member: c_attn takes them once.
      Members fork = members != null && i == members.fromLayer() ? members : null;
      Attention.Geometry gi = members != null && i >= members.fromLayer() ? gk : g;
      x =
          cx.blocks()
              .run(
                  cx,
                  i,
                  x,
                  (bcx, xi) ->
                      // bfloat16 weights widen block by block
                      block(
                          bcx,
                          c,
                          w.after(xi),
                          xi,
                          layer,
                          gi,
                          proj,
                          fork,
                          cache,
                          Layers.activations(bcx)));
    }
    if (members != null && members.fromLayer() >= c.nLayer()) {
      x = members.expand(tf, x); // [K*B*T, H]
    }
    Weights wf = w.after(x);
    return Layers.layerNorm(
        tf, x, wf.get("transformer.ln_f.weight"), wf.get("transformer.ln_f.bias"), eps);
  }

  /**
   * Block {@code i} over its input rows {@code x [B*T, H]} ({@code [K*B*T, H]} out of the fork
   * block {@code fork}); {@code g} is the geometry of its attention; {@code act} the dtype of its
   * activations ({@link Layers#activations}).
   */
  private static <T extends TFloating> Operand<TFloat32> block(
      BuildContext cx,
      Gpt2Config c,
      Weights w,
      Operand<TFloat32> x,
      int i,
      Attention.Geometry g,
      Projector proj,
      Members fork,
      KvCache cache,
      Class<T> act) {
    Ops tf = cx.tf();
    int h = c.nEmbd();
    int n = c.nHead();
    int d = c.headDim();
    double eps = c.layerNormEpsilon();
    Attention.Options attention = Attention.Options.standard(d); // every layer alike
    String pre = "transformer.h." + i + ".";
    // Attention.
    Operand<T> a =
        Layers.cast(
            tf,
            Layers.layerNorm(tf, x, w.get(pre + "ln_1.weight"), w.get(pre + "ln_1.bias"), eps),
            act);
    Operand<T> qkv = project(cx, proj, pre + "attn.c_attn", i, a, w, fork); // [B*T, 3H]
    // One Split, not three strided slices: the same columns, and a backward of one Concat (the
    // slices' StridedSliceGrad took 3-5% of a bench-gpt2 training step's op time).
    List<org.tensorflow.Output<T>> thirds = tf.split(tf.constant(-1), qkv, 3L).output(); // [B*T, H]
    Operand<T> q = Attention.splitHeads(tf, thirds.get(0), g, n, d); // [B, T, N, D]
    Operand<T> k = Attention.splitHeads(tf, thirds.get(1), g, n, d); // [B, T, N, D]
    Operand<T> v = Attention.splitHeads(tf, thirds.get(2), g, n, d); // [B, T, N, D]
    Operand<T> ctx = Attention.attend(tf, q, k, v, g, n, n, d, attention, cache, i); // [B*T, H]
    Operand<T> o = project(cx, proj, pre + "attn.c_proj", i, ctx, w, null);
    x = DecoderBlocks.residual(tf, x, o, fork, h);
    // MLP.
    Operand<T> m =
        Layers.cast(
            tf,
            Layers.layerNorm(tf, x, w.get(pre + "ln_2.weight"), w.get(pre + "ln_2.bias"), eps),
            act);
    Operand<T> fc =
        activation(
            tf, c.activation(), project(cx, proj, pre + "mlp.c_fc", i, m, w, null)); // [B*T, F]
    return tf.math.add(
        x, Layers.cast(tf, project(cx, proj, pre + "mlp.c_proj", i, fc, w, null), TFloat32.class));
  }

  /**
   * {@code x @ W + b} of the Conv1D module {@code module}, through the projector, in {@code x}'s
   * dtype; {@code fork}: not null when {@code x} is the batch's rows once, shared by {@code fork}'s
   * members.
   */
  private static <T extends TFloating> Operand<T> project(
      BuildContext cx,
      Projector proj,
      String module,
      int layer,
      Operand<T> x,
      Weights w,
      Members fork) {
    Operand<T> y =
        proj.project(
                cx,
                layer,
                List.of(module),
                x,
                List.of(w.get(module + ".weight")),
                Projector.Layout.CONV1D,
                fork)
            .get(0);
    return cx.tf().nn.biasAdd(y, Layers.cast(cx.tf(), w.get(module + ".bias"), y.type()));
  }

  private static <T extends TFloating> Operand<T> activation(Ops tf, String name, Operand<T> x) {
    return switch (name) {
      case "gelu_new" -> Layers.geluNew(tf, x);
      case "gelu" -> Layers.gelu(tf, x);
      case "relu" -> tf.nn.relu(x);
      default ->
          throw new IllegalArgumentException("activation_function '" + name + "' is not supported");
    };
  }
}
