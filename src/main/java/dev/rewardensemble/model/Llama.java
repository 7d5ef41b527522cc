package dev.rewardensemble.model;

import dev.rewardensemble.config.DecoderConfig;
import dev.rewardensemble.config.LlamaConfig;
import java.util.List;
import java.util.Map;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.family.TFloating;

/**
 * Llama trunk, read top to bottom: token embeddings, {@code num_hidden_layers} pre-norm blocks
 * (RMSNorm, grouped-query attention with rotary embeddings, RMSNorm, SwiGLU MLP), final RMSNorm. No
 * biases. Rotary frequencies as {@code rope_scaling} says (Llama 3's {@code llama3}, {@code
 * linear}). Weights are torch Linear {@code [out, in]} and named as in Hugging Face checkpoints
 * ({@code model.layers.0.self_attn.q_proj.weight}, ...).
 *
 * <p>Mistral is this architecture with a sliding window: its config's per-layer {@link
 * DecoderConfig#attentionWindow} (0 for Llama), a query seeing itself and the previous {@code
 * window - 1} positions as transformers' mask does; with a {@link KvCache} the window counts cache
 * slots, so decoding past the window attends to the same keys as the whole sequence at once. So
 * both register this forward.
 *
 * <p>One {@link #forward} serves scoring, training (through a LoRA {@link Projector} and ensemble
 * {@link Members}) and generation (prefill and decode steps over a {@link KvCache}); the LM head
 * ({@link LmHead}) and reward heads are applied to its rows by the caller. A new family is one file
 * like this one (shared pieces in {@link DecoderBlocks}), registered in {@link Transformers}.
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
      DecoderConfig c,
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
      DecoderConfig c,
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
            Attention.Options.standard(d).withWindow(c.attentionWindow(i)),
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
