package dev.rewardensemble.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.ScoreRow;
import dev.rewardensemble.data.ScoreRows;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.MemberScores;
import dev.rewardensemble.server.ScoreOutput;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme score}: rewards for JSONL rows, one output row per input row, same order. */
@Command(
    name = "score",
    mixinStandardHelpOptions = true,
    description = {
      "Score sequences with a reward model.",
      "Input rows: {\"input_ids\": [..]} or {\"prompt\": \"..\", \"response\": \"..\"} (text rows are",
      "tokenized with the model's tokenizer.json and the prompt template).",
      "Output rows: {\"line\": N, \"reward\": r} (plus \"id\" when the input row has one); for an ensemble",
      "also \"members\" (raw), \"members_standardized\" (when normalised), \"mean\", \"std\" (population),",
      "and \"reward\" is the chosen aggregation."
    })
public final class ScoreCommand implements Callable<Integer> {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Option(
      names = "--model",
      required = true,
      description =
          "Hugging Face checkpoint, run directory of train-rm (any ensemble kind), or SavedModel directory.")
  Path model;

  @Option(
      names = "--lora",
      split = ",",
      description =
          "PEFT LoRA adapter directories scored as ensemble members over --model (the base).")
  List<Path> lora;

  @CommandLine.Mixin AggregationOptions aggregation = new AggregationOptions();

  @Option(
      names = "--no-normalize",
      description =
          "Aggregate raw member rewards even when the model stores a per-member normalisation.")
  boolean noNormalize;

  @Option(names = "--data", required = true, description = "Input JSONL file.")
  Path data;

  @Option(
      names = "--out",
      description = "Output JSONL file, or - for standard output (the default).")
  Path out;

  @Option(
      names = "--batch-size",
      defaultValue = "16",
      description = "Sequences per Session.run (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--allow-nonfinite",
      description =
          "Write a NaN/Inf reward as null and count it instead of stopping (default: an error naming the model and line).")
  boolean allowNonfinite;

  @CommandLine.Mixin TextOptions text = new TextOptions();

  @CommandLine.Mixin RewardTokenOption rewardToken = new RewardTokenOption();

  @CommandLine.Mixin ExecOptions execOptions = new ExecOptions();

  @Override
  public Integer call() throws Exception {
    Outputs.paths()
        .input("--model", model)
        .inputs("--lora", lora)
        .inputFile("--data", data)
        .inputFile("--tokenizer", text.tokenizer)
        .outputFile("--out", out)
        .check();
    if (batchSize < 1) {
      throw new UserError("--batch-size must be >= 1, got " + batchSize);
    }
    text.check();
    ExecConfig exec = execOptions.config();
    MemoryCheck.score(model, lora, batchSize, text.maxLength, exec.weights())
        .ifPresent(p -> MemoryCheck.require(p, "rme score of " + model));
    try (RewardModel rm = RewardModel.load(model, lora, exec, rewardToken.rule())) {
      AggregationConfig agg = aggregation.resolve(rm.aggregation());
      try (Tokenizer tok = text.openTokenizer(rm.tokenizer())) {
        Encoder enc = text.encoder(tok, rm.config().maxPositions());
        List<ScoreRow> rows = ScoreRows.read(data, enc, OptionalInt.of(rm.config().vocabSize()));
        List<int[]> seqs = new ArrayList<>(rows.size());
        rows.forEach(r -> seqs.add(r.ids()));
        float[][] rewards = rm.score(seqs, batchSize);
        List<String> lines = new ArrayList<>(rows.size());
        int nonfinite = 0;
        for (int i = 0; i < rows.size(); i++) {
          if (!allFinite(rewards[i])) {
            if (!allowNonfinite) {
              throw new UserError(
                  model
                      + ": non-finite reward for line "
                      + rows.get(i).line()
                      + " (check the checkpoint for NaN/Inf weights; --allow-nonfinite writes null instead)");
            }
            nonfinite++;
          }
          MemberScores s =
              noNormalize ? rm.aggregateRaw(rewards[i], agg) : rm.aggregate(rewards[i], agg);
          lines.add(
              JSON.writeValueAsString(ScoreOutput.nullNonfinite(Outputs.scoreRow(rows.get(i), s))));
        }
        if (nonfinite > 0) {
          System.err.printf(
              "rme score: %d of %d rows had non-finite rewards (written as null)%n",
              nonfinite, rows.size());
        }
        Outputs.writeLines(out, lines);
        if (!Outputs.isStdout(out)) {
          System.err.printf(
              "scored %d rows (%d truncated) -> %s%n", rows.size(), enc.truncatedCount(), out);
        }
      }
    }
    return 0;
  }

  private static boolean allFinite(float[] a) {
    for (float v : a) {
      if (!Float.isFinite(v)) {
        return false;
      }
    }
    return true;
  }
}
