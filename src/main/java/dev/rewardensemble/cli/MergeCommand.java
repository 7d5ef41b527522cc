package dev.rewardensemble.cli;

import dev.rewardensemble.api.ModelMerge;
import dev.rewardensemble.ensemble.WeightAveraging;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme merge}: WARM weight averaging of an ensemble into one reward model. */
@Command(
    name = "merge",
    mixinStandardHelpOptions = true,
    description = {
      "Average the weights of an ensemble's members into one reward model (WARM, Rame et al. 2024):",
      "an ensemble at one model's inference cost. The members must share an initialisation.",
      "  linear: the K heads averaged (the reward is the mean of the raw member rewards).",
      "  lora: the adapters' mean delta folded into the trunk (--into base), or one adapter of rank",
      "    K*R that is exactly that mean delta (--into adapter); heads averaged.",
      "  independent: every weight averaged, when each member's run.json records the same base.",
      "--out is a new model directory (written whole or not at all) that every command takes."
    })
public final class MergeCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      description = "An ensemble: a run directory, a K-head checkpoint, or the base (with --lora).")
  Path model;

  @Option(names = "--lora", split = ",", description = "PEFT adapter directories over --model.")
  List<Path> lora;

  @Option(names = "--out", required = true, description = "The new model directory.")
  Path out;

  @Option(
      names = "--into",
      defaultValue = "base",
      description =
          "LoRA ensembles: base (a single model) or adapter (one PEFT adapter) (default: ${DEFAULT-VALUE}).")
  String into;

  @Option(
      names = "--members",
      split = ",",
      description = "The members to average, by index (default: all), e.g. 0,2.")
  List<Integer> members;

  @Option(
      names = "--assume-shared-init",
      description =
          "Independent members whose run.json records no base model: average them anyway.")
  boolean assumeSharedInit;

  @Override
  public Integer call() throws Exception {
    Outputs.paths()
        .input("--model", model)
        .inputs("--lora", lora)
        .outputDir("--out", out.toAbsolutePath().normalize())
        .check();
    ModelMerge.Result r =
        ModelMerge.merge(
            ModelMerge.Request.of(model, out)
                .withLora(lora)
                .withMembers(members)
                .withInto(WeightAveraging.Into.byName(into))
                .withAssumeSharedInit(assumeSharedInit));
    System.err.printf(
        "merged members %s of %s (%s, K=%d) into one %s model -> %s (shared initialisation: %s)%n",
        r.members(), model, r.sourceKind().id(), r.sourceK(), r.kind().id(), out, r.sharedInit());
    return 0;
  }
}
