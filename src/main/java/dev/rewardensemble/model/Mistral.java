package dev.rewardensemble.model;

import dev.rewardensemble.config.MistralConfig;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * Mistral trunk, read top to bottom: token embeddings, {@code num_hidden_layers} pre-norm blocks
 * (RMSNorm, grouped-query attention with rotary embeddings through the {@code sliding_window}, a
 * query seeing itself and the previous {@code window - 1} positions as transformers' mask does,
 * RMSNorm, SwiGLU MLP), final RMSNorm. No biases. Weights are torch Linear {@code [out, in]} named
 * as in Hugging Face checkpoints ({@code model.layers.0.self_attn.q_proj.weight}, ...).
 *
 * <p>One {@link #forward} serves scoring, training and generation, as {@link Llama#forward} does;
 * with a {@link KvCache} the window counts cache slots, so decoding past the window attends to the
 * same keys as the whole sequence at once.
 */
public final class Mistral {
  private Mistral() {}

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
      MistralConfig c,
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
    float[] invFreq = c.inverseFrequencies();
    Operand<TFloat32>[] cosSin = Attention.ropeTables(tf, g, invFreq); // [B, T, 1, D] each

    Operand<TFloat32> x = DecoderBlocks.embed(tf, w, ids); // [B*T, H]

    for (int i = 0; i < c.numLayers(); i++) {
      w = w.after(x); // bfloat16 weights widen block by block
      Members fork = members != null && i == members.fromLayer() ? members : null;
      String pre = "model.layers." + i + ".";
      // Attention through the sliding window.
      Operand<TFloat32> a = Layers.rmsNorm(tf, x, w.get(pre + "input_layernorm.weight"), eps);
      List<Operand<TFloat32>> qkv =
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
      if (fork != null) { // from here on B*T stands for K*B*T
        g = members.geometry();
        cosSin = Attention.ropeTables(tf, g, invFreq); // [K*B, T, 1, D] each
      }
      Attention.Options attention = Attention.Options.standard(d).withWindow(c.attentionWindow(i));
      Operand<TFloat32> ctx =
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
              attention,
              cache,
              i); // [B*T, N*D]
      Operand<TFloat32> o =
          DecoderBlocks.project(cx, proj, i, ctx, w, null, pre + "self_attn.o_proj").get(0);
      x = DecoderBlocks.residual(tf, x, o, fork, c.hiddenSize());
      // SwiGLU MLP.
      Operand<TFloat32> m =
          Layers.rmsNorm(tf, x, w.get(pre + "post_attention_layernorm.weight"), eps);
      x = tf.math.add(x, DecoderBlocks.swiGlu(cx, proj, i, m, w, pre));
    }
    if (members != null && members.fromLayer() >= c.numLayers()) {
      x = members.expand(tf, x); // [K*B*T, H]
    }
    return Layers.rmsNorm(tf, x, w.get("model.norm.weight"), eps);
  }
}
