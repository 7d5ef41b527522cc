package dev.rewardensemble.model;

import dev.rewardensemble.io.HfCheckpoint;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * K linear reward heads over the last hidden state of the last real token, stored as one matrix
 * {@code score.weight [K, H]} (Hugging Face's {@code score} layer with {@code num_labels = K}), so
 * that K heads cost one MatMul. K = 1 is a single reward model.
 */
public final class RewardHeads {
  private RewardHeads() {}

  /** Key of the stacked head matrix. */
  public static final String KEY = HfCheckpoint.SCORE_KEY;

  /**
   * Hidden state of the last real token of each sequence.
   *
   * @param rows {@code [B*T, H]}
   * @param mask {@code [B, T]}
   * @return {@code [B, H]}
   */
  public static Operand<TFloat32> lastToken(
      Ops tf, Operand<TFloat32> rows, Operand<TInt32> mask, Attention.Geometry g) {
    Operand<TInt32> last = Attention.lastTokenIndex(tf, mask, g); // [B]
    Operand<TInt32> rowIndex =
        tf.math.add(
            tf.math.mul(tf.range(tf.constant(0), g.batch(), tf.constant(1)), g.time()),
            last); // [B]
    return tf.gather(rows, rowIndex, tf.constant(0)); // [B, H]
  }

  /**
   * Rewards of every head.
   *
   * @param last {@code [B, H]}
   * @param weight {@code [K, H]}
   * @return {@code [B, K]}
   */
  public static Operand<TFloat32> rewards(
      BuildContext cx, Operand<TFloat32> last, Operand<TFloat32> weight) {
    return Layers.linear(cx, last, weight); // [B, K]
  }
}
