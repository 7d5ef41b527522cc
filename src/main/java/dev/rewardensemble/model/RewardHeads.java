package dev.rewardensemble.model;

import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import java.util.SplittableRandom;
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

  /** Salt of the prior heads' streams (apart from the trained heads' {@link Init#heads}). */
  private static final long PRIOR_SALT = 0x6A09E667F3BCC909L;

  /**
   * A randomized prior (Osband et al. 2018) for K heads: {@code scale * P}, {@code [K, H]}, where
   * row k of P is drawn from {@code N(0, Init.STD^2)} (the trained heads' initialisation) from its
   * own stream of (seed, k), so that member k's prior does not depend on K. Fixed and untrained:
   * member k's reward is {@code (W_k + scale * P_k) . h}, its trained head plus the prior head on
   * the same hidden state.
   */
  public static FloatTensor prior(int k, int hidden, long seed, double scale) {
    if (!(Double.isFinite(scale) && scale >= 0)) {
      throw new IllegalArgumentException("--prior-scale must be finite and >= 0, got " + scale);
    }
    float[] data = new float[k * hidden];
    for (int m = 0; m < k; m++) {
      FloatTensor row =
          Init.normal(
              new long[] {hidden},
              Init.STD,
              new SplittableRandom((seed ^ PRIOR_SALT) * 1_000_003L + 104_729L * m + 1));
      for (int i = 0; i < hidden; i++) {
        data[m * hidden + i] = (float) (scale * row.data()[i]);
      }
    }
    return new FloatTensor(new long[] {k, hidden}, data);
  }

  /**
   * The head matrix the rewards are read with: {@code weight + prior} (a constant of the graph), or
   * {@code weight} for a null prior. The gradient reaches {@code weight} unchanged.
   *
   * @param weight {@code [K, H]}
   * @param prior {@code [K, H]} ({@link #prior}), or null
   */
  public static Operand<TFloat32> withPrior(Ops tf, Operand<TFloat32> weight, FloatTensor prior) {
    if (prior == null) {
      return weight;
    }
    Operand<TFloat32> c =
        tf.constant(
            org.tensorflow.ndarray.Shape.of(prior.shape()),
            org.tensorflow.ndarray.buffer.DataBuffers.of(prior.data(), true, false));
    return tf.math.add(weight, c);
  }

  /**
   * The saved head of a head trained with a prior: {@code weight + prior} in float32, element by
   * element the sum {@link #withPrior} computes in the graph, so that the saved model scores
   * exactly what the trained one did.
   */
  public static FloatTensor fold(FloatTensor weight, FloatTensor prior) {
    if (!java.util.Arrays.equals(weight.shape(), prior.shape())) {
      throw new IllegalArgumentException(
          "head " + weight.shapeString() + " and prior " + prior.shapeString() + " differ");
    }
    float[] out = new float[weight.data().length];
    for (int i = 0; i < out.length; i++) {
      out[i] = weight.data()[i] + prior.data()[i];
    }
    return new FloatTensor(weight.shape(), out);
  }

  /** {@code folded - prior}: the trained part of a folded head (to continue training it). */
  public static FloatTensor unfold(FloatTensor folded, FloatTensor prior) {
    float[] neg = new float[prior.data().length];
    for (int i = 0; i < neg.length; i++) {
      neg[i] = -prior.data()[i];
    }
    return fold(folded, new FloatTensor(prior.shape(), neg));
  }
}
