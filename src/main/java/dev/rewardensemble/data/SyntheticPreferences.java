package dev.rewardensemble.data;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A generated, learnable preference set for tests and benchmarks: random token sequences where the
 * preferred one contains the "good" token more often. A reward model must aggregate over the
 * sequence (attention), not just read the last token, to rank them.
 */
public final class SyntheticPreferences {
  private SyntheticPreferences() {}

  /** Token whose count decides the preference. */
  public static final int GOOD = 7;

  /**
   * {@code n} pairs of sequences with lengths in [minLen, maxLen], tokens in [firstToken, vocab);
   * the chosen sequence has strictly more {@link #GOOD} tokens than the rejected one.
   */
  public static List<PreferencePair> counting(
      int n, int vocab, int minLen, int maxLen, int firstToken, long seed) {
    if (vocab <= GOOD + 1 || firstToken > GOOD || minLen < 4 || maxLen < minLen) {
      throw new IllegalArgumentException(
          "need vocab > "
              + (GOOD + 1)
              + ", firstToken <= "
              + GOOD
              + ", 4 <= minLen <= maxLen; got vocab "
              + vocab
              + ", firstToken "
              + firstToken
              + ", lengths "
              + minLen
              + ".."
              + maxLen);
    }
    SplittableRandom rng = new SplittableRandom(seed);
    List<PreferencePair> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      int good = 1 + rng.nextInt(3);
      int bad = rng.nextInt(good);
      out.add(
          new PreferencePair(
              sequence(rng, good, vocab, minLen, maxLen, firstToken),
              sequence(rng, bad, vocab, minLen, maxLen, firstToken),
              0f,
              i + 1));
    }
    return out;
  }

  private static int[] sequence(
      SplittableRandom rng, int goods, int vocab, int minLen, int maxLen, int first) {
    int len = minLen + rng.nextInt(maxLen - minLen + 1);
    int[] s = new int[len];
    for (int j = 0; j < len; j++) {
      int t;
      do {
        t = first + rng.nextInt(vocab - first);
      } while (t == GOOD);
      s[j] = t;
    }
    for (int g = 0; g < goods; g++) {
      int pos;
      do {
        pos = rng.nextInt(len);
      } while (s[pos] == GOOD);
      s[pos] = GOOD;
    }
    return s;
  }

  /** The pairs as pre-tokenized JSONL rows ({@code chosen_ids}, {@code rejected_ids}). */
  public static List<String> toJsonl(List<PreferencePair> pairs) {
    List<String> lines = new ArrayList<>(pairs.size());
    for (PreferencePair p : pairs) {
      lines.add(
          "{\"chosen_ids\": "
              + java.util.Arrays.toString(p.chosen())
              + ", \"rejected_ids\": "
              + java.util.Arrays.toString(p.rejected())
              + "}");
    }
    return lines;
  }
}
