package dev.rewardensemble.spark;

import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.EnsembleSpec;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.function.FilterFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.expressions.Window;
import org.apache.spark.sql.expressions.WindowSpec;
import org.apache.spark.sql.functions;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.util.CollectionAccumulator;
import org.apache.spark.util.LongAccumulator;

/**
 * The driver of {@code rme spark-score}: reads Parquet or JSONL rows, scores them with {@link
 * PartitionScorer} (one model per executor JVM, streamed chunks), optionally keeps the best
 * candidate per prompt ({@code --best-of-n --prompt-key}) and the rows above a threshold ({@code
 * --threshold}), and writes Parquet or JSON lines through Spark's file committers.
 *
 * <p>Output guarantees: an output directory that already exists is refused before any work; rows
 * reach it only through Spark's commit protocol (a task attempt writes under {@code _temporary},
 * and only the attempt Spark commits is moved in; {@code FileOutputCommitter} algorithm 1, set
 * explicitly), so a retried or speculative task leaves no duplicates; {@code _SUCCESS} is written
 * last, and a failed job's output directory is removed.
 */
public final class SparkScoreJob {
  private SparkScoreJob() {}

  /**
   * A bad input row (or a non-finite reward) that fails the job: {@code FILE (partition P, row R[,
   * id X]): field: problem}. Thrown on an executor, found again in the job's failure on the driver.
   */
  public static final class BadRowError extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public BadRowError(String message) {
      super(message);
    }
  }

  /**
   * What a job did.
   *
   * @param scored rows scored (accumulated by the tasks; a stage Spark recomputes counts again)
   * @param badRows rows skipped with {@code --skip-bad-rows}
   * @param badExamples a few of the skipped rows' problems
   * @param nonfinite rows with a NaN/Inf reward written as null ({@code --allow-nonfinite})
   * @param written rows in {@code --out}
   * @param seconds wall time of the job
   */
  public record Summary(
      long scored,
      long badRows,
      List<String> badExamples,
      long nonfinite,
      long written,
      double seconds) {}

  /** Runs the job; progress and the summary go to {@code err}. */
  public static Summary run(SparkScoreSpec spec, PrintWriter err) throws IOException {
    long t0 = System.nanoTime();
    ModelInfo info = modelInfo(spec);
    boolean hadSession = SparkSession.getDefaultSession().isDefined();
    SparkSession.Builder b = SparkSession.builder().appName("rme spark-score");
    if (spec.master() != null) {
      b = b.master(spec.master());
    } else if (!hadSession && !new SparkConf().contains("spark.master")) {
      b = b.master("local[*]");
    }
    // Algorithm 1 commits task output into the job's _temporary directory and moves it to the
    // output only at job commit: a failed job leaves no part files behind.
    b = b.config("spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version", "1");
    for (var e : spec.conf().entrySet()) {
      b = b.config(e.getKey(), e.getValue());
    }
    SparkSession spark = b.getOrCreate();
    if (hadSession
        && spec.master() != null
        && !spec.master().equals(spark.sparkContext().master())) {
      err.printf(
          "rme spark-score: a Spark session with master %s is running in this JVM; it is used, not %s%n",
          spark.sparkContext().master(), spec.master());
    }
    try {
      return run(spark, spec, info, err, t0);
    } finally {
      if (spark.sparkContext().isLocal()) {
        ExecutorModels.closeAll(); // this JVM was the executor
      }
      if (!hadSession) {
        spark.stop();
      }
    }
  }

  private static Summary run(
      SparkSession spark, SparkScoreSpec spec, ModelInfo info, PrintWriter err, long t0)
      throws IOException {
    var hconf = spark.sparkContext().hadoopConfiguration();
    Path in = new Path(spec.data());
    FileSystem inFs = in.getFileSystem(hconf);
    if (!inFs.exists(in)) {
      throw new IllegalArgumentException("--data " + spec.data() + ": no such file or directory");
    }
    List<Path> outputs = new ArrayList<>();
    outputs.add(new Path(spec.out()));
    if (spec.candidatesOut() != null) {
      outputs.add(new Path(spec.candidatesOut()));
    }
    for (Path o : outputs) {
      if (o.getFileSystem(hconf).exists(o)) {
        throw new IllegalArgumentException(
            o
                + " exists: rme spark-score writes a new directory of part files and never"
                + " replaces one (remove it or choose another)");
      }
    }

    Dataset<Row> input =
        spec.inputFormat().equals("json")
            ? spark
                .read()
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", ScoreColumns.CORRUPT)
                .json(spec.data())
            : spark.read().parquet(spec.data());
    List<String> columns = new ArrayList<>(Arrays.asList(input.schema().fieldNames()));
    columns.remove(ScoreColumns.CORRUPT);
    input = input.withColumn(ScoreColumns.FILE, functions.input_file_name());
    ScoreColumns cols = new ScoreColumns(input.schema(), info.k(), info.standardized());
    if (!cols.replaced.isEmpty()) {
      err.printf(
          "rme spark-score: input columns %s are replaced by this job's output fields%n",
          cols.replaced);
    }
    if (spec.promptKey() != null && !columns.contains(spec.promptKey())) {
      throw new IllegalArgumentException(
          "--prompt-key "
              + spec.promptKey()
              + " is not a column of "
              + spec.data()
              + " (columns: "
              + String.join(", ", columns)
              + ")");
    }
    if (spec.promptKey() != null && cols.replaced.contains(spec.promptKey())) {
      throw new IllegalArgumentException(
          "--prompt-key " + spec.promptKey() + " is one of the output fields; choose another");
    }

    var sc = spark.sparkContext();
    LongAccumulator scored = sc.longAccumulator("rme.scored");
    LongAccumulator bad = sc.longAccumulator("rme.badRows");
    CollectionAccumulator<String> badExamples = sc.collectionAccumulator("rme.badExamples");
    LongAccumulator nonfinite = sc.longAccumulator("rme.nonfinite");
    LongAccumulator written = sc.longAccumulator("rme.written");
    int[] cores = executorCores(sc.getConf(), sc.master());
    Dataset<Row> rows =
        input.mapPartitions(
            new PartitionScorer(
                spec,
                input.schema(),
                cols,
                cores[0],
                cores[1],
                scored,
                bad,
                badExamples,
                nonfinite),
            Encoders.row(cols.schema));

    Dataset<Row> persisted = null;
    try {
      Dataset<Row> result = rows;
      if (spec.promptKey() != null) {
        WindowSpec w =
            Window.partitionBy(functions.col(spec.promptKey()))
                .orderBy(
                    functions.col("reward").desc_nulls_last(),
                    functions.col(ScoreColumns.POS).asc());
        Dataset<Row> ranked = rows.withColumn(ScoreColumns.RANK, functions.row_number().over(w));
        if (spec.candidatesOut() != null) {
          // Scored once: both outputs read the ranked rows from the executors' storage.
          ranked = ranked.persist(StorageLevel.MEMORY_AND_DISK());
          write(
              ranked
                  .withColumn(ScoreColumns.SELECTED, functions.col(ScoreColumns.RANK).equalTo(1))
                  .drop(ScoreColumns.RANK, ScoreColumns.POS),
              spec.candidatesOut(),
              spec.outputFormat());
        }
        result = ranked.filter(functions.col(ScoreColumns.RANK).equalTo(1)).drop(ScoreColumns.RANK);
        persisted = ranked;
      }
      int reward = Arrays.asList(result.schema().fieldNames()).indexOf("reward");
      Double threshold = spec.threshold();
      result =
          result.filter(
              (FilterFunction<Row>)
                  r -> {
                    boolean keep =
                        threshold == null
                            || (!r.isNullAt(reward)
                                && r.getFloat(reward) >= threshold.floatValue());
                    if (keep) {
                      written.add(1);
                    }
                    return keep;
                  });
      write(result.drop(ScoreColumns.POS), spec.out(), spec.outputFormat());
    } catch (Exception e) { // Spark's Java API throws its checked SparkException unannounced
      for (Path o : outputs) {
        FileSystem fs = o.getFileSystem(hconf);
        if (fs.exists(o)) {
          fs.delete(o, true); // created by this job (refused above when it existed)
        }
      }
      throw failure(e);
    } finally {
      if (persisted != null) {
        persisted.unpersist();
      }
    }
    Summary s =
        new Summary(
            scored.value(),
            bad.value(),
            List.copyOf(badExamples.value()),
            nonfinite.value(),
            written.value(),
            (System.nanoTime() - t0) / 1e9);
    StringBuilder sb = new StringBuilder();
    sb.append(String.format(Locale.ROOT, "rme spark-score: scored %d rows", s.scored()));
    if (s.badRows() > 0) {
      sb.append(String.format(Locale.ROOT, ", skipped %d bad rows", s.badRows()));
    }
    if (s.nonfinite() > 0) {
      sb.append(
          String.format(Locale.ROOT, ", %d non-finite rewards written as null", s.nonfinite()));
    }
    sb.append(
        String.format(
            Locale.ROOT,
            ", wrote %d rows to %s (%s) in %.1f s",
            s.written(),
            spec.out(),
            spec.outputFormat(),
            s.seconds()));
    err.println(sb);
    for (String ex : s.badExamples()) {
      err.println("  skipped " + ex);
    }
    err.flush();
    return s;
  }

  private static void write(Dataset<Row> d, String path, String format) {
    d.write().format(format).mode(SaveMode.ErrorIfExists).save(path);
  }

  /**
   * The bad row behind a failed job, or the failure itself. Spark wraps a task's exception in its
   * own (task failure, write failure, job abort); the original travels as the cause when it
   * deserializes on the driver, and always in the message text.
   */
  static RuntimeException failure(Exception e) throws IOException {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof BadRowError b) {
        return new BadRowError(b.getMessage());
      }
    }
    Matcher m = BAD_ROW.matcher(String.valueOf(e.getMessage()));
    if (m.find()) {
      return new BadRowError(m.group(1).strip());
    }
    if (e instanceof IOException io) {
      throw io;
    }
    return e instanceof RuntimeException r ? r : new IllegalStateException(e.getMessage(), e);
  }

  private static final Pattern BAD_ROW =
      Pattern.compile(Pattern.quote(BadRowError.class.getName()) + ": ([^\\n]*)");

  /** K, whether the model stores a normalisation: read on the driver without loading weights. */
  record ModelInfo(int k, boolean standardized, int positions) {}

  static ModelInfo modelInfo(SparkScoreSpec spec) throws IOException {
    java.nio.file.Path model = java.nio.file.Path.of(spec.model());
    List<java.nio.file.Path> lora = spec.lora().stream().map(java.nio.file.Path::of).toList();
    if (spec.tokenizer() != null && !Files.isRegularFile(java.nio.file.Path.of(spec.tokenizer()))) {
      throw new IllegalArgumentException("--tokenizer " + spec.tokenizer() + ": no such file");
    }
    ModelInfo info;
    if (lora.isEmpty() && Files.isRegularFile(model.resolve("saved_model.pb"))) {
      try (RewardModel rm =
          RewardModel.load(
              model, lora, ExecConfig.defaults(), Optional.ofNullable(spec.rewardToken()))) {
        info =
            new ModelInfo(rm.heads(), rm.normalization().isPresent(), rm.config().maxPositions());
      }
    } else {
      EnsembleModel m = EnsembleModel.load(model, lora, Optional.ofNullable(spec.rewardToken()));
      EnsembleSpec s = m.spec();
      info = new ModelInfo(s.k(), s.normalization().isPresent(), m.config().maxPositions());
    }
    if (spec.maxLength() > info.positions()) {
      throw new IllegalArgumentException(
          "--max-length "
              + spec.maxLength()
              + " must be in [1, "
              + info.positions()
              + "] (the model's positions)");
    }
    return info;
  }

  /**
   * The cores of one executor and its task slots (0: unknown, the executor uses its JVM's
   * processors): {@code local[N]} has N, a cluster's executors {@code spark.executor.cores}.
   */
  static int[] executorCores(SparkConf conf, String master) {
    int taskCpus = Math.max(1, conf.getInt("spark.task.cpus", 1));
    int cores;
    Matcher local = Pattern.compile("local(?:\\[(\\*|\\d+)(?:,\\d+)?\\])?").matcher(master);
    Matcher cluster = Pattern.compile("local-cluster\\[\\d+,(\\d+),\\d+\\]").matcher(master);
    if (local.matches()) {
      String n = local.group(1);
      cores =
          n == null
              ? 1
              : n.equals("*") ? Runtime.getRuntime().availableProcessors() : Integer.parseInt(n);
    } else if (cluster.matches()) {
      cores = Integer.parseInt(cluster.group(1));
    } else {
      cores = conf.getInt("spark.executor.cores", 0);
    }
    return new int[] {cores, cores > 0 ? Math.max(1, cores / taskCpus) : 0};
  }
}
