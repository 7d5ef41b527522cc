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

  /** The shortest sequence-length bucket ({@link #bucket}). */
  public static final int MIN_BUCKET = 16;

  /**
   * The sequence length a batch of longest sequence {@code t} is padded to when its graph is
   * compiled with XLA, which compiles once per distinct shape: the smallest of 16, 24, 32, 48, 64,
   * 96, 128, 192, ... (powers of two and one and a half times them) that holds {@code t}, capped at
   * {@code max} (the model's positions) — so a whole corpus of lengths up to {@code max} runs
   * through at most {@code 2 log2(max / 16) + 1} shapes, at most a third of each row padding.
   * Lengths above {@code max} are returned as they are (the graph refuses them as before).
   *
   * <p>Right padding with mask 0 never changes a reward: every graph of the project is causal, so
   * no real token attends to a position after it, and the reward token ({@link
   * dev.rewardensemble.config.RewardToken}) is an attended one.
   */
  public static int bucket(int t, int max) {
    if (t < 1) {
      throw new IllegalArgumentException("sequence length must be >= 1, got " + t);
    }
    if (t >= max) {
      return t;
    }
    int b = MIN_BUCKET;
    while (b < t) {
      // 16 -> 24 -> 32 -> 48 -> 64 -> ...: alternately 1.5x and 4/3x
      b = Integer.bitCount(b) == 1 ? b + b / 2 : (b / 3) * 4;
    }
    return Math.min(b, max);
  }

  /**
   * The number of rows a batch of {@code b} rows is padded to when its graph is compiled: the next
   * power of two (a partial last batch then costs at most one compilation per power of two).
   */
  public static int bucketRows(int b) {
    if (b < 1) {
      throw new IllegalArgumentException("batch must be >= 1 rows, got " + b);
    }
    return Integer.highestOneBit(b) == b ? b : Integer.highestOneBit(b) << 1;
  }

  /**
   * A right-padded batch ({@code ids}, {@code mask} row-major {@code [b, t]}) widened to {@code
   * [bb, tb]}: each row gets {@code tb - t} columns of {@code padId} with mask 0 on its right, and
   * rows {@code b..bb-1} are copies of row 0 (real rows, so every row has an attended reward token;
   * their results are dropped). Returns {@code {ids, mask}}.
   */
  public static int[][] toBucket(int[] ids, int[] mask, int b, int t, int bb, int tb, int padId) {
    if (bb < b || tb < t || ids.length != b * t || mask.length != b * t || b < 1) {
      throw new IllegalArgumentException(
          "cannot pad a " + b + " x " + t + " batch to " + bb + " x " + tb);
    }
    int[] outIds = new int[Math.multiplyExact(bb, tb)];
    int[] outMask = new int[outIds.length];
    Arrays.fill(outIds, padId);
    for (int r = 0; r < bb; r++) {
      int src = (r < b ? r : 0) * t;
      System.arraycopy(ids, src, outIds, r * tb, t);
      System.arraycopy(mask, src, outMask, r * tb, t);
    }
    return new int[][] {outIds, outMask};
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
