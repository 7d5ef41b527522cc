package dev.rewardensemble.bench;

import dev.rewardensemble.config.ExecConfig;

/**
 * Settings of one benchmark run.
 *
 * @param batch sequences per scoring batch, and preference pairs per training step (a step sees
 *     {@code 2 * batch} sequences: chosen and rejected)
 * @param seq tokens per sequence (no padding)
 * @param k ensemble members for workload (e)
 * @param warmup unmeasured runs before measuring
 * @param reps measured runs (the median is reported)
 */
public record BenchOptions(
    int batch, int seq, int k, int warmup, int reps, ExecConfig exec, long seed) {
  public BenchOptions {
    if (batch < 1 || seq < 1 || k < 1 || warmup < 0 || reps < 1) {
      throw new IllegalArgumentException(
          "batch, seq, k and reps must be >= 1 and warmup >= 0, got batch "
              + batch
              + ", seq "
              + seq
              + ", k "
              + k
              + ", warmup "
              + warmup
              + ", reps "
              + reps);
    }
  }
}
