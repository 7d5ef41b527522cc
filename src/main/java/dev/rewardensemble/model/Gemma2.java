package dev.rewardensemble.model;

import dev.rewardensemble.config.Gemma2Config;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.family.TFloating;

/**
 * Gemma 2 trunk, read top to bottom as transformers' {@code modeling_gemma2}: token embeddings
 * multiplied by {@code sqrt(hidden_size)} (rounded to float32), {@code num_hidden_layers} sandwich
 * blocks, final norm. Every norm is Gemma's RMSNorm, {@code x * rsqrt(mean(x^2) + eps) * (1 +
 * weight)}. A block is
 *
 * <pre>
 *   x = x + post_attention_layernorm(attn(input_layernorm(x)))
 *   x = x + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x)))
 * </pre>
 *
 * with grouped-query attention whose scores are scaled by {@code query_pre_attn_scalar^-0.5},
 * soft-capped before the mask as the checkpoint's attention implementation does ({@link
 * Gemma2Config#attentionSoftcap}: {@code attn_logit_softcapping} under {@code eager} and flash
 * attention, none under transformers' default {@code sdpa}) and restricted to a sliding window on
 * the layers {@link Gemma2Config#attentionWindow} says, and the GeGLU MLP {@code
 * down(gelu_tanh(gate(x)) * up(x))}. No biases. The LM head is the tied embedding, its logits
 * soft-capped by {@link LmHead} ({@code final_logit_softcapping}); reward heads read the rows
 * unchanged.
 *
 * <p>Same contract as {@link Llama#forward}: one forward for scoring, training (LoRA {@link
 * Projector} with PEFT's module names {@code q_proj} ... {@code down_proj}, ensemble {@link
 * Members}) and generation over a {@link KvCache}.
 */
public final class Gemma2 {
  private Gemma2() {}

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
      Gemma2Config c,
      Weights w,
      Operand<TInt32> ids,
      Attention.Geometry g,
      Projector proj,
      Members members,
      KvCache cache) {
    Ops tf = cx.tf();
    Operand<TFloat32> x =
        tf.math.mul(
            DecoderBlocks.embed(tf, w, ids),
            tf.constant((float) Math.sqrt(c.hiddenSize()))); // [B*T, H]
    x =
        DecoderBlocks.blocks(
            cx,
            c.numLayers(),
            c.inverseFrequencies(),
            w,
            x,
            g,
            members,
            (bcx, wi, xi, layer, gi, cs, fork) ->
                block(bcx, c, wi, xi, layer, gi, cs, proj, fork, cache, Layers.activations(bcx)));
    return norm(tf, x, w.after(x).get("model.norm.weight"), c.rmsNormEps());
  }

  /**
   * Block {@code i} over its input rows {@code x [B*T, H]} ({@code [K*B*T, H]} out of the fork
   * block {@code fork}); {@code g} and {@code cosSin} are the geometry and rotary tables of its
   * attention; {@code act} the dtype of its activations ({@link Layers#activations}).
   */
  private static <T extends TFloating> Operand<TFloat32> block(
      BuildContext cx,
      Gemma2Config c,
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
    Attention.Options full =
        new Attention.Options(Math.pow(c.queryPreAttnScalar(), -0.5), c.attentionSoftcap(), 0);
    String pre = "model.layers." + i + ".";
    // Attention, normed before and after.
    Operand<T> a = Layers.cast(tf, norm(tf, x, w.get(pre + "input_layernorm.weight"), eps), act);
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
            pre + "self_attn.v_proj");
    Operand<T> ctx =
        DecoderBlocks.rotaryAttention(
            tf,
            Attention.splitHeads(tf, qkv.get(0), g, n, d),
            Attention.splitHeads(tf, qkv.get(1), g, nKv, d),
            Attention.splitHeads(tf, qkv.get(2), g, nKv, d),
            g,
            cosSin,
            n,
            nKv,
            d,
            full.withWindow(c.attentionWindow(i)),
            cache,
            i); // [B*T, N*D]
    Operand<T> o =
        DecoderBlocks.project(cx, proj, i, ctx, w, null, pre + "self_attn.o_proj").get(0);
    Operand<TFloat32> normed =
        norm(
            tf,
            Layers.cast(tf, o, TFloat32.class),
            w.get(pre + "post_attention_layernorm.weight"),
            eps);
    x = DecoderBlocks.residual(tf, x, normed, fork, c.hiddenSize());
    // GeGLU MLP, normed before and after.
    Operand<T> m =
        Layers.cast(tf, norm(tf, x, w.get(pre + "pre_feedforward_layernorm.weight"), eps), act);
    List<Operand<T>> gateUp =
        DecoderBlocks.project(cx, proj, i, m, w, null, pre + "mlp.gate_proj", pre + "mlp.up_proj");
    Operand<T> gelu = tf.math.mul(Layers.geluNew(tf, gateUp.get(0)), gateUp.get(1));
    Operand<T> down =
        DecoderBlocks.project(cx, proj, i, gelu, w, null, pre + "mlp.down_proj").get(0);
    return tf.math.add(
        x,
        norm(
            tf,
            Layers.cast(tf, down, TFloat32.class),
            w.get(pre + "post_feedforward_layernorm.weight"),
            eps));
  }

  /** Gemma's RMSNorm: in float32, {@code x * rsqrt(mean(x^2) + eps) * (1 + weight)}. */
  static Operand<TFloat32> norm(Ops tf, Operand<TFloat32> x, Operand<TFloat32> weight, double eps) {
    return Layers.rmsNorm(tf, x, tf.math.add(tf.constant(1f), weight), eps);
  }
}
