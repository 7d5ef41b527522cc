package dev.rewardensemble.spark;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.config.WeightStorage;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.ensemble.Aggregation;
import dev.rewardensemble.ensemble.AggregationConfig;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Everything a {@code spark-score} job needs, validated on construction and serializable, so that
 * the driver ships it to every executor (paths are strings: they must name the same files on every
 * executor).
 *
 * @param model reward model or ensemble: a checkpoint, run directory or SavedModel (as {@code rme
 *     score --model})
 * @param lora PEFT adapter directories over {@code model} (empty: none)
 * @param data input: a file or directory of Parquet or JSON-lines files
 * @param inputFormat {@code json} or {@code parquet}
 * @param out output directory (Spark's part files); must not exist
 * @param outputFormat {@code json} or {@code parquet}
 * @param candidatesOut with Best-of-n, every candidate with its scores and {@code selected}; null:
 *     not written
 * @param master Spark master URL; null: Spark's own resolution ({@code spark.master}), {@code
 *     local[*]} when nothing is set
 * @param conf extra Spark settings ({@code --conf KEY=VALUE})
 * @param aggregation null: the model's own aggregation
 * @param normalize apply the ensemble's stored normalisation before aggregating
 * @param tokenizer {@code tokenizer.json}; null: the model's
 * @param maxLength longest sequence; 0: the model's positions
 * @param rewardToken null: the model's rule
 * @param batchSize sequences per {@code Session.run}
 * @param chunkRows rows a task holds at once: read, sorted by length into batches, scored, emitted
 * @param sessions one model per executor JVM shared by its tasks, or one per task slot
 * @param promptKey Best-of-n: the column grouping candidates; null: no selection
 * @param threshold keep only rows whose aggregated reward is {@code >=} it; null: keep all
 * @param skipBadRows skip and count bad rows instead of failing the job
 * @param allowNonfinite write a NaN/Inf reward as null instead of failing
 * @param failFirstAttemptAfter test hook: the first attempt of partition 0 throws after emitting
 *     this many rows ({@code -1}: never); it shows that a retried task leaves no duplicates
 */
public record SparkScoreSpec(
    String model,
    List<String> lora,
    String data,
    String inputFormat,
    String out,
    String outputFormat,
    String candidatesOut,
    String master,
    Map<String, String> conf,
    Aggregation aggregation,
    double beta,
    double lambda,
    boolean normalize,
    String tokenizer,
    PromptTemplate template,
    int maxLength,
    Encoder.Truncation truncation,
    RewardToken rewardToken,
    int batchSize,
    int chunkRows,
    ExecSettings exec,
    Sessions sessions,
    String promptKey,
    Double threshold,
    boolean skipBadRows,
    boolean allowNonfinite,
    int failFirstAttemptAfter)
    implements Serializable {
  private static final long serialVersionUID = 1L;

  /** How an executor JVM holds its models. */
  public enum Sessions {
    /** One model per executor JVM, shared by its concurrent tasks (RewardModel is thread-safe). */
    SHARED,
    /** One model per task slot, each with the executor's cores divided among the slots. */
    PER_SLOT;

    public static Sessions parse(String s) {
      return switch (s.toLowerCase(Locale.ROOT)) {
        case "shared" -> SHARED;
        case "per-slot" -> PER_SLOT;
        default ->
            throw new IllegalArgumentException(
                "--sessions must be 'shared' or 'per-slot', got '" + s + "'");
      };
    }
  }

  /** {@link ExecConfig}'s fields, serializable ({@code ExecConfig} itself is not). */
  public record ExecSettings(
      int intraOpThreads,
      int interOpThreads,
      boolean xla,
      String device,
      boolean gpuMemoryGrowth,
      String visibleDevices,
      boolean logPlacement,
      Precision compute,
      WeightStorage weights)
      implements Serializable {
    private static final long serialVersionUID = 1L;

    public static ExecSettings of(ExecConfig e) {
      return new ExecSettings(
          e.intraOpThreads(),
          e.interOpThreads(),
          e.xla(),
          e.device(),
          e.gpuMemoryGrowth(),
          e.visibleDevices(),
          e.logPlacement(),
          e.compute(),
          e.weights());
    }

    /** The configuration with {@code intra} threads when none were set explicitly. */
    public ExecConfig config(int intra, int inter) {
      return new ExecConfig(
          intraOpThreads > 0 ? intraOpThreads : intra,
          interOpThreads > 0 ? interOpThreads : inter,
          xla,
          device,
          gpuMemoryGrowth,
          visibleDevices,
          logPlacement,
          compute,
          weights);
    }
  }

  public SparkScoreSpec {
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(data, "data");
    Objects.requireNonNull(out, "out");
    lora = lora == null ? List.of() : List.copyOf(lora);
    conf = conf == null ? Map.of() : Map.copyOf(conf);
    inputFormat = format(inputFormat, "--input-format");
    outputFormat = format(outputFormat, "--format");
    template = template == null ? PromptTemplate.ALPACA : template;
    truncation = truncation == null ? Encoder.Truncation.ERROR : truncation;
    exec = exec == null ? ExecSettings.of(ExecConfig.defaults()) : exec;
    sessions = sessions == null ? Sessions.SHARED : sessions;
    if (batchSize < 1) {
      throw new IllegalArgumentException("--batch-size must be >= 1, got " + batchSize);
    }
    if (chunkRows < 1) {
      throw new IllegalArgumentException("--chunk-rows must be >= 1, got " + chunkRows);
    }
    if (maxLength < 0) {
      throw new IllegalArgumentException("--max-length must be >= 1, got " + maxLength);
    }
    if (aggregation != null) {
      aggregationConfig(aggregation, beta, lambda); // validates beta / lambda
    }
    if (threshold != null && !Double.isFinite(threshold)) {
      throw new IllegalArgumentException("--threshold must be a finite number, got " + threshold);
    }
    if (promptKey != null && promptKey.isBlank()) {
      throw new IllegalArgumentException("--prompt-key must name a column");
    }
    if (candidatesOut != null && promptKey == null) {
      throw new IllegalArgumentException(
          "--candidates-out needs --best-of-n --prompt-key KEY (it writes every candidate)");
    }
    if (candidatesOut != null && candidatesOut.equals(out)) {
      throw new IllegalArgumentException("--candidates-out and --out are the same: " + out);
    }
  }

  /** The aggregation to use: the given one, or {@code dflt} (the model's) when none was given. */
  public AggregationConfig aggregation(AggregationConfig dflt) {
    return aggregation == null ? dflt : aggregationConfig(aggregation, beta, lambda);
  }

  private static AggregationConfig aggregationConfig(Aggregation a, double beta, double lambda) {
    return switch (a) {
      case MEAN -> AggregationConfig.mean();
      case LCB -> AggregationConfig.lcb(beta);
      case MIN -> AggregationConfig.min();
      case UWO -> AggregationConfig.uwo(lambda);
    };
  }

  /** {@code json} or {@code parquet} ({@code jsonl} is {@code json}). */
  static String format(String f, String option) {
    String s = f == null ? "json" : f.toLowerCase(Locale.ROOT);
    return switch (s) {
      case "json", "jsonl" -> "json";
      case "parquet" -> "parquet";
      default ->
          throw new IllegalArgumentException(option + " must be jsonl or parquet, got '" + f + "'");
    };
  }

  /** The settings that make one loaded model: executors keep one per distinct key. */
  String modelKey() {
    return String.join(
        "\u0000",
        List.of(
            model,
            String.valueOf(lora),
            String.valueOf(tokenizer),
            String.valueOf(rewardToken),
            String.valueOf(exec),
            String.valueOf(sessions)));
  }

  public static Builder builder(String model, String data, String out) {
    return new Builder(model, data, out);
  }

  /** Builds a spec with {@code rme spark-score}'s defaults. */
  public static final class Builder {
    private final String model;
    private final String data;
    private final String out;
    private List<String> lora = new ArrayList<>();
    private String inputFormat = "json";
    private String outputFormat = "json";
    private String candidatesOut;
    private String master;
    private final Map<String, String> conf = new LinkedHashMap<>();
    private Aggregation aggregation;
    private double beta;
    private double lambda;
    private boolean normalize = true;
    private String tokenizer;
    private PromptTemplate template = PromptTemplate.ALPACA;
    private int maxLength;
    private Encoder.Truncation truncation = Encoder.Truncation.ERROR;
    private RewardToken rewardToken;
    private int batchSize = 16;
    private int chunkRows = 256;
    private ExecSettings exec;
    private Sessions sessions = Sessions.SHARED;
    private String promptKey;
    private Double threshold;
    private boolean skipBadRows;
    private boolean allowNonfinite;
    private int failFirstAttemptAfter = -1;

    private Builder(String model, String data, String out) {
      this.model = model;
      this.data = data;
      this.out = out;
    }

    public Builder lora(List<String> v) {
      lora = v == null ? new ArrayList<>() : new ArrayList<>(v);
      return this;
    }

    public Builder inputFormat(String v) {
      inputFormat = v;
      return this;
    }

    public Builder outputFormat(String v) {
      outputFormat = v;
      return this;
    }

    public Builder candidatesOut(String v) {
      candidatesOut = v;
      return this;
    }

    public Builder master(String v) {
      master = v;
      return this;
    }

    public Builder conf(String key, String value) {
      conf.put(key, value);
      return this;
    }

    public Builder aggregation(Aggregation rule, double beta, double lambda) {
      this.aggregation = rule;
      this.beta = beta;
      this.lambda = lambda;
      return this;
    }

    public Builder normalize(boolean v) {
      normalize = v;
      return this;
    }

    public Builder tokenizer(String v) {
      tokenizer = v;
      return this;
    }

    public Builder template(PromptTemplate v) {
      template = v;
      return this;
    }

    public Builder maxLength(int v) {
      maxLength = v;
      return this;
    }

    public Builder truncation(Encoder.Truncation v) {
      truncation = v;
      return this;
    }

    public Builder rewardToken(RewardToken v) {
      rewardToken = v;
      return this;
    }

    public Builder batchSize(int v) {
      batchSize = v;
      return this;
    }

    public Builder chunkRows(int v) {
      chunkRows = v;
      return this;
    }

    public Builder exec(ExecConfig v) {
      exec = ExecSettings.of(v);
      return this;
    }

    public Builder sessions(Sessions v) {
      sessions = v;
      return this;
    }

    public Builder bestOfN(String key) {
      promptKey = key;
      return this;
    }

    public Builder threshold(Double v) {
      threshold = v;
      return this;
    }

    public Builder skipBadRows(boolean v) {
      skipBadRows = v;
      return this;
    }

    public Builder allowNonfinite(boolean v) {
      allowNonfinite = v;
      return this;
    }

    /** Test hook, see {@link SparkScoreSpec#failFirstAttemptAfter()}. */
    public Builder failFirstAttemptAfter(int rows) {
      failFirstAttemptAfter = rows;
      return this;
    }

    public SparkScoreSpec build() {
      return new SparkScoreSpec(
          model,
          lora,
          data,
          inputFormat,
          out,
          outputFormat,
          candidatesOut,
          master,
          conf,
          aggregation,
          beta,
          lambda,
          normalize,
          tokenizer,
          template,
          maxLength,
          truncation,
          rewardToken,
          batchSize,
          chunkRows,
          exec,
          sessions,
          promptKey,
          threshold,
          skipBadRows,
          allowNonfinite,
          failFirstAttemptAfter);
    }
  }
}
