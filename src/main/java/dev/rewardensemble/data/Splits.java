package dev.rewardensemble.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Deterministic shuffling and train/eval splitting from a seed.
 *
 * <p>Every result is a pure function of its arguments: {@link #permutation(int, long, int)} of (n,
 * seed, epoch), so a resumed run recomputes the order of the current epoch from its position
 * without storing random-number state. The stream used by {@link #split} is separate from every
 * epoch's stream.
 */
public final class Splits {
  private static final long GOLDEN = 0x9E3779B97F4A7C15L;

  /** Salt distinguishing the split's stream from the epochs' streams. */
  private static final long SPLIT_SALT = 0x5EED5B11700DA7AL;

  private Splits() {}

  /**
   * Splits items into train and eval sets. {@code round(n * evalFraction)} items (at least one when
   * the fraction is positive) are chosen at random for eval; both parts keep the original order.
   *
   * @param evalFraction in {@code [0, 1)}; 0 gives an empty eval set
   * @throws IllegalArgumentException if evalFraction is outside {@code [0, 1)} or leaves no
   *     training item
   */
  public static <T> Split<T> split(List<T> items, double evalFraction, long seed) {
    if (!(evalFraction >= 0 && evalFraction < 1)) {
      throw new IllegalArgumentException("evalFraction must be in [0, 1), got " + evalFraction);
    }
    int n = items.size();
    if (evalFraction == 0) {
      return new Split<>(items, List.of());
    }
    int nEval = Math.max(1, (int) Math.round(n * evalFraction));
    if (nEval >= n) {
      throw new IllegalArgumentException(
          "evalFraction " + evalFraction + " leaves no training items out of " + n);
    }
    int[] perm = shuffle(n, mix(seed ^ SPLIT_SALT));
    boolean[] isEval = new boolean[n];
    for (int i = 0; i < nEval; i++) {
      isEval[perm[i]] = true;
    }
    List<T> train = new ArrayList<>(n - nEval);
    List<T> eval = new ArrayList<>(nEval);
    for (int i = 0; i < n; i++) {
      (isEval[i] ? eval : train).add(items.get(i));
    }
    return new Split<>(train, eval);
  }

  /**
   * A random permutation of {@code 0..n-1} for one epoch: Fisher-Yates with a {@link
   * SplittableRandom} seeded from a mix of seed and epoch.
   *
   * @throws IllegalArgumentException if n is negative
   */
  public static int[] permutation(int n, long seed, int epoch) {
    if (n < 0) {
      throw new IllegalArgumentException("n must be >= 0, got " + n);
    }
    return shuffle(n, mix(seed + GOLDEN * (epoch + 1L)));
  }

  private static int[] shuffle(int n, long streamSeed) {
    int[] perm = new int[n];
    Arrays.setAll(perm, i -> i);
    SplittableRandom rng = new SplittableRandom(streamSeed);
    for (int i = n - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      int t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    return perm;
  }

  /** The SplitMix64 finalizer: spreads nearby seeds far apart. */
  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
