package dev.rewardensemble.bench;

import dev.rewardensemble.config.ExecConfig;

/**
 * Hidden entry point for investigating the machine: peak float32 matmul GFLOP/s per thread count
 * and size. Usage: {@code java -cp CP dev.rewardensemble.bench.MatmulProbe [N [THREADS...]]}.
 */
public final class MatmulProbe {
  private MatmulProbe() {}

  public static void main(String[] args) throws Exception {
    int n = args.length > 0 ? Integer.parseInt(args[0]) : 2048;
    int[] threads =
        args.length > 1
            ? java.util.Arrays.stream(args, 1, args.length).mapToInt(Integer::parseInt).toArray()
            : new int[] {1, 2};
    for (int t : threads) {
      double f = Workloads.peakMatmulFlops(new ExecConfig(t, 1, false), n, 10);
      System.out.printf("n=%d intra=%d: %.1f GFLOP/s%n", n, t, f / 1e9);
    }
  }
}
