package dev.rewardensemble.rl;

import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gather;
import org.tensorflow.op.core.Max;
import org.tensorflow.op.core.Sum;
import org.tensorflow.op.math.Cumsum;
import org.tensorflow.op.nn.TopK;
import org.tensorflow.types.TBool;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.TInt64;

/**
 * Token choice and token log-probabilities as graph ops. No gradients are needed here, so TopKV2
 * and cumulative sums are fine; the draw is an inverse-CDF lookup with one uniform number per row
 * fed from the host, which makes a row's draws depend only on its own seed.
 */
public final class Sampling {
  private Sampling() {}

  /**
   * How many of the most likely tokens a row's nucleus is first looked for among, when top-k is off
   * and the vocabulary is larger: TopKV2 keeps these in 0.15 ms a row where sorting Llama 3's
   * 128,256 logits takes 6.8 ms (2 threads, 32 rows).
   */
  static final int CANDIDATES = 1024;

  /**
   * A row's nucleus is taken from the candidates only when their share of the whole vocabulary's
   * mass is at least {@code topP} plus this: float32 sums of the same probabilities in another
   * order differ by far less, so a row this close to the edge is sorted whole instead.
   */
  static final float FIT_MARGIN = 1e-4f;

  /**
   * Chooses one token per row.
   *
   * <p>Sorts the {@code k} largest logits (TopKV2 puts the lower index first among equals, as
   * arg-max does), divides them by {@code temperature}, keeps the sorted prefix whose mass before
   * each token is below {@code topP}, and returns the token where the cumulative kept mass first
   * exceeds {@code u * total}. With {@code k = 1} (or {@code u = 0}) this is greedy decoding.
   *
   * <p>Without a full-vocabulary sort where top-p allows: when {@code k} is the whole vocabulary
   * (top-k off) and the vocabulary is larger than {@link #CANDIDATES}, each row first looks among
   * its {@code CANDIDATES} most likely tokens; a row whose candidates hold at least {@code topP}
   * (plus {@link #FIT_MARGIN}) of the whole softmax has its nucleus among them (the token after
   * them has that much mass before it) and draws there, with each probability its share of the
   * whole vocabulary's softmax. Only the other rows, gathered into a batch of their own, are sorted
   * whole. When no row can fit ({@code CANDIDATES} times its largest share below {@code topP}) the
   * candidates shrink to one. The choice is the full sort's (same order, same kept prefix, same
   * inverse CDF) up to the float rounding of the probabilities; rows with {@code k <= CANDIDATES},
   * and every row of a vocabulary of at most {@code CANDIDATES} tokens, run exactly the full sort's
   * ops.
   *
   * @param logits {@code [B, V]} raw logits
   * @param u {@code [B]} uniform numbers in [0, 1)
   * @param temperature scalar, positive
   * @param topP scalar in (0, 1]
   * @param k scalar in [1, V]: how many of the most likely tokens are candidates
   * @return {@code [B]} token ids
   */
  public static Operand<TInt32> choose(
      Ops tf,
      Operand<TFloat32> logits,
      Operand<TFloat32> u,
      Operand<TFloat32> temperature,
      Operand<TFloat32> topP,
      Operand<TInt32> k) {
    return choose(tf, logits, u, temperature, topP, k, CANDIDATES);
  }

  /**
   * {@link #choose} as it was before the candidates: every row sorted whole whatever top-k is. The
   * rows {@link #choose} cannot draw among candidates go through it, and it is the baseline of
   * {@code bench.SamplingProbe}.
   */
  public static Operand<TInt32> chooseSortingWhole(
      Ops tf,
      Operand<TFloat32> logits,
      Operand<TFloat32> u,
      Operand<TFloat32> temperature,
      Operand<TFloat32> topP,
      Operand<TInt32> k) {
    TopK<TFloat32, TInt32> top = tf.nn.topK(logits, k, new TopK.Options[0]); // [B, k]
    return inverseCdf(
        tf, tf.nn.softmax(tf.math.div(top.values(), temperature)), top.indices(), u, topP);
  }

  /** {@link #choose} with {@code candidates} in place of {@link #CANDIDATES} (tests). */
  static Operand<TInt32> choose(
      Ops tf,
      Operand<TFloat32> logits,
      Operand<TFloat32> u,
      Operand<TFloat32> temperature,
      Operand<TFloat32> topP,
      Operand<TInt32> k,
      int candidates) {
    Operand<TInt32> limit = tf.constant(candidates);
    Operand<TInt32> vocab = tf.gather(tf.shape(logits), tf.constant(1), tf.constant(0)); // []
    Operand<TBool> plain = tf.math.lessEqual(k, limit); // top-k within the candidates: as ever
    Operand<TBool> shortcut =
        tf.math.logicalAnd(tf.math.logicalNot(plain), tf.math.equal(k, vocab)); // top-k off
    // The whole vocabulary's log-normaliser, over zero columns unless the shortcut applies.
    Operand<TInt32> width = tf.select(shortcut, vocab, tf.constant(0));
    Operand<TFloat32> all =
        tf.math.div(
            tf.slice(
                logits, tf.constant(new int[] {0, 0}), tf.stack(List.of(tf.constant(-1), width))),
            temperature); // [B, V or 0]
    Operand<TFloat32> peak = tf.max(all, tf.constant(1), Max.keepDims(true)); // [B, 1]
    Operand<TFloat32> logZ =
        tf.math.add(
            tf.math.log(
                tf.sum(tf.math.exp(tf.math.sub(all, peak)), tf.constant(1), Sum.keepDims(true))),
            peak); // [B, 1]
    // What a row's candidates must hold for its draw to be theirs. Below top-p 1, the nucleus: the
    // candidates must hold topP (plus the margin). At top-p 1 (pure sampling) the nucleus is the
    // whole vocabulary, but the draw is the first token whose cumulative mass exceeds u: it is a
    // candidate when the candidates hold more than u (plus the margin), and the inverse CDF then
    // runs over the candidates with the whole vocabulary's total mass, 1.
    Operand<TBool> pure = tf.math.logicalAnd(shortcut, tf.math.greaterEqual(topP, tf.constant(1f)));
    Operand<TFloat32> need =
        tf.math.add(tf.select(pure, u, tf.fill(tf.shape(u), topP)), tf.constant(FIT_MARGIN)); // [B]
    // The candidates hold at most `candidates` times the largest share: when that is below the
    // need of every row (a flat distribution: a random model, a high temperature), none can fit,
    // and the candidates shrink to one (an arg-max) instead of costing a TopKV2 of 1,024 per row.
    Operand<TBool> mayFit =
        tf.reduceAny(
            tf.math.logicalAnd(
                shortcut,
                tf.math.greaterEqual(
                    tf.math.mul(
                        tf.constant((float) candidates), tf.math.exp(tf.math.sub(peak, logZ))),
                    tf.expandDims(need, tf.constant(1)))),
            tf.constant(new int[] {0, 1})); // []
    Operand<TInt32> count =
        tf.select(plain, k, tf.select(mayFit, limit, tf.constant(1))); // c: k, candidates or 1
    TopK<TFloat32, TInt32> top = tf.nn.topK(logits, count, new TopK.Options[0]); // [B, c]
    Operand<TFloat32> scaled = tf.math.div(top.values(), temperature); // [B, c]
    Operand<TFloat32> shares = tf.math.exp(tf.math.sub(scaled, logZ)); // [B, c]
    Operand<TBool> fits =
        tf.math.logicalOr(
            plain,
            tf.math.logicalAnd(
                shortcut, tf.math.greaterEqual(tf.sum(shares, tf.constant(1)), need))); // [B]
    Operand<TFloat32> probs = tf.select(plain, tf.nn.softmax(scaled), shares); // [B, c]
    Operand<TInt32> amongCandidates = inverseCdf(tf, probs, top.indices(), u, topP, pure); // [B]
    // The rows whose nucleus may reach past the candidates: sorted whole, by themselves.
    Operand<TInt64> missing = tf.where(tf.math.logicalNot(fits)); // [m, 1]
    Operand<TInt64> rows = tf.reshape(missing, tf.constant(new int[] {-1})); // [m]
    Operand<TInt32> wholeSort =
        chooseSortingWhole(
            tf,
            tf.gather(logits, rows, tf.constant(0)),
            tf.gather(u, rows, tf.constant(0)),
            temperature,
            topP,
            k); // [m]
    Operand<TInt32> scattered =
        tf.scatterNd(missing, wholeSort, tf.shape(fits, TInt64.class)); // [B]
    return tf.select(fits, amongCandidates, scattered);
  }

  /**
   * The inverse-CDF draw over sorted candidates: keeps the prefix whose mass before each token is
   * below {@code topP}, renormalises, and returns the candidate where the kept mass first exceeds
   * {@code u * total}.
   *
   * @param probs {@code [B, c]} the candidates' probabilities, in descending order
   * @param ids {@code [B, c]} their token ids
   * @param u {@code [B]}
   * @return {@code [B]}
   */
  private static Operand<TInt32> inverseCdf(
      Ops tf,
      Operand<TFloat32> probs,
      Operand<TInt32> ids,
      Operand<TFloat32> u,
      Operand<TFloat32> topP) {
    return inverseCdf(tf, probs, ids, u, topP, tf.constant(false));
  }

  /**
   * {@link #inverseCdf(Ops, Operand, Operand, Operand, Operand)}, with the total mass 1 instead of
   * the kept candidates' when {@code wholeMass} (scalar) holds: the candidates are then the head of
   * a whole vocabulary's softmax, each probability its share of the whole.
   */
  private static Operand<TInt32> inverseCdf(
      Ops tf,
      Operand<TFloat32> probs,
      Operand<TInt32> ids,
      Operand<TFloat32> u,
      Operand<TFloat32> topP,
      Operand<TBool> wholeMass) {
    Operand<TFloat32> before =
        tf.math.cumsum(probs, tf.constant(1), Cumsum.exclusive(true)); // [B, c]
    Operand<TFloat32> keep = tf.dtypes.cast(tf.math.less(before, topP), TFloat32.class); // [B, c]
    Operand<TFloat32> cum = tf.math.cumsum(tf.math.mul(probs, keep), tf.constant(1)); // [B, c]
    Operand<TFloat32> total =
        tf.select(
            wholeMass,
            tf.constant(1f),
            tf.max(cum, tf.constant(1), Max.keepDims(true))); // [B, 1] (cum is non-decreasing)
    Operand<TFloat32> target = tf.math.mul(tf.expandDims(u, tf.constant(1)), total); // [B, 1]
    Operand<TInt32> rank =
        tf.sum(tf.dtypes.cast(tf.math.lessEqual(cum, target), TInt32.class), tf.constant(1)); // [B]
    Operand<TInt32> kept = tf.dtypes.cast(tf.sum(keep, tf.constant(1)), TInt32.class); // [B]
    // The upper bound guards float round-off; the lower one rows of a branch select discards
    // (infinite shares where the shortcut does not apply keep nothing), which must still gather.
    rank =
        tf.math.maximum(tf.math.minimum(rank, tf.math.sub(kept, tf.constant(1))), tf.constant(0));
    Operand<TInt32> picked =
        tf.gather(
            ids,
            tf.expandDims(rank, tf.constant(1)),
            tf.constant(1),
            Gather.batchDims(1L)); // [B, 1]
    return tf.reshape(picked, tf.constant(new int[] {-1})); // [B]
  }

  /**
   * {@code log_softmax(logits)[b, ids[b]]}: the log-probability of each chosen token under the
   * unmodified distribution.
   *
   * @param logits {@code [B, V]}
   * @param ids {@code [B]}
   * @return {@code [B]}
   */
  public static Operand<TFloat32> logProb(Ops tf, Operand<TFloat32> logits, Operand<TInt32> ids) {
    Operand<TFloat32> logp = tf.nn.logSoftmax(logits); // [B, V]
    Operand<TFloat32> picked =
        tf.gather(
            logp,
            tf.expandDims(ids, tf.constant(1)),
            tf.constant(1),
            Gather.batchDims(1L)); // [B, 1]
    return tf.reshape(picked, tf.constant(new int[] {-1})); // [B]
  }
}
