package dev.rewardensemble.rl;

import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.model.Attention;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.Layers;
import dev.rewardensemble.model.LmHead;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * A Llama step with a key/value cache, read top to bottom like {@link
 * dev.rewardensemble.model.Llama#trunk}: rotary embeddings at each token's absolute position (from
 * the geometry, so left padding does not shift them), grouped-query attention over the cached and
 * new keys, SwiGLU MLP, final norm, language-model head on the last position.
 */
final class LlamaDecoder implements CausalDecoder {
  private final LlamaConfig c;

  LlamaDecoder(LlamaConfig c) {
    this.c = c;
  }

  @Override
  public int cacheSize() {
    return 2 * c.numLayers();
  }

  @Override
  public Step step(
      BuildContext cx,
      Function<String, Operand<TFloat32>> w,
      Operand<TInt32> ids,
      Attention.Geometry g,
      List<Operand<TFloat32>> past) {
    Ops tf = cx.tf();
    int n = c.numHeads();
    int nKv = c.numKeyValueHeads();
    int d = c.headDim();
    double eps = c.rmsNormEps();
    Operand<TFloat32>[] cosSin = Attention.ropeTables(tf, g, d, c.ropeTheta()); // [B, S, 1, D] each

    Operand<TInt32> flatIds = tf.reshape(ids, tf.constant(new int[] {-1})); // [B*S]
    Operand<TFloat32> x =
        tf.gather(w.apply("model.embed_tokens.weight"), flatIds, tf.constant(0)); // [B*S, H]
    List<Operand<TFloat32>> cache = new ArrayList<>(cacheSize());

    for (int i = 0; i < c.numLayers(); i++) {
      String pre = "model.layers." + i + ".";
      // Attention over the cached and the new positions.
      Operand<TFloat32> a = Layers.rmsNorm(tf, x, w.apply(pre + "input_layernorm.weight"), eps);
      Operand<TFloat32> q =
          Layers.linear(cx, a, w.apply(pre + "self_attn.q_proj.weight")); // [B*S, N*D]
      Operand<TFloat32> k =
          Layers.linear(cx, a, w.apply(pre + "self_attn.k_proj.weight")); // [B*S, Nkv*D]
      Operand<TFloat32> v =
          Layers.linear(cx, a, w.apply(pre + "self_attn.v_proj.weight")); // [B*S, Nkv*D]
      Operand<TFloat32> q4 =
          Attention.rope(
              tf, Attention.splitHeads(tf, q, g, n, d), cosSin[0], cosSin[1], d); // [B, S, N, D]
      Operand<TFloat32> k4 =
          Attention.rope(
              tf,
              Attention.splitHeads(tf, k, g, nKv, d),
              cosSin[0],
              cosSin[1],
              d); // [B, S, Nkv, D]
      Operand<TFloat32> v4 = Attention.splitHeads(tf, v, g, nKv, d); // [B, S, Nkv, D]
      Operand<TFloat32> kh =
          CausalDecoder.extend(tf, past == null ? null : past.get(2 * i), k4); // [B, Nkv, Tk+S, D]
      Operand<TFloat32> vh =
          CausalDecoder.extend(
              tf, past == null ? null : past.get(2 * i + 1), v4); // [B, Nkv, Tk+S, D]
      cache.add(kh);
      cache.add(vh);
      Operand<TFloat32> ctx =
          Attention.attendHeadsFirst(tf, q4, kh, vh, g, n, nKv, d); // [B*S, N*D]
      x = tf.math.add(x, Layers.linear(cx, ctx, w.apply(pre + "self_attn.o_proj.weight")));
      // SwiGLU MLP.
      Operand<TFloat32> m =
          Layers.rmsNorm(tf, x, w.apply(pre + "post_attention_layernorm.weight"), eps);
      Operand<TFloat32> gate =
          Layers.linear(cx, m, w.apply(pre + "mlp.gate_proj.weight")); // [B*S, F]
      Operand<TFloat32> up = Layers.linear(cx, m, w.apply(pre + "mlp.up_proj.weight")); // [B*S, F]
      Operand<TFloat32> act = tf.math.mul(Layers.silu(tf, gate), up);
      x = tf.math.add(x, Layers.linear(cx, act, w.apply(pre + "mlp.down_proj.weight")));
    }
    Operand<TFloat32> last =
        CausalDecoder.lastRow(
            tf,
            Layers.rmsNorm(tf, x, w.apply("model.norm.weight"), eps),
            g,
            c.hiddenSize()); // [B, H]
    return new Step(Layers.linear(cx, last, w.apply(LmHead.key(c))), cache); // [B, V]
  }
}
