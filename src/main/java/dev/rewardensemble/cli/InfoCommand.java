package dev.rewardensemble.cli;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.model.Transformers;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme info}: what a model is and how many parameters it has. */
@Command(name = "info", mixinStandardHelpOptions = true, description = "Describe a model: architecture and parameter counts.")
public final class InfoCommand implements Callable<Integer> {
  @Option(names = "--model", required = true, description = "Hugging Face checkpoint directory.")
  Path model;

  @Override
  public Integer call() throws Exception {
    HfCheckpoint.Checkpoint c = HfCheckpoint.load(model);
    ModelConfig cfg = c.config();
    long trunk = Transformers.parameterShapes(cfg).values().stream()
        .mapToLong(dev.rewardensemble.io.FloatTensor::numElements).sum();
    long total = c.weights().values().stream().mapToLong(dev.rewardensemble.io.FloatTensor::size).sum();
    System.out.printf("model: %s%n", model);
    System.out.printf("architecture: %s (%s)%n", c.architecture(), cfg.modelType());
    System.out.printf("config: %s%n", cfg);
    System.out.printf("reward heads K: %d%n", c.numLabels());
    System.out.printf("parameters: trunk M = %d, total = %d%n", trunk, total);
    return 0;
  }
}
