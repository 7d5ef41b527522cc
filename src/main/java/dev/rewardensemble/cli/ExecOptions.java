package dev.rewardensemble.cli;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.Recomputation;
import dev.rewardensemble.config.WeightStorage;
import picocli.CommandLine.Option;

/** Execution options shared by every command that runs a graph (see {@link ExecConfig}). */
final class ExecOptions {
  @Option(
      names = "--threads",
      defaultValue = "0",
      description = "Intra-op threads (0 = one per core).")
  int threads;

  @Option(
      names = "--inter-threads",
      defaultValue = "0",
      description = "Inter-op threads (0 = TensorFlow's default).")
  int interThreads;

  @Option(
      names = "--xla",
      arity = "0..1",
      defaultValue = "${sys:rme.xla:-off}",
      fallbackValue = "on",
      paramLabel = "off|auto|on",
      description =
          "XLA's JIT: off compiles nothing; auto compiles scoring and reward training in float32"
              + " (sequence lengths padded to a few buckets, so compilations stay few) and leaves"
              + " generation and PPO on TensorFlow's kernels; on (or --xla alone) compiles every"
              + " graph, the decode loop included (default: ${DEFAULT-VALUE}; the Java property"
              + " rme.xla changes it).")
  String xla;

  @Option(
      names = "--compute",
      defaultValue = "float32",
      description =
          "Precision of the matrix products: float32 or bfloat16 (bfloat16 inputs, float32 results and weights; default: ${DEFAULT-VALUE}).")
  String compute;

  @Option(
      names = "--weights",
      defaultValue = "auto",
      description =
          "Storage of frozen weights (the trunk when scoring, of a LoRA ensemble): float32, bfloat16 or auto (bfloat16 when the checkpoint is bf16, which is lossless; else float32; default: ${DEFAULT-VALUE}).")
  String weights;

  @Option(
      names = "--device",
      defaultValue = "",
      description = "Place the graph on cpu, cpu:N, gpu or gpu:N (default: TensorFlow decides).")
  String device;

  @Option(
      names = "--no-gpu-memory-growth",
      description = "Let TensorFlow take all GPU memory up front.")
  boolean noGrowth;

  @Option(
      names = "--visible-devices",
      defaultValue = "",
      description = "GPUs to use, e.g. 0,1 (default: all).")
  String visibleDevices;

  @Option(names = "--log-placement", description = "Log the device of every op.")
  boolean logPlacement;

  ExecConfig config() {
    return new ExecConfig(
        threads,
        interThreads,
        xlaMode(xla),
        device,
        !noGrowth,
        visibleDevices,
        logPlacement,
        precision(compute),
        storage(weights),
        Recomputation.NONE); // commands that train set it from their own --recompute
  }

  /** {@code --xla}'s value, or a user error naming the option. */
  static ExecConfig.XlaMode xlaMode(String xla) {
    try {
      return ExecConfig.XlaMode.parse(xla);
    } catch (IllegalArgumentException e) {
      throw new UserError("--xla: " + e.getMessage());
    }
  }

  /** {@code --weights}'s value, or a user error naming the option. */
  static WeightStorage storage(String weights) {
    try {
      return WeightStorage.parse(weights);
    } catch (IllegalArgumentException e) {
      throw new UserError("--weights: " + e.getMessage());
    }
  }

  /** {@code --compute}'s value, or a user error naming the option. */
  static Precision precision(String compute) {
    try {
      return Precision.parse(compute);
    } catch (IllegalArgumentException e) {
      throw new UserError("--compute: " + e.getMessage());
    }
  }
}
