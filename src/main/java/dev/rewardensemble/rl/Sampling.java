package dev.rewardensemble.rl;

import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gather;
import org.tensorflow.op.core.Max;
import org.tensorflow.op.core.Stack;
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
   * <p>At top-p 1 with top-k off (pure sampling) nothing is sorted: the vocabulary is walked as the
   * {@code CANDIDATES} most likely tokens in descending order, then the others in index order, and
   * the draw is the first token whose cumulative share of the whole softmax exceeds {@code u}. A
   * row whose candidates hold more than {@code u} draws among them (the full sort's token, up to
   * rounding); the others take one cumulative sum over their row. Every token keeps its own
   * probability; only which token a given {@code u} maps to past the candidates differs from the
   * full sort, whose float32 cumulative sum over a large vocabulary is itself off by more than its
   * smallest probabilities.
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
    // Below top-p 1 a row's nucleus lies among its candidates when they hold topP (plus the
    // margin). At top-p 1 (pure sampling) the nucleus is the whole vocabulary: a row draws among
    // its candidates when they hold more than its uniform number u (the inverse CDF then runs over
    // them with the whole vocabulary's total mass, 1), and past them otherwise.
    Operand<TBool> pure = tf.math.logicalAnd(shortcut, tf.math.greaterEqual(topP, tf.constant(1f)));
    Operand<TFloat32> need = tf.math.add(topP, tf.constant(FIT_MARGIN)); // []
    // The candidates hold at most `candidates` times the largest share: when that is below topP
    // for every row (a flat distribution: a random model, a high temperature), none can fit, and
    // the candidates shrink to one (an arg-max) instead of costing a TopKV2 of 1,024 per row. Not
    // at top-p 1, where the draw past the candidates depends on which they are: a row's draw must
    // not depend on the other rows of its batch.
    Operand<TBool> mayFit =
        tf.math.logicalOr(
            pure,
            tf.reduceAny(
                tf.math.logicalAnd(
                    shortcut,
                    tf.math.greaterEqual(
                        tf.math.mul(
                            tf.constant((float) candidates), tf.math.exp(tf.math.sub(peak, logZ))),
                        topP)),
                tf.constant(new int[] {0, 1}))); // []
    Operand<TInt32> count =
        tf.select(plain, k, tf.select(mayFit, limit, tf.constant(1))); // c: k, candidates or 1
    TopK<TFloat32, TInt32> top = tf.nn.topK(logits, count, new TopK.Options[0]); // [B, c]
    Operand<TFloat32> scaled = tf.math.div(top.values(), temperature); // [B, c]
    Operand<TFloat32> shares = tf.math.exp(tf.math.sub(scaled, logZ)); // [B, c]
    Operand<TFloat32> held = tf.sum(shares, tf.constant(1)); // [B]
    Operand<TBool> fits =
        tf.math.logicalOr(
            plain,
            tf.math.logicalAnd(
                shortcut,
                tf.select(
                    pure, tf.math.greater(held, u), tf.math.greaterEqual(held, need)))); // [B]
    Operand<TFloat32> probs = tf.select(plain, tf.nn.softmax(scaled), shares); // [B, c]
    Operand<TInt32> amongCandidates = inverseCdf(tf, probs, top.indices(), u, topP, pure); // [B]
    // The rows whose nucleus may reach past the candidates: sorted whole, by themselves. At top-p 1
    // the rows whose draw lies past the candidates draw in the rest of the vocabulary instead, in
    // index order: no sort at all (the empty one of the two sets costs nothing).
    Operand<TBool> missing = tf.math.logicalNot(fits); // [B]
    Operand<TInt64> toSort = tf.where(tf.math.logicalAnd(missing, tf.math.logicalNot(pure)));
    Operand<TInt64> sortRows = tf.reshape(toSort, tf.constant(new int[] {-1})); // [m]
    Operand<TInt32> wholeSort =
        chooseSortingWhole(
            tf,
            tf.gather(logits, sortRows, tf.constant(0)),
            tf.gather(u, sortRows, tf.constant(0)),
            temperature,
            topP,
            k); // [m]
    Operand<TInt64> inTail = tf.where(tf.math.logicalAnd(missing, pure)); // [t, 1]
    Operand<TInt64> tailRows = tf.reshape(inTail, tf.constant(new int[] {-1})); // [t]
    Operand<TInt32> tailDraw =
        drawPastCandidates(
            tf,
            tf.gather(all, tailRows, tf.constant(0)), // pure implies the shortcut: all V columns
            tf.gather(logZ, tailRows, tf.constant(0)),
            tf.gather(top.indices(), tailRows, tf.constant(0)),
            tf.math.sub(
                tf.gather(u, tailRows, tf.constant(0)),
                tf.gather(held, tailRows, tf.constant(0)))); // [t]
    Operand<TInt64> batch = tf.shape(fits, TInt64.class);
    Operand<TInt32> scattered =
        tf.math.add(
            tf.scatterNd(toSort, wholeSort, batch), tf.scatterNd(inTail, tailDraw, batch)); // [B]
    return tf.select(fits, amongCandidates, scattered);
  }

  /**
   * Pure sampling past the candidates: the first token, in index order over the vocabulary with the
   * candidates left out, whose cumulative share of the whole softmax exceeds {@code rest} (the
   * row's uniform number minus the candidates' mass). With the candidates drawn by their shares
   * when the uniform number is below their mass, every token is drawn with its own probability, and
   * no row is sorted.
   *
   * @param scaled {@code [t, V]} logits divided by the temperature
   * @param logZ {@code [t, 1]} their log-normaliser
   * @param candidates {@code [t, c]} the candidates' token ids
   * @param rest {@code [t]}
   * @return {@code [t]} token ids
   */
  private static Operand<TInt32> drawPastCandidates(
      Ops tf,
      Operand<TFloat32> scaled,
      Operand<TFloat32> logZ,
      Operand<TInt32> candidates,
      Operand<TFloat32> rest) {
    Operand<TFloat32> shares = tf.math.exp(tf.math.sub(scaled, logZ)); // [t, V]
    Operand<TInt32> row =
        tf.expandDims(
            tf.range(
                tf.constant(0),
                tf.gather(tf.shape(candidates), tf.constant(0), tf.constant(0)),
                tf.constant(1)),
            tf.constant(1)); // [t, 1]
    Operand<TInt32> at =
        tf.stack(
            List.of(tf.math.mul(row, tf.onesLike(candidates)), candidates),
            Stack.axis(2L)); // [t, c, 2]
    Operand<TFloat32> tail =
        tf.tensorScatterNdUpdate(
            shares, at, tf.zerosLike(tf.dtypes.cast(candidates, TFloat32.class))); // [t, V]
    Operand<TFloat32> cum = tf.math.cumsum(tail, tf.constant(1)); // [t, V]
    Operand<TInt32> index =
        tf.sum(
            tf.dtypes.cast(
                tf.math.lessEqual(cum, tf.expandDims(rest, tf.constant(1))), TInt32.class),
            tf.constant(1)); // [t]
    // Float round-off can leave the rest at or above the tail's whole mass: the last token then.
    Operand<TInt32> last =
        tf.math.sub(tf.gather(tf.shape(scaled), tf.constant(1), tf.constant(0)), tf.constant(1));
    return tf.math.minimum(index, last);
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
