package dev.rewardensemble.rl;

import dev.rewardensemble.config.Gpt2Config;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.model.Attention;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.LmHead;
import dev.rewardensemble.model.Transformers;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.index.Indices;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * One forward step of a causal LM over {@code S} new tokens that reads and extends a key/value
 * cache: the prefill step sees the whole prompt with no cache, each decode step one token. One
 * implementation per model family ({@link LlamaDecoder}, {@link Gpt2Decoder}).
 *
 * <p>Weights come through a lookup by checkpoint key, so the same code builds the prefill (reading
 * variables) and the body of the in-graph decode loop (reading loop variables). The weight products
 * take the build context's precision.
 */
interface CausalDecoder {

  /**
   * The output of a step.
   *
   * @param logits {@code [B, V]} at the last new position of each row
   * @param cache per layer the keys then the values, each {@code [B, Nkv, Tk + S, D]}
   */
  record Step(Operand<TFloat32> logits, List<Operand<TFloat32>> cache) {}

  /**
   * Runs the step.
   *
   * @param cx the ops to build with and the precision of the weight products
   * @param ids {@code [B, S]} new tokens
   * @param g geometry of the new tokens: {@code time} S, {@code positions [B, S]} and {@code bias
   *     [B, 1, 1, S, Tk + S]} over the cached then the new positions
   * @param past the cache of the earlier positions (2 per layer), or null at prefill
   */
  Step step(
      BuildContext cx,
      Function<String, Operand<TFloat32>> w,
      Operand<TInt32> ids,
      Attention.Geometry g,
      List<Operand<TFloat32>> past);

  /** Number of cache tensors: keys and values of every layer. */
  int cacheSize();

  /** The decoder of the config's family. */
  static CausalDecoder of(ModelConfig c) {
    if (c instanceof Gpt2Config g) {
      return new Gpt2Decoder(g);
    }
    return new LlamaDecoder((LlamaConfig) c);
  }

  /**
   * Every weight a step reads, trunk first, then the head's (absent when tied to the embedding).
   */
  static Map<String, long[]> weightShapes(ModelConfig c) {
    Map<String, long[]> m = new LinkedHashMap<>(Transformers.parameterShapes(c));
    m.putIfAbsent(LmHead.key(c), new long[] {c.vocabSize(), c.hiddenSize()});
    return m;
  }

  /** Rows {@code [B*S, H]} -> the last row of each sequence {@code [B, H]}. */
  static Operand<TFloat32> lastRow(
      Ops tf, Operand<TFloat32> rows, Attention.Geometry g, int hidden) {
    Operand<TFloat32> seq =
        tf.reshape(rows, tf.stack(List.of(g.batch(), g.time(), tf.constant(hidden)))); // [B, S, H]
    return tf.stridedSlice(seq, Indices.all(), Indices.at(-1), Indices.all()); // [B, H]
  }

  /**
   * {@code x [B, S, n, D]} -> heads first {@code [B, n, S, D]}, appended to {@code past} if any.
   */
  static Operand<TFloat32> extend(Ops tf, Operand<TFloat32> past, Operand<TFloat32> x) {
    Operand<TFloat32> xh =
        tf.linalg.transpose(x, tf.constant(new int[] {0, 2, 1, 3})); // [B, n, S, D]
    return past == null ? xh : tf.concat(List.of(past, xh), tf.constant(2)); // [B, n, Tk + S, D]
  }
}
