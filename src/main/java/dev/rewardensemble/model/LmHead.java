package dev.rewardensemble.model;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.HfCheckpoint;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/** The language-model head of a causal LM: {@code lm_head.weight [V, H]}, or the tied embedding. */
public final class LmHead {
  private LmHead() {}

  public static final String KEY = HfCheckpoint.LM_HEAD_KEY;

  /** Key of the head's weight: {@code lm_head.weight}, or the input embedding's key when tied. */
  public static String key(ModelConfig c) {
    return c.tieWordEmbeddings() ? c.embeddingKey() : KEY;
  }

  /**
   * Every weight a causal LM reads, checkpoint key to shape: the trunk's, then the head's (absent
   * when tied to the embedding).
   */
  public static Map<String, long[]> weightShapes(ModelConfig c) {
    Map<String, long[]> m = new LinkedHashMap<>(c.parameterShapes());
    m.putIfAbsent(key(c), new long[] {c.vocabSize(), c.hiddenSize()});
    return m;
  }

  /** The head's weight variable: {@code lm_head.weight}, or the input embedding when tied. */
  public static Operand<TFloat32> weight(ModelConfig c, ParameterStore p) {
    long[] shape = {c.vocabSize(), c.hiddenSize()};
    return c.tieWordEmbeddings() ? p.value(c.embeddingKey(), shape) : p.value(KEY, shape);
  }

  /**
   * The LM logits, soft-capped when the family says so ({@link ModelConfig#finalLogitSoftcapping}:
   * Gemma 2's {@code cap * tanh(logits / cap)}). Every maker of LM logits (scoring, LM and PPO
   * training, prefill and decode loop) calls this.
   *
   * @param rows {@code [rows, H]}
   * @return logits {@code [rows, V]}
   */
  public static Operand<TFloat32> logits(
      BuildContext cx, ModelConfig c, ParameterStore p, Operand<TFloat32> rows) {
    // Read through its own Identity: a tied head is the embedding, read below the blocks too, and
    // a training graph that recomputes its blocks differentiates each use apart (model.Recompute).
    return softcap(cx.tf(), c, Layers.linear(cx, rows, cx.tf().identity(weight(c, p))));
  }

  /**
   * Logits with the head's weight from {@code w} (e.g. loop variables).
   *
   * @param rows {@code [rows, H]}
   * @return logits {@code [rows, V]}
   */
  public static Operand<TFloat32> logits(
      BuildContext cx, ModelConfig c, Weights w, Operand<TFloat32> rows) {
    return softcap(cx.tf(), c, Layers.linear(cx, rows, w.get(key(c))));
  }

  /**
   * {@link #logits(BuildContext, ModelConfig, Weights, Operand)} for a few rows (a decode step's
   * batch), computed weight-first: {@code (W rows^T)^T}, float32. The head's {@code [V, H]} weight
   * is then the untransposed left operand and only the small {@code rows} is transposed: oneDNN's
   * product {@code rows W^T} reorders the whole transposed weight per call, which made the head the
   * costliest op of a decode step. Each logit is the same dot product.
   *
   * @param rows {@code [rows, H]}
   * @return logits {@code [rows, V]}
   */
  public static Operand<TFloat32> fewRowLogits(
      Ops tf, ModelConfig c, Weights w, Operand<TFloat32> rows) {
    String key = key(c);
    org.tensorflow.op.linalg.MatMul.Options rowsT =
        org.tensorflow.op.linalg.MatMul.transposeB(true);
    Operand<TFloat32> t;
    int chunk = widenedRows(c.hiddenSize());
    if (!w.widened(key) || chunk >= c.vocabSize()) {
      t = tf.linalg.matMul(w.get(key), rows, rowsT); // [V, rows]
    } else {
      // A head held in bfloat16 is widened a block of rows at a time, each block once the
      // previous block's product is done: no float32 copy of the whole head exists (at Llama 3's
      // 128,256 x 2,048 it would be 1 GiB per decode step).
      List<Operand<TFloat32>> parts = new ArrayList<>();
      Weights gated = w;
      for (int start = 0; start < c.vocabSize(); start += chunk) {
        int n = Math.min(chunk, c.vocabSize() - start);
        Operand<TFloat32> part = tf.linalg.matMul(gated.rowRange(tf, key, start, n), rows, rowsT);
        parts.add(part); // [n, rows]
        gated = w.after(part);
      }
      t = tf.concat(parts, tf.constant(0)); // [V, rows]
    }
    return softcap(tf, c, tf.linalg.transpose(t, tf.constant(new int[] {1, 0})));
  }

  /**
   * Bytes of float32 a bfloat16 head is widened by at a time in {@link #fewRowLogits}: 16 MiB, a
   * block that stays in a server CPU's last-level cache between its widening and its product. The
   * system property {@code rme.headWidenBytes} overrides it (tests set a few rows' worth).
   */
  static long widenedBytes() {
    return Long.getLong("rme.headWidenBytes", 16L << 20);
  }

  /** Rows of a head of width {@code hidden} widened at a time ({@link #widenedBytes}). */
  static int widenedRows(int hidden) {
    return (int) Math.max(1, Math.min(Integer.MAX_VALUE, widenedBytes() / (4L * hidden)));
  }

  /**
   * {@code cap * tanh(logits / cap)} with {@code cap = c.finalLogitSoftcapping()}; 0: unchanged.
   */
  static Operand<TFloat32> softcap(Ops tf, ModelConfig c, Operand<TFloat32> logits) {
    double cap = c.finalLogitSoftcapping();
    if (!(cap > 0)) {
      return logits;
    }
    Operand<TFloat32> k = tf.constant((float) cap);
    return tf.math.mul(tf.math.tanh(tf.math.div(logits, k)), k);
  }

  /** {@link #logits(BuildContext, ModelConfig, ParameterStore, Operand)} in float32. */
  public static Operand<TFloat32> logits(
      Ops tf, ModelConfig c, ParameterStore p, Operand<TFloat32> rows) {
    return logits(BuildContext.float32(tf), c, p, rows);
  }
}
