package dev.rewardensemble.config;

import static dev.rewardensemble.config.ModelConfig.check;

import org.tensorflow.proto.ConfigProto;
import org.tensorflow.proto.GraphOptions;
import org.tensorflow.proto.OptimizerOptions;

/**
 * How sessions execute: thread pools and XLA. 0 threads means TensorFlow's default (one per core).
 *
 * @param intraOpThreads threads inside one op (MatMul); 0 = all cores
 * @param interOpThreads ops run concurrently; 0 = TensorFlow's default
 * @param xla compile the graph with XLA's global JIT
 */
public record ExecConfig(int intraOpThreads, int interOpThreads, boolean xla) {
  public ExecConfig {
    check(intraOpThreads >= 0, "intra-op threads must be >= 0, got " + intraOpThreads);
    check(interOpThreads >= 0, "inter-op threads must be >= 0, got " + interOpThreads);
  }

  /** TensorFlow's defaults, no XLA. */
  public static ExecConfig defaults() {
    return new ExecConfig(0, 0, false);
  }

  /** Single-threaded and deterministic, for tests. */
  public static ExecConfig deterministic() {
    return new ExecConfig(1, 1, false);
  }

  public ConfigProto toProto() {
    ConfigProto.Builder b = ConfigProto.newBuilder();
    if (intraOpThreads > 0) {
      b.setIntraOpParallelismThreads(intraOpThreads);
    }
    if (interOpThreads > 0) {
      b.setInterOpParallelismThreads(interOpThreads);
    }
    if (xla) {
      b.setGraphOptions(
          GraphOptions.newBuilder()
              .setOptimizerOptions(
                  OptimizerOptions.newBuilder().setGlobalJitLevel(OptimizerOptions.GlobalJitLevel.ON_1)));
    }
    return b.build();
  }
}
