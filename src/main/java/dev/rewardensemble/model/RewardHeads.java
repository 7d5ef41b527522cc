package dev.rewardensemble.model;

import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.io.HfCheckpoint;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * K linear reward heads over the hidden state of the token the reward is read at ({@link
 * dev.rewardensemble.config.RewardToken}: by default the rightmost attended token that is not the
 * pad id, as transformers reads it), stored as one matrix {@code score.weight [K, H]} (Hugging
 * Face's {@code score} layer with {@code num_labels = K}), so that K heads cost one MatMul. K = 1
 * is a single reward model.
 */
public final class RewardHeads {
  private RewardHeads() {}

  /** Key of the stacked head matrix. */
  public static final String KEY = HfCheckpoint.SCORE_KEY;

  /**
   * The tokens a reward may be read at, {@code [B, T]} (1 or 0): the attended tokens ({@code mask})
   * and, for {@link RewardToken#LAST_NON_PAD}, only those whose id is not {@code padId} (as
   * transformers' {@code ...ForSequenceClassification} reads with {@code pad_token_id}). {@link
   * #lastToken} over it gives the reading position; a row with no such token reads position 0, as
   * transformers does.
   *
   * @param ids {@code [B, T]}
   * @param mask {@code [B, T]}
   */
  public static Operand<TInt32> readMask(
      Ops tf, Operand<TInt32> ids, Operand<TInt32> mask, RewardToken rule, int padId) {
    return switch (rule) {
      case LAST_ATTENDED -> mask;
      case LAST_NON_PAD ->
          tf.math.mul(
              mask,
              tf.dtypes.cast(tf.math.notEqual(ids, tf.constant(padId)), TInt32.class)); // [B, T]
    };
  }

  /**
   * Hidden state of the last token of each sequence whose {@code mask} is 1 (the attention mask, or
   * a {@link #readMask}).
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
