package dev.rewardensemble.rl;

import dev.rewardensemble.config.Gpt2Config;
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
 * A GPT-2 step with a key/value cache, read top to bottom like {@link
 * dev.rewardensemble.model.Gpt2#trunk}: token + learned position embeddings at each token's
 * absolute position, fused {@code c_attn} attention over the cached and new keys, {@code gelu_new}
 * MLP, {@code ln_f}, language-model head on the last position.
 */
final class Gpt2Decoder implements CausalDecoder {
  private final Gpt2Config c;

  Gpt2Decoder(Gpt2Config c) {
    this.c = c;
  }

  @Override
  public int cacheSize() {
    return 2 * c.nLayer();
  }

  @Override
  public Step step(
      BuildContext cx,
      Function<String, Operand<TFloat32>> w,
      Operand<TInt32> ids,
      Attention.Geometry g,
      List<Operand<TFloat32>> past) {
    Ops tf = cx.tf();
    int h = c.nEmbd();
    int n = c.nHead();
    int d = c.headDim();
    double eps = c.layerNormEpsilon();

    Operand<TInt32> flatIds = tf.reshape(ids, tf.constant(new int[] {-1})); // [B*S]
    Operand<TInt32> flatPos = tf.reshape(g.positions(), tf.constant(new int[] {-1})); // [B*S]
    Operand<TFloat32> x =
        tf.math.add(
            tf.gather(w.apply("transformer.wte.weight"), flatIds, tf.constant(0)),
            tf.gather(w.apply("transformer.wpe.weight"), flatPos, tf.constant(0))); // [B*S, H]
    List<Operand<TFloat32>> cache = new ArrayList<>(cacheSize());

    for (int i = 0; i < c.nLayer(); i++) {
      String pre = "transformer.h." + i + ".";
      // Attention over the cached and the new positions.
      Operand<TFloat32> a =
          Layers.layerNorm(tf, x, w.apply(pre + "ln_1.weight"), w.apply(pre + "ln_1.bias"), eps);
      Operand<TFloat32> qkv =
          Layers.conv1d(
              cx,
              a,
              w.apply(pre + "attn.c_attn.weight"),
              w.apply(pre + "attn.c_attn.bias")); // [B*S, 3H]
      Operand<TFloat32> q =
          Attention.splitHeads(tf, Layers.columns(tf, qkv, 0, h), g, n, d); // [B, S, N, D]
      Operand<TFloat32> k =
          Attention.splitHeads(tf, Layers.columns(tf, qkv, h, 2L * h), g, n, d); // [B, S, N, D]
      Operand<TFloat32> v =
          Attention.splitHeads(
              tf, Layers.columns(tf, qkv, 2L * h, 3L * h), g, n, d); // [B, S, N, D]
      Operand<TFloat32> kh =
          CausalDecoder.extend(tf, past == null ? null : past.get(2 * i), k); // [B, N, Tk+S, D]
      Operand<TFloat32> vh =
          CausalDecoder.extend(tf, past == null ? null : past.get(2 * i + 1), v); // [B, N, Tk+S, D]
      cache.add(kh);
      cache.add(vh);
      Operand<TFloat32> ctx = Attention.attendHeadsFirst(tf, q, kh, vh, g, n, n, d); // [B*S, H]
      x =
          tf.math.add(
              x,
              Layers.conv1d(
                  cx, ctx, w.apply(pre + "attn.c_proj.weight"), w.apply(pre + "attn.c_proj.bias")));
      // MLP.
      Operand<TFloat32> m =
          Layers.layerNorm(tf, x, w.apply(pre + "ln_2.weight"), w.apply(pre + "ln_2.bias"), eps);
      Operand<TFloat32> fc =
          activation(
              tf,
              Layers.conv1d(
                  cx,
                  m,
                  w.apply(pre + "mlp.c_fc.weight"),
                  w.apply(pre + "mlp.c_fc.bias"))); // [B*S, F]
      x =
          tf.math.add(
              x,
              Layers.conv1d(
                  cx, fc, w.apply(pre + "mlp.c_proj.weight"), w.apply(pre + "mlp.c_proj.bias")));
    }
    Operand<TFloat32> rows =
        Layers.layerNorm(
            tf, x, w.apply("transformer.ln_f.weight"), w.apply("transformer.ln_f.bias"), eps);
    Operand<TFloat32> last = CausalDecoder.lastRow(tf, rows, g, h); // [B, H]
    return new Step(Layers.linear(cx, last, w.apply(LmHead.key(c))), cache); // [B, V]
  }

  private Operand<TFloat32> activation(Ops tf, Operand<TFloat32> x) {
    return switch (c.activation()) {
      case "gelu_new" -> Layers.geluNew(tf, x);
      case "gelu" -> Layers.gelu(tf, x);
      case "relu" -> tf.nn.relu(x);
      default ->
          throw new IllegalArgumentException(
              "activation_function '" + c.activation() + "' is not supported");
    };
  }
}
