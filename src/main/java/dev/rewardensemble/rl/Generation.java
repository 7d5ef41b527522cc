package dev.rewardensemble.rl;

import java.util.Arrays;

/**
 * One generated response.
 *
 * @param promptIds the prompt as given
 * @param responseIds the generated ids, including the end-of-sequence id when one was emitted
 * @param tokenLogprobs {@code log p(responseIds[i] | prompt, responseIds[:i])} under the unmodified
 *     model distribution (before temperature, top-k and top-p), one per response id
 * @param finished whether the response ended with the end-of-sequence id (false when it hit the
 *     token limit)
 */
public record Generation(
    int[] promptIds, int[] responseIds, float[] tokenLogprobs, boolean finished) {
  public Generation {
    if (responseIds.length != tokenLogprobs.length) {
      throw new IllegalArgumentException(
          responseIds.length + " response ids but " + tokenLogprobs.length + " log-probabilities");
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Generation g
        && Arrays.equals(promptIds, g.promptIds)
        && Arrays.equals(responseIds, g.responseIds)
        && Arrays.equals(tokenLogprobs, g.tokenLogprobs)
        && finished == g.finished;
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(responseIds) * 31 + Arrays.hashCode(tokenLogprobs) + (finished ? 1 : 0);
  }

  @Override
  public String toString() {
    return "Generation[prompt "
        + promptIds.length
        + " ids, response "
        + Arrays.toString(responseIds)
        + (finished ? ", finished]" : "]");
  }
}
