package dev.rewardensemble.cli;

import dev.rewardensemble.config.ExecConfig;
import picocli.CommandLine.Option;

/** Execution options shared by every command that runs a graph (see {@link ExecConfig}). */
final class ExecOptions {
  @Option(names = "--threads", defaultValue = "0", description = "Intra-op threads (0 = one per core).")
  int threads;

  @Option(names = "--inter-threads", defaultValue = "0", description = "Inter-op threads (0 = TensorFlow's default).")
  int interThreads;

  @Option(names = "--xla", description = "Compile with XLA (on CPU also set TF_XLA_FLAGS=--tf_xla_cpu_global_jit).")
  boolean xla;

  @Option(names = "--device", defaultValue = "", description = "Place the graph on cpu, cpu:N, gpu or gpu:N (default: TensorFlow decides).")
  String device;

  @Option(names = "--no-gpu-memory-growth", description = "Let TensorFlow take all GPU memory up front.")
  boolean noGrowth;

  @Option(names = "--visible-devices", defaultValue = "", description = "GPUs to use, e.g. 0,1 (default: all).")
  String visibleDevices;

  @Option(names = "--log-placement", description = "Log the device of every op.")
  boolean logPlacement;

  ExecConfig config() {
    return new ExecConfig(threads, interThreads, xla, device, !noGrowth, visibleDevices, logPlacement);
  }
}
