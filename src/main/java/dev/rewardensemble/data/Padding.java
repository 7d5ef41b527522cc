package dev.rewardensemble.data;

import java.util.Arrays;
import java.util.List;

/**
 * Pads token sequences to a {@link TokenBatch} as long as the longest sequence. Right padding (the
 * default) puts real tokens first, as in every reward-model batch of this project (the reward is
 * read at the last real token); left padding puts them last, as for generation.
 */
public final class Padding {
  private Padding() {}

  /**
   * Right-pads: row b holds sequence b, then {@code padId} up to the longest length.
   *
   * @throws IllegalArgumentException if the list or any sequence is empty
   */
  public static TokenBatch pad(List<int[]> seqs, int padId) {
    return build(seqs, padId, false);
  }

  /**
   * Left-pads: row b holds {@code padId} up to the longest length minus its own, then sequence b.
   *
   * @throws IllegalArgumentException if the list or any sequence is empty
   */
  public static TokenBatch leftPad(List<int[]> seqs, int padId) {
    return build(seqs, padId, true);
  }

  private static TokenBatch build(List<int[]> seqs, int padId, boolean left) {
    if (seqs.isEmpty()) {
      throw new IllegalArgumentException("cannot pad an empty list of sequences");
    }
    int time = 0;
    for (int i = 0; i < seqs.size(); i++) {
      if (seqs.get(i).length == 0) {
        throw new IllegalArgumentException("sequence " + i + " is empty");
      }
      time = Math.max(time, seqs.get(i).length);
    }
    int batch = seqs.size();
    int[] ids = new int[Math.multiplyExact(batch, time)];
    int[] mask = new int[ids.length];
    Arrays.fill(ids, padId);
    for (int b = 0; b < batch; b++) {
      int[] s = seqs.get(b);
      int start = b * time + (left ? time - s.length : 0);
      System.arraycopy(s, 0, ids, start, s.length);
      Arrays.fill(mask, start, start + s.length, 1);
    }
    return new TokenBatch(batch, time, ids, mask);
  }
}
