package dev.rewardensemble.cli;

import dev.rewardensemble.ensemble.AggregationConfig;
import picocli.CommandLine.Option;

/** {@code --aggregation}, {@code --beta}, {@code --lambda}: how ensemble members are combined. */
final class AggregationOptions {
  @Option(
      names = "--aggregation",
      description =
          "Combine members: mean, lcb (mean - beta*std, population std), min, uwo (mean - lambda*variance). Default: the model's (mean).")
  String rule;

  @Option(
      names = "--beta",
      defaultValue = "0.5",
      description = "LCB's beta (default: ${DEFAULT-VALUE}).")
  double beta;

  @Option(
      names = "--lambda",
      defaultValue = "1.0",
      description = "UWO's lambda (default: ${DEFAULT-VALUE}).")
  double lambda;

  /** The chosen aggregation, or {@code dflt} when none was given. */
  AggregationConfig resolve(AggregationConfig dflt) {
    if (rule == null) {
      return dflt;
    }
    return switch (rule) {
      case "mean" -> AggregationConfig.mean();
      case "lcb" -> AggregationConfig.lcb(beta);
      case "min" -> AggregationConfig.min();
      case "uwo" -> AggregationConfig.uwo(lambda);
      default ->
          throw new UserError("--aggregation must be mean, lcb, min or uwo, got '" + rule + "'");
    };
  }
}
