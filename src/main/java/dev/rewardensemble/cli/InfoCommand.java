package dev.rewardensemble.cli;

import dev.rewardensemble.ensemble.EnsembleModel;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme info}: what a model or ensemble is and how many parameters it holds. */
@Command(
    name = "info",
    mixinStandardHelpOptions = true,
    description = {
      "Describe a reward model or ensemble: kind, architecture, K, parameter counts.",
      "Counts in the paper's terms",
      "(M trunk, L head, A adapters per member): single M+L, independent K(M+L), linear M+KL, LoRA M+KL+KA."
    })
public final class InfoCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      description = "Checkpoint, run directory, or base (with --lora).")
  Path model;

  @Option(names = "--lora", split = ",", description = "PEFT adapter directories over --model.")
  List<Path> lora;

  @Override
  public Integer call() throws Exception {
    EnsembleModel m = EnsembleModel.load(model, lora);
    EnsembleModel.ParameterCounts c = m.parameterCounts();
    int k = m.members();
    String formula =
        switch (m.kind()) {
          case SINGLE -> "M+L = " + (c.trunk() + c.head());
          case INDEPENDENT -> "K(M+L) = " + (k * (c.trunk() + c.head()));
          case LINEAR -> "M+KL = " + (c.trunk() + k * c.head());
          case LORA -> "M+KL+KA = " + (c.trunk() + k * c.head() + k * c.adapter());
        };
    System.out.printf("model: %s%n", model);
    System.out.printf("kind: %s, K = %d%n", m.kind().id(), k);
    System.out.printf("architecture: %s%n", m.config());
    if (m.lora() != null) {
      System.out.printf("lora: %s%n", m.lora());
    }
    System.out.printf(
        "parameters: M = %d (trunk), L = %d (one head), A = %d (one member's adapters)%n",
        c.trunk(), c.head(), c.adapter());
    System.out.printf("total in memory: %d  [%s]%n", c.total(), formula);
    System.out.printf(
        "aggregation: %s%s%n",
        m.aggregation(), m.normalization().isPresent() ? ", per-member normalisation" : "");
    return 0;
  }
}
