package dev.rewardensemble.model;

import dev.rewardensemble.config.Qwen3Config;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.family.TFloating;

/**
 * Qwen3 trunk, read top to bottom: token embeddings, {@code num_hidden_layers} pre-norm blocks
 * (RMSNorm, grouped-query attention whose queries and keys are RMS-normed per head over {@code
 * head_dim} by {@code q_norm} / {@code k_norm} before the rotary embedding, optionally through a
 * sliding window, RMSNorm, SwiGLU MLP), final RMSNorm. No biases. Weights are torch Linear {@code
 * [out, in]} named as in Hugging Face checkpoints ({@code model.layers.0.self_attn.q_norm.weight},
 * ...); {@code head_dim} is explicit (not hidden / heads).
 *
 * <p>One {@link #forward} serves scoring, training and generation, as {@link Llama#forward} does.
 */
public final class Qwen3 {
  private Qwen3() {}

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
      Qwen3Config c,
      Weights w,
      Operand<TInt32> ids,
      Attention.Geometry g,
      Projector proj,
      Members members,
      KvCache cache) {
    return DecoderBlocks.rmsNormDecoder(
        cx,
        c,
        w,
        ids,
        g,
        members,
        (bcx, wi, xi, layer, gi, cs, fork) ->
            block(bcx, c, wi, xi, layer, gi, cs, proj, fork, cache, Layers.activations(bcx)));
  }

  /**
   * Block {@code i} over its input rows {@code x [B*T, H]} ({@code [K*B*T, H]} out of the fork
   * block {@code fork}); {@code g} and {@code cosSin} are the geometry and rotary tables of its
   * attention; {@code act} the dtype of its activations ({@link Layers#activations}).
   */
  private static <T extends TFloating> Operand<TFloat32> block(
      BuildContext cx,
      Qwen3Config c,
      Weights w,
      Operand<TFloat32> x,
      int i,
      Attention.Geometry g,
      Operand<TFloat32>[] cosSin,
      Projector proj,
      Members fork,
      KvCache cache,
      Class<T> act) {
    Ops tf = cx.tf();
    int n = c.numHeads();
    int nKv = c.numKeyValueHeads();
    int d = c.headDim();
    double eps = c.rmsNormEps();
    String pre = "model.layers." + i + ".";
    // Attention.
    Operand<T> a =
        Layers.cast(tf, Layers.rmsNorm(tf, x, w.get(pre + "input_layernorm.weight"), eps), act);
    List<Operand<T>> qkv =
        DecoderBlocks.project(
            cx,
            proj,
            i,
            a,
            w,
            fork,
            pre + "self_attn.q_proj",
            pre + "self_attn.k_proj",
            pre + "self_attn.v_proj"); // [B*T, N*D], [B*T, Nkv*D], [B*T, Nkv*D]
    // q_norm / k_norm: RMSNorm over head_dim, one weight [D] shared by every head, before rope.
    Operand<T> q4 =
        Layers.rmsNormOf(
            tf,
            Attention.splitHeads(tf, qkv.get(0), g, n, d),
            w.get(pre + "self_attn.q_norm.weight"),
            eps); // [B, T, N, D]
    Operand<T> k4 =
        Layers.rmsNormOf(
            tf,
            Attention.splitHeads(tf, qkv.get(1), g, nKv, d),
            w.get(pre + "self_attn.k_norm.weight"),
            eps); // [B, T, Nkv, D]
    Attention.Options attention =
        Attention.Options.standard(d).withWindow(c.attentionWindow(i)); // use_sliding_window
    Operand<T> ctx =
        DecoderBlocks.rotaryAttention(
            tf,
            q4,
            k4,
            Attention.splitHeads(tf, qkv.get(2), g, nKv, d),
            g,
            cosSin,
            n,
            nKv,
            d,
            attention,
            cache,
            i); // [B*T, N*D]
    Operand<T> o =
        DecoderBlocks.project(cx, proj, i, ctx, w, null, pre + "self_attn.o_proj").get(0);
    x = DecoderBlocks.residual(tf, x, o, fork, c.hiddenSize());
    // SwiGLU MLP.
    Operand<T> m =
        Layers.cast(
            tf, Layers.rmsNorm(tf, x, w.get(pre + "post_attention_layernorm.weight"), eps), act);
    return tf.math.add(
        x, Layers.cast(tf, DecoderBlocks.swiGlu(cx, proj, i, m, w, pre), TFloat32.class));
  }
}
