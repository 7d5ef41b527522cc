package dev.rewardensemble.model;

import dev.rewardensemble.config.LlamaConfig;
import java.util.List;
import java.util.Map;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * Llama trunk, read top to bottom: token embeddings, {@code num_hidden_layers} pre-norm blocks
 * (RMSNorm, grouped-query attention with rotary embeddings, RMSNorm, SwiGLU MLP), final RMSNorm. No
 * biases. Weights are torch Linear {@code [out, in]} and named as in Hugging Face checkpoints
 * ({@code model.layers.0.self_attn.q_proj.weight}, ...).
 *
 * <p>One {@link #forward} serves scoring, training (through a LoRA {@link Projector} and ensemble
 * {@link Members}) and generation (prefill and decode steps over a {@link KvCache}); the LM head
 * ({@link LmHead}) and reward heads are applied to its rows by the caller. A new family is a copy
 * of this file with its own blocks, registered in {@link Transformers}.
 */
public final class Llama {
  private Llama() {}

  /** Modules a LoRA adapter may target in Llama (PEFT names). */
  public static final java.util.List<String> LORA_TARGETS = LlamaConfig.LORA_TARGETS;

  /** Checkpoint key to shape of every trunk parameter ({@link LlamaConfig#parameterShapes}). */
  public static Map<String, long[]> parameterShapes(LlamaConfig c) {
    return c.parameterShapes();
  }

  /**
   * The forward ({@link Family#forward}): the trunk's final hidden rows, after the final norm.
   *
   * @param ids {@code [B, T]} token ids (the new tokens only, with a cache)
   * @param members null, or where the trunk forks into ensemble members
   * @param cache null, or the key/value cache the attention layers write and read
   * @return rows {@code [B*T, H]}, or {@code [K*B*T, H]} when forked
   */
  public static Operand<TFloat32> forward(
      BuildContext cx,
      LlamaConfig c,
      Weights w,
      Operand<TInt32> ids,
      Attention.Geometry g,
      Projector proj,
      Members members,
      KvCache cache) {
    Ops tf = cx.tf();
    int n = c.numHeads();
    int nKv = c.numKeyValueHeads();
    int d = c.headDim();
    double eps = c.rmsNormEps();
    float[] invFreq = Attention.inverseFrequencies(d, c.ropeTheta());
    Attention.Options attention = Attention.Options.standard(d); // every layer alike
    Operand<TFloat32>[] cosSin = Attention.ropeTables(tf, g, invFreq); // [B, T, 1, D] each

    Operand<TInt32> flatIds = tf.reshape(ids, tf.constant(new int[] {-1})); // [B*T]
    Operand<TFloat32> x =
        tf.gather(w.get("model.embed_tokens.weight"), flatIds, tf.constant(0)); // [B*T, H]

    for (int i = 0; i < c.numLayers(); i++) {
      // The fork block's attention inputs are the same rows for every member: its projections take
      // them once.
      Members fork = members != null && i == members.fromLayer() ? members : null;
      String pre = "model.layers." + i + ".";
      // Attention.
      Operand<TFloat32> a = Layers.rmsNorm(tf, x, w.get(pre + "input_layernorm.weight"), eps);
      List<Operand<TFloat32>> qkv =
          project(
              cx,
              proj,
              i,
              a,
              w,
              fork,
              pre + "self_attn.q_proj",
              pre + "self_attn.k_proj",
              pre + "self_attn.v_proj");
      Operand<TFloat32> q = qkv.get(0); // [B*T, N*D]
      Operand<TFloat32> k = qkv.get(1); // [B*T, Nkv*D]
      Operand<TFloat32> v = qkv.get(2); // [B*T, Nkv*D]
      if (fork != null) { // from here on B*T stands for K*B*T
        g = members.geometry();
        cosSin = Attention.ropeTables(tf, g, invFreq); // [K*B, T, 1, D] each
      }
      Operand<TFloat32> q4 =
          Attention.rope(
              tf, Attention.splitHeads(tf, q, g, n, d), cosSin[0], cosSin[1], d); // [B, T, N, D]
      Operand<TFloat32> k4 =
          Attention.rope(
              tf,
              Attention.splitHeads(tf, k, g, nKv, d),
              cosSin[0],
              cosSin[1],
              d); // [B, T, Nkv, D]
      Operand<TFloat32> v4 = Attention.splitHeads(tf, v, g, nKv, d); // [B, T, Nkv, D]
      Operand<TFloat32> ctx =
          Attention.attend(tf, q4, k4, v4, g, n, nKv, d, attention, cache, i); // [B*T, N*D]
      Operand<TFloat32> o = project(cx, proj, i, ctx, w, null, pre + "self_attn.o_proj").get(0);
      x = fork != null ? fork.addToEach(tf, x, o, c.hiddenSize()) : tf.math.add(x, o);
      // SwiGLU MLP.
      Operand<TFloat32> m =
          Layers.rmsNorm(tf, x, w.get(pre + "post_attention_layernorm.weight"), eps);
      List<Operand<TFloat32>> gateUp =
          project(cx, proj, i, m, w, null, pre + "mlp.gate_proj", pre + "mlp.up_proj");
      Operand<TFloat32> gate = gateUp.get(0); // [B*T, F]
      Operand<TFloat32> up = gateUp.get(1); // [B*T, F]
      Operand<TFloat32> act = tf.math.mul(Layers.silu(tf, gate), up);
      x = tf.math.add(x, project(cx, proj, i, act, w, null, pre + "mlp.down_proj").get(0));
    }
    if (members != null && members.fromLayer() >= c.numLayers()) {
      x = members.expand(tf, x); // [K*B*T, H]
    }
    return Layers.rmsNorm(tf, x, w.get("model.norm.weight"), eps);
  }

  /**
   * The projections {@code modules} of block {@code layer}, which all read {@code x}; {@code fork}:
   * not null when {@code x} is the batch's rows once, shared by {@code fork}'s members.
   */
  private static List<Operand<TFloat32>> project(
      BuildContext cx,
      Projector proj,
      int layer,
      Operand<TFloat32> x,
      Weights w,
      Members fork,
      String... modules) {
    List<Operand<TFloat32>> weights = new java.util.ArrayList<>();
    for (String module : modules) {
      weights.add(w.get(module + ".weight"));
    }
    return proj.project(cx, layer, List.of(modules), x, weights, Projector.Layout.LINEAR, fork);
  }
}
