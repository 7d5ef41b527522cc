package dev.rewardensemble.cli;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.spark.SparkScoreJob;
import dev.rewardensemble.spark.SparkScoreSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code rme spark-score}: {@code rme score}, Best-of-n selection and rejection sampling as an
 * Apache Spark job. Spark's classes are only touched when the command runs ({@link
 * dev.rewardensemble.spark.SparkScoreJob}), so the other commands need no Spark on the classpath;
 * {@link #main} is the class to give {@code spark-submit}.
 */
@Command(
    name = "spark-score",
    mixinStandardHelpOptions = true,
    description = {
      "Score Parquet or JSONL rows with a reward model or ensemble as an Apache Spark job.",
      "Rows: every shape rme score reads (input_ids, prompt/response, messages) and the candidates",
      "of rme best-of-n --candidates-out (prompt_ids + response_ids). Output: Spark's directory of",
      "part files (JSON lines or Parquet) with the input's columns and rme score's fields (reward;",
      "members, members_standardized, mean, std and aggregation for an ensemble).",
      "--best-of-n --prompt-key KEY keeps the best row per KEY under the aggregation; --threshold X",
      "keeps rows whose reward is >= X (rejection sampling)."
    })
public final class SparkScoreCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec commandSpec;

  @Option(
      names = "--model",
      required = true,
      description =
          "Checkpoint, run directory of train-rm or SavedModel, at a path every executor can read.")
  Path model;

  @Option(names = "--lora", split = ",", description = "PEFT adapters over --model (the base).")
  List<Path> lora;

  @Option(
      names = "--data",
      required = true,
      description = "Input: a file or directory of JSON-lines or Parquet files.")
  String data;

  @Option(
      names = "--input-format",
      defaultValue = "auto",
      description =
          "jsonl, parquet or auto (parquet when --data ends in .parquet or is a directory holding"
              + " .parquet files; default: ${DEFAULT-VALUE}).")
  String inputFormat;

  @Option(
      names = "--out",
      required = true,
      description = "Output directory (must not exist): Spark's part files.")
  String out;

  @Option(
      names = "--format",
      defaultValue = "jsonl",
      description = "Output format: jsonl or parquet (default: ${DEFAULT-VALUE}).")
  String format;

  @Option(
      names = "--master",
      description =
          "Spark master (local[N], yarn, k8s://..., spark://...; default: spark.master, else"
              + " local[*]).")
  String master;

  @Option(
      names = "--conf",
      description = "Spark setting KEY=VALUE (repeatable), as spark-submit's --conf.")
  Map<String, String> conf;

  @CommandLine.Mixin AggregationOptions aggregation = new AggregationOptions();

  @Option(
      names = "--no-normalize",
      description = "Aggregate raw member rewards even when the ensemble stores a normalisation.")
  boolean noNormalize;

  @Option(
      names = "--best-of-n",
      description = "Keep the best row per --prompt-key under the aggregation.")
  boolean bestOfN;

  @Option(
      names = "--prompt-key",
      description = "Column grouping the candidates of one prompt (with --best-of-n).")
  String promptKey;

  @Option(
      names = "--candidates-out",
      description = "With --best-of-n: also write every candidate's scores and 'selected' here.")
  String candidatesOut;

  @Option(
      names = "--threshold",
      description = "Keep only rows whose (aggregated) reward is >= this (rejection sampling).")
  Double threshold;

  @Option(
      names = "--skip-bad-rows",
      description = "Skip and count bad rows instead of failing the job naming the first.")
  boolean skipBadRows;

  @Option(names = "--allow-nonfinite", description = "Write a NaN/Inf reward as null.")
  boolean allowNonfinite;

  @Option(
      names = "--batch-size",
      defaultValue = "16",
      description = "Sequences per Session.run (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--chunk-rows",
      defaultValue = "256",
      description =
          "Rows a task reads, sorts by length into batches and scores at a time (default:"
              + " ${DEFAULT-VALUE}).")
  int chunkRows;

  @Option(
      names = "--sessions",
      defaultValue = "shared",
      description =
          "shared: one model per executor JVM used by all its tasks; per-slot: one per task slot"
              + " (default: ${DEFAULT-VALUE}).")
  String sessions;

  @CommandLine.Mixin TextOptions text = new TextOptions();

  @CommandLine.Mixin RewardTokenOption rewardToken = new RewardTokenOption();

  @CommandLine.Mixin ExecOptions execOptions = new ExecOptions();

  /** The class given to {@code spark-submit}: its arguments are {@code rme spark-score}'s. */
  public static void main(String[] args) {
    String[] all = new String[args.length + 1];
    all[0] = "spark-score";
    System.arraycopy(args, 0, all, 1, args.length);
    System.exit(Main.run(all));
  }

  /** Whether Spark's classes are on this JVM's classpath. */
  static boolean sparkPresent() {
    try {
      Class.forName(
          "org.apache.spark.sql.SparkSession", false, SparkScoreCommand.class.getClassLoader());
      return true;
    } catch (ClassNotFoundException | LinkageError e) {
      return false;
    }
  }

  @Override
  public Integer call() throws Exception {
    if (!sparkPresent()) {
      throw new UserError(
          "spark-score needs Apache Spark's jars on the classpath: run it with ./rme (which adds"
              + " target/classpath-spark.txt) or through spark-submit with the job jar of"
              + " 'mvn -Pspark package'");
    }
    Outputs.paths()
        .input("--model", model)
        .inputs("--lora", lora)
        .inputFile("--tokenizer", text.tokenizer)
        .check();
    if (bestOfN != (promptKey != null)) {
      throw new UserError("--best-of-n and --prompt-key KEY go together");
    }
    text.check();
    AggregationConfig agg = aggregation.resolve(null);
    List<String> adapters = new ArrayList<>();
    if (lora != null) {
      lora.forEach(p -> adapters.add(p.toString()));
    }
    SparkScoreSpec.Builder b =
        SparkScoreSpec.builder(model.toString(), data, out)
            .lora(adapters)
            .inputFormat(inputFormat(data, inputFormat))
            .outputFormat(format)
            .candidatesOut(candidatesOut)
            .master(master)
            .normalize(!noNormalize)
            .tokenizer(text.tokenizer == null ? null : text.tokenizer.toString())
            .template(text.promptTemplate())
            .maxLength(text.maxLength == null ? 0 : text.maxLength)
            .truncation(text.truncation())
            .rewardToken(rewardToken.rule().orElse(null))
            .batchSize(batchSize)
            .chunkRows(chunkRows)
            .exec(execOptions.config())
            .sessions(SparkScoreSpec.Sessions.parse(sessions))
            .bestOfN(promptKey)
            .threshold(threshold)
            .skipBadRows(skipBadRows)
            .allowNonfinite(allowNonfinite);
    if (agg != null) {
      b.aggregation(agg.rule(), agg.beta(), agg.lambda());
    }
    if (conf != null) {
      conf.forEach(b::conf);
    }
    SparkScoreJob.run(b.build(), commandSpec.commandLine().getErr());
    return 0;
  }

  /** {@code --input-format}: auto looks at the name, or at the files of a local directory. */
  static String inputFormat(String data, String given) throws java.io.IOException {
    String f = given.toLowerCase(Locale.ROOT);
    if (!f.equals("auto")) {
      return f;
    }
    if (data.endsWith(".parquet")) {
      return "parquet";
    }
    Path p = Path.of(data.startsWith("file:") ? data.substring(5) : data);
    if (!data.contains("://") && Files.isDirectory(p)) {
      try (var s = Files.list(p)) {
        if (s.anyMatch(x -> x.getFileName().toString().endsWith(".parquet"))) {
          return "parquet";
        }
      }
    }
    return "json";
  }
}
