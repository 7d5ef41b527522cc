package dev.rewardensemble.data;

import java.util.Arrays;

/**
 * The token ids of one reward-model input.
 *
 * @param ids prompt ids, then response ids, then the EOS id if configured (after truncation)
 * @param promptLength how many leading ids belong to the prompt (0 for pre-tokenized input)
 * @param truncated whether any token was dropped to fit the maximum length
 */
public record EncodedSequence(int[] ids, int promptLength, boolean truncated) {
  public EncodedSequence {
    if (promptLength < 0 || promptLength > ids.length) {
      throw new IllegalArgumentException(
          "promptLength " + promptLength + " outside [0, " + ids.length + "]");
    }
  }

  /** Number of ids. */
  public int length() {
    return ids.length;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof EncodedSequence s
        && Arrays.equals(ids, s.ids)
        && promptLength == s.promptLength
        && truncated == s.truncated;
  }

  @Override
  public int hashCode() {
    return 31 * (31 * Arrays.hashCode(ids) + promptLength) + Boolean.hashCode(truncated);
  }

  @Override
  public String toString() {
    return "EncodedSequence["
        + ids.length
        + " ids, prompt "
        + promptLength
        + (truncated ? ", truncated]" : "]");
  }
}
