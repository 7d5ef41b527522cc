package dev.rewardensemble.data;

/**
 * A padded batch of token sequences, row-major {@code [batch, time]}.
 *
 * @param batch number of sequences (rows)
 * @param time padded length (columns)
 * @param ids token ids, pad id at padded positions; element (b, t) at {@code b * time + t}
 * @param mask 1 where {@code ids} holds a real token, 0 at padding
 */
public record TokenBatch(int batch, int time, int[] ids, int[] mask) {
  public TokenBatch {
    if (batch < 0 || time < 0) {
      throw new IllegalArgumentException("negative shape [" + batch + ", " + time + "]");
    }
    long n = (long) batch * time;
    if (ids.length != n || mask.length != n) {
      throw new IllegalArgumentException(
          "shape ["
              + batch
              + ", "
              + time
              + "] needs "
              + n
              + " ids and mask values, got "
              + ids.length
              + " and "
              + mask.length);
    }
  }

  /** The id at row b, column t. */
  public int id(int b, int t) {
    return ids[index(b, t)];
  }

  /** The mask value at row b, column t. */
  public int mask(int b, int t) {
    return mask[index(b, t)];
  }

  /** Number of real tokens in row b. */
  public int length(int b) {
    int n = 0;
    for (int t = 0; t < time; t++) {
      n += mask[index(b, t)];
    }
    return n;
  }

  private int index(int b, int t) {
    if (b < 0 || b >= batch || t < 0 || t >= time) {
      throw new IndexOutOfBoundsException(
          "(" + b + ", " + t + ") outside [" + batch + ", " + time + "]");
    }
    return b * time + t;
  }
}
