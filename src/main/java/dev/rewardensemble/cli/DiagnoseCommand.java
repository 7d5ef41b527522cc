package dev.rewardensemble.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.PreferenceData;
import dev.rewardensemble.data.PreferenceFormat;
import dev.rewardensemble.data.PreferencePair;
import dev.rewardensemble.data.PreferenceReader;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.ensemble.Diagnostics;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme diagnose}: ensemble diagnostics on a preference set. */
@Command(
    name = "diagnose",
    mixinStandardHelpOptions = true,
    description = {
      "Ensemble diagnostics on preference pairs: accuracies, correlations, disagreement.",
      "Accuracy of each member and of each aggregation (mean, LCB 0.1",
      "and 0.5, min, UWO 1.0), pairwise correlation of the members' rewards, and accuracy by quartile of member",
      "disagreement (std of the members' margins). Prints a table; --json writes every number."
    })
public final class DiagnoseCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      description = "Run directory, checkpoint, SavedModel, or base (with --lora).")
  Path model;

  @Option(names = "--lora", split = ",", description = "PEFT adapter directories over --model.")
  List<Path> lora;

  @Option(
      names = "--data",
      required = true,
      description = "Preference pairs (AlpacaFarm, TRL or pre-tokenized).")
  Path data;

  @picocli.CommandLine.Mixin RewardTokenOption rewardToken = new RewardTokenOption();

  @Option(names = "--json", description = "Write the diagnostics as JSON here.")
  Path json;

  @Option(
      names = "--batch-size",
      defaultValue = "16",
      description = "Sequences per Session.run (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--template",
      defaultValue = "alpaca",
      description =
          "Prompt template for text data: alpaca, raw or chat; conversational rows always use"
              + " the chat template (default: ${DEFAULT-VALUE}).")
  String template;

  @Option(
      names = "--no-normalize",
      description = "Aggregate raw member rewards even when the model stores a normalisation.")
  boolean noNormalize;

  @Override
  public Integer call() throws Exception {
    Outputs.paths()
        .input("--model", model)
        .inputs("--lora", lora)
        .inputFile("--data", data)
        .outputFile("--json", json)
        .check();
    ExecConfig exec = ExecConfig.defaults();
    try (RewardModel rm = RewardModel.load(model, lora, exec, rewardToken.rule())) {
      Path tokPath = rm.tokenizer().orElse(null);
      PreferenceData d;
      try (Tokenizer tok = tokPath == null ? null : Tokenizer.load(tokPath)) {
        d =
            PreferenceReader.builder()
                .tokenizer(tok)
                .template(PromptTemplate.byName(template))
                .maxLength(rm.config().maxPositions())
                .eosId(OptionalInt.empty())
                .truncation(Encoder.Truncation.LEFT)
                .format(PreferenceFormat.AUTO)
                .skipBadRows(false)
                .vocabSize(OptionalInt.of(rm.config().vocabSize()))
                .build()
                .read(data);
      }
      List<int[]> c = new ArrayList<>();
      List<int[]> r = new ArrayList<>();
      for (PreferencePair p : d.pairs()) {
        c.add(p.chosen());
        r.add(p.rejected());
      }
      Diagnostics diag =
          Diagnostics.compute(
              List.of(rm.score(c, batchSize)),
              List.of(rm.score(r, batchSize)),
              noNormalize ? java.util.Optional.empty() : rm.normalization(),
              Diagnostics.defaultAggregations());
      System.out.printf(
          "%s (%s, K=%d) on %d pairs of %s%n",
          model, rm.kind().id(), rm.heads(), diag.pairs(), data);
      for (int k = 0; k < diag.memberAccuracy().length; k++) {
        System.out.printf("  member %d accuracy %.4f%n", k, diag.memberAccuracy()[k]);
      }
      diag.aggregationAccuracy()
          .forEach((name, acc) -> System.out.printf("  %-10s accuracy %.4f%n", name, acc));
      System.out.printf(
          "  member reward correlation (mean off-diagonal) %.4f%n",
          diag.meanOffDiagonalCorrelation());
      for (double[] row : diag.correlation()) {
        System.out.println(
            "    "
                + Arrays.toString(
                    Arrays.stream(row).map(v -> Math.round(v * 1e4) / 1e4).toArray()));
      }
      for (Diagnostics.Bin b : diag.disagreementBins()) {
        System.out.printf(
            "  disagreement [%.4f, %.4f]: %d pairs, mean accuracy %.4f%n",
            b.low(), b.high(), b.pairs(), b.accuracy());
      }
      if (json != null) {
        Outputs.writeLines(
            json,
            List.of(new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(diag)));
      }
    }
    return 0;
  }
}
