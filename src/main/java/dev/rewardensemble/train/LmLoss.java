package dev.rewardensemble.train;

import dev.rewardensemble.data.Padding;
import dev.rewardensemble.data.TokenBatch;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Sum;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * The causal language-modelling loss of supervised fine-tuning: next-token cross-entropy averaged
 * over the response tokens only.
 *
 * <pre>
 *   loss = - sum_i w_i * log softmax(logits_i)[target_i]  /  max(1, sum_i w_i)
 * </pre>
 *
 * Row i is one position of one sequence; its target is the next token of the same sequence and its
 * weight is 1 when that next token belongs to the response (EOS included), 0 for prompt and padding
 * positions. The log-probability is read with a one-hot product ({@code OneHot} and {@code
 * LogSoftmax} both have gradients in TF Java 1.1; {@code SparseSoftmaxCrossEntropyWithLogits} has
 * none).
 */
public final class LmLoss {
  private LmLoss() {}

  /**
   * @param logits {@code [N, V]}
   * @param targets {@code [N]} token ids in {@code [0, V)}
   * @param weights {@code [N]} loss weights (the response mask)
   * @param vocab V
   * @return the scalar loss
   */
  public static Operand<TFloat32> maskedCrossEntropy(
      Ops tf,
      Operand<TFloat32> logits,
      Operand<TInt32> targets,
      Operand<TFloat32> weights,
      int vocab) {
    Operand<TFloat32> logp = tf.nn.logSoftmax(logits); // [N, V]
    Operand<TFloat32> oneHot =
        tf.oneHot(targets, tf.constant(vocab), tf.constant(1f), tf.constant(0f)); // [N, V]
    Operand<TFloat32> picked =
        tf.sum(tf.math.mul(logp, oneHot), tf.constant(1), Sum.keepDims(false)); // [N]
    Operand<TFloat32> total = tf.sum(tf.math.mul(picked, weights), tf.constant(0)); // []
    Operand<TFloat32> count =
        tf.math.maximum(tf.sum(weights, tf.constant(0)), tf.constant(1f)); // []
    return tf.math.neg(tf.math.div(total, count));
  }

  /**
   * A padded batch with next-token targets and the response mask, all {@code [B, T]} flattened
   * row-major.
   *
   * @param batch ids and attention mask
   * @param targets the token at the next position of the same row (pad id at the last position)
   * @param weights 1 where the target is a response token, else 0
   * @param responseTokens the number of 1s in {@code weights}
   */
  public record Batch(TokenBatch batch, int[] targets, float[] weights, int responseTokens) {}

  /**
   * Pads sequences and marks their response tokens.
   *
   * @param seqs whole sequences, prompt then response (ending with EOS when it ended)
   * @param promptLengths tokens of each sequence that belong to the prompt, {@code >= 1} and {@code
   *     < length} (so every sequence has at least one response token and the first token is never a
   *     target)
   * @param padId id written into padding
   * @param leftPad pad on the left (as for generation) instead of the right
   */
  public static Batch batch(
      List<int[]> seqs, List<Integer> promptLengths, int padId, boolean leftPad) {
    if (seqs.size() != promptLengths.size()) {
      throw new IllegalArgumentException(
          seqs.size() + " sequences but " + promptLengths.size() + " prompt lengths");
    }
    for (int i = 0; i < seqs.size(); i++) {
      int p = promptLengths.get(i);
      if (p < 1 || p >= seqs.get(i).length) {
        throw new IllegalArgumentException(
            "sequence "
                + i
                + ": prompt length "
                + p
                + " must be in [1, "
                + seqs.get(i).length
                + ") so that at least one response token is left");
      }
    }
    TokenBatch b = leftPad ? Padding.leftPad(seqs, padId) : Padding.pad(seqs, padId);
    int t = b.time();
    int[] targets = new int[b.batch() * t];
    float[] weights = new float[targets.length];
    java.util.Arrays.fill(targets, padId);
    int count = 0;
    for (int r = 0; r < b.batch(); r++) {
      int[] s = seqs.get(r);
      int start = leftPad ? t - s.length : 0; // column of the sequence's first token
      for (int j = 0; j + 1 < s.length; j++) {
        int at = r * t + start + j;
        targets[at] = s[j + 1];
        if (j + 1 >= promptLengths.get(r)) {
          weights[at] = 1f;
          count++;
        }
      }
    }
    return new Batch(b, targets, weights, count);
  }
}
