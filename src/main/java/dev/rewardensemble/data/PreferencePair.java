package dev.rewardensemble.data;

/**
 * One comparison for Bradley-Terry training: the model should score {@code chosen} above {@code
 * rejected}.
 *
 * @param chosen token ids of the preferred sequence (prompt + response [+ EOS])
 * @param rejected token ids of the other sequence
 * @param margin optional preference margin from the data's {@code margin} column, 0 if absent
 * @param line 1-based line where the row starts in its file
 */
public record PreferencePair(int[] chosen, int[] rejected, float margin, int line) {}
