package dev.rewardensemble.rl;

/**
 * How responses are sampled. Validated on construction; the messages name the bad value.
 *
 * <p>The filters apply in Hugging Face's order: divide the logits by {@code temperature}, keep the
 * {@code topK} most likely tokens, keep the smallest set of those whose probability mass reaches
 * {@code topP}, renormalise and draw. {@code greedy} ignores all three and takes the most likely
 * token. Log-probabilities reported with each token are always those of the unmodified model
 * distribution ({@code log_softmax} of the raw logits).
 *
 * @param maxNewTokens most tokens generated per prompt, at least 1
 * @param greedy take the arg-max token (temperature, top-p and top-k are then ignored)
 * @param temperature divides the logits; must be positive unless {@code greedy}
 * @param topP nucleus mass in (0, 1]; 1 turns it off
 * @param topK keep only the k most likely tokens; 0 turns it off
 * @param seed seeds the draws: the same seed and prompts give the same generations
 * @param stopAtEos stop a sequence after it emits the model's end-of-sequence token
 */
public record SamplingConfig(
    int maxNewTokens,
    boolean greedy,
    double temperature,
    double topP,
    int topK,
    long seed,
    boolean stopAtEos) {

  public SamplingConfig {
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens);
    }
    if (!greedy && !(temperature > 0 && Double.isFinite(temperature))) {
      throw new IllegalArgumentException(
          "temperature must be a positive finite number (or use greedy decoding), got "
              + temperature);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
    }
    if (topK < 0) {
      throw new IllegalArgumentException("topK must be >= 0 (0 = off), got " + topK);
    }
  }

  /** Greedy decoding of up to {@code maxNewTokens} tokens, stopping at EOS. */
  public static SamplingConfig greedy(int maxNewTokens) {
    return new SamplingConfig(maxNewTokens, true, 1.0, 1.0, 0, 0L, true);
  }

  /** Sampling for best-of-n: temperature 1.0, top-p 0.9 (the paper's setting), 256 new tokens. */
  public static SamplingConfig bestOfN() {
    return new SamplingConfig(256, false, 1.0, 0.9, 0, 0L, true);
  }

  /** Sampling of PPO rollouts: temperature 0.7, top-p 0.9 (the paper's setting), 256 new tokens. */
  public static SamplingConfig ppo() {
    return new SamplingConfig(256, false, 0.7, 0.9, 0, 0L, true);
  }

  public SamplingConfig withMaxNewTokens(int n) {
    return new SamplingConfig(n, greedy, temperature, topP, topK, seed, stopAtEos);
  }

  public SamplingConfig withSeed(long s) {
    return new SamplingConfig(maxNewTokens, greedy, temperature, topP, topK, s, stopAtEos);
  }

  public SamplingConfig withTopK(int k) {
    return new SamplingConfig(maxNewTokens, greedy, temperature, topP, k, seed, stopAtEos);
  }

  public SamplingConfig withStopAtEos(boolean stop) {
    return new SamplingConfig(maxNewTokens, greedy, temperature, topP, topK, seed, stop);
  }
}
