package dev.rewardensemble.model;

import dev.rewardensemble.config.DecoderConfig;
import java.util.ArrayList;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.family.TFloating;

/**
 * The pieces the rotary decoder families ({@link Llama}, also Mistral's, {@link Qwen2}, {@link
 * Qwen3}, {@link Gemma2}) share, so that each family's forward reads top to bottom in its own file
 * without repeating them: token embedding, the loop over the blocks (rotary tables, the ensemble
 * fork, the {@link BlockRunner}), the weight products through the {@link Projector}, rotary
 * attention over split heads, and the SwiGLU MLP. Weights are torch Linear {@code [out, in]} named
 * as in Hugging Face checkpoints ({@code model.layers.0.self_attn.q_proj.weight}, ...).
 */
final class DecoderBlocks {
  private DecoderBlocks() {}

  /**
   * One block of a rotary decoder, built by its family: block {@code layer} over rows {@code x}
   * with its weights {@code w} (widened after {@code x}), the geometry {@code g} and rotary tables
   * {@code cosSin} of its attention, and {@code fork} (not null at the fork block only).
   */
  @FunctionalInterface
  interface RotaryBlock {
    Operand<TFloat32> build(
        BuildContext cx,
        Weights w,
        Operand<TFloat32> x,
        int layer,
        Attention.Geometry g,
        Operand<TFloat32>[] cosSin,
        Members fork);
  }

  /**
   * The blocks of a rotary decoder over its embedded rows {@code x [B*T, H]}: rotary tables for the
   * batch and, from the fork block on, for the members ({@code [K*B, T]}); each block run through
   * the context's {@link BlockRunner} (so training may recompute it) with its bfloat16 weights
   * widened block by block; rows expanded to the members when they fork above the last block.
   *
   * @return the last block's rows (before the final norm): {@code [B*T, H]}, or {@code [K*B*T, H]}
   *     when forked
   */
  static Operand<TFloat32> blocks(
      BuildContext cx,
      int numLayers,
      float[] invFreq,
      Weights w,
      Operand<TFloat32> x,
      Attention.Geometry g,
      Members members,
      RotaryBlock block) {
    Ops tf = cx.tf();
    Operand<TFloat32>[] cosSin = Attention.ropeTables(tf, g, invFreq); // [B, T, 1, D] each
    // From the fork block's attention on, B*T stands for K*B*T.
    Attention.Geometry gk = members != null ? members.geometry() : null;
    Operand<TFloat32>[] cosSinK =
        members != null && members.fromLayer() < numLayers
            ? Attention.ropeTables(tf, gk, invFreq) // [K*B, T, 1, D] each
            : null;
    for (int i = 0; i < numLayers; i++) {
      int layer = i;
      boolean forked = members != null && i >= members.fromLayer();
      // The fork block's attention inputs are the same rows for every member: its projections take
      // them once.
      Members fork = members != null && i == members.fromLayer() ? members : null;
      Attention.Geometry gi = forked ? gk : g;
      Operand<TFloat32>[] cs = forked ? cosSinK : cosSin;
      x =
          cx.blocks()
              .run(cx, i, x, (bcx, xi) -> block.build(bcx, w.after(xi), xi, layer, gi, cs, fork));
    }
    if (members != null && members.fromLayer() >= numLayers) {
      x = members.expand(tf, x); // [K*B*T, H]
    }
    return x;
  }

  /**
   * The forward of a Llama-style decoder (Llama, Mistral, Qwen2, Qwen3): token embedding, the
   * blocks ({@link #blocks}) and the final RMSNorm ({@code model.norm}). A family passes its own
   * {@code block}.
   *
   * @return rows {@code [B*T, H]}, or {@code [K*B*T, H]} when forked
   */
  static Operand<TFloat32> rmsNormDecoder(
      BuildContext cx,
      DecoderConfig c,
      Weights w,
      Operand<TInt32> ids,
      Attention.Geometry g,
      Members members,
      RotaryBlock block) {
    Operand<TFloat32> x = embed(cx.tf(), w, ids); // [B*T, H]
    // inverseFrequencies: rope_scaling (llama3, linear) applied
    x = blocks(cx, c.numLayers(), c.inverseFrequencies(), w, x, g, members, block);
    return Layers.rmsNorm(cx.tf(), x, w.after(x).get("model.norm.weight"), c.rmsNormEps());
  }

  /** {@code model.embed_tokens} rows of {@code ids [B, T]}: {@code [B*T, H]}. */
  static Operand<TFloat32> embed(Ops tf, Weights w, Operand<TInt32> ids) {
    Operand<TInt32> flatIds = tf.reshape(ids, tf.constant(new int[] {-1})); // [B*T]
    return w.rows(tf, "model.embed_tokens.weight", flatIds); // [B*T, H]
  }

  /**
   * The Linear projections {@code modules} of block {@code layer}, which all read {@code x},
   * through {@code proj} (no bias); {@code fork}: not null when {@code x} is the batch's rows once,
   * shared by {@code fork}'s members.
   */
  static <T extends TFloating> List<Operand<T>> project(
      BuildContext cx,
      Projector proj,
      int layer,
      Operand<T> x,
      Weights w,
      Members fork,
      String... modules) {
    List<Operand<TFloat32>> weights = new ArrayList<>();
    for (String module : modules) {
      weights.add(w.get(module + ".weight"));
    }
    return proj.project(cx, layer, List.of(modules), x, weights, Projector.Layout.LINEAR, fork);
  }

  /**
   * {@code rows + bias} of the Linear module {@code module} ({@code module.bias [out]}), in the
   * rows' dtype.
   */
  static <T extends TFloating> Operand<T> withBias(
      Ops tf, Operand<T> rows, Weights w, String module) {
    return tf.nn.biasAdd(rows, Layers.cast(tf, w.get(module + ".bias"), rows.type()));
  }

  /**
   * Grouped-query attention with rotary embeddings: rotates {@code q4} and {@code k4} by {@code
   * cosSin} ({@link Attention#ropeTables}) and attends ({@link Attention#attend}), writing and
   * reading {@code cache} when given.
   *
   * @param q4 {@code [B, T, N, D]} queries (after any per-head norm)
   * @param k4 {@code [B, T, Nkv, D]} keys (after any per-head norm)
   * @param v4 {@code [B, T, Nkv, D]} values
   * @return {@code [B*T, N*D]}, in the inputs' dtype
   */
  static <T extends TFloating> Operand<T> rotaryAttention(
      Ops tf,
      Operand<T> q4,
      Operand<T> k4,
      Operand<T> v4,
      Attention.Geometry g,
      Operand<TFloat32>[] cosSin,
      int n,
      int nKv,
      int d,
      Attention.Options options,
      KvCache cache,
      int layer) {
    Operand<T> q = Attention.rope(tf, q4, cosSin[0], cosSin[1], d); // [B, T, N, D]
    Operand<T> k = Attention.rope(tf, k4, cosSin[0], cosSin[1], d); // [B, T, Nkv, D]
    return Attention.attend(tf, q, k, v4, g, n, nKv, d, options, cache, layer); // [B*T, N*D]
  }

  /**
   * The SwiGLU MLP of block {@code layer} over its normed input {@code m [B*T, H]}: {@code
   * down_proj(silu(gate_proj(m)) * up_proj(m))}, every product through {@code proj}, in {@code m}'s
   * dtype.
   */
  static <T extends TFloating> Operand<T> swiGlu(
      BuildContext cx, Projector proj, int layer, Operand<T> m, Weights w, String pre) {
    Ops tf = cx.tf();
    List<Operand<T>> gateUp =
        project(cx, proj, layer, m, w, null, pre + "mlp.gate_proj", pre + "mlp.up_proj");
    Operand<T> act = tf.math.mul(Layers.silu(tf, gateUp.get(0)), gateUp.get(1)); // [B*T, F]
    return project(cx, proj, layer, act, w, null, pre + "mlp.down_proj").get(0); // [B*T, H]
  }

  /**
   * The residual stream after the attention output {@code o}: {@code x + o}, or, in the fork block,
   * {@code x} (the batch's rows once) added to every member's {@code o}. The stream is float32 in
   * every precision ({@code o} is widened to it).
   */
  static Operand<TFloat32> residual(
      Ops tf, Operand<TFloat32> x, Operand<? extends TFloating> o, Members fork, int width) {
    Operand<TFloat32> o32 = Layers.cast(tf, o, TFloat32.class);
    return fork != null ? fork.addToEach(tf, x, o32, width) : tf.math.add(x, o32);
  }
}
