package dev.rewardensemble.spark;

import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.ScoreRow;
import dev.rewardensemble.data.ScoreRows;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.OptionalInt;
import org.apache.spark.sql.SparkSession;

/**
 * Rows per second of {@code rme spark-score} in local mode (1 and 2 executor cores; shared model
 * and per-slot sessions) against {@code rme score}'s path ({@link RewardModel#score}) on the same
 * rows, in one JVM: each Spark setting gets its own session, started before the clock runs; each
 * timed job includes its executor's model load, as {@code rme score}'s time includes its load. Run
 * by {@code scripts/spark-bench.sh}: {@code MODEL ROWS.jsonl}.
 */
public final class SparkScoreBenchmark {
  private SparkScoreBenchmark() {}

  public static void main(String[] args) throws Exception {
    Path model = Path.of(args[0]);
    Path rows = Path.of(args[1]);
    Path work = Path.of(args[2]);
    int n = 0;
    for (int rep = 0; rep < 2; rep++) { // the first run warms the JVM up
      long t0 = System.nanoTime();
      try (RewardModel rm = RewardModel.load(model, List.of(), ExecConfig.defaults())) {
        Encoder enc =
            new Encoder(
                null,
                PromptTemplate.ALPACA,
                rm.config().maxPositions(),
                OptionalInt.empty(),
                Encoder.Truncation.ERROR);
        List<ScoreRow> read = ScoreRows.read(rows, enc, OptionalInt.of(rm.config().vocabSize()));
        n = read.size();
        rm.score(read.stream().map(ScoreRow::ids).toList(), 16);
      }
      if (rep == 1) {
        report("rme score (load + score, TF: all cores)", n, t0);
      }
    }
    int run = 0;
    for (String[] setting :
        List.of(
            new String[] {"local[1]", "shared"},
            new String[] {"local[2]", "shared"},
            new String[] {"local[2]", "per-slot"})) {
      SparkSession spark =
          SparkSession.builder()
              .master(setting[0])
              .config("spark.ui.enabled", "false")
              .config("spark.sql.files.maxPartitionBytes", "65536") // several partitions
              .getOrCreate();
      try {
        for (int rep = 0; rep < 2; rep++) { // the first run warms the JVM up
          long t = System.nanoTime();
          SparkScoreJob.run(
              SparkScoreSpec.builder(
                      model.toString(),
                      rows.toString(),
                      work.resolve("bench-out-" + run++).toString())
                  .inputFormat("json")
                  .sessions(SparkScoreSpec.Sessions.parse(setting[1]))
                  .build(),
              new PrintWriter(new StringWriter(), true));
          if (rep == 1) {
            report("spark-score " + setting[0] + ", " + setting[1], n, t);
          }
        }
      } finally {
        spark.stop();
      }
    }
  }

  private static void report(String what, int n, long t0) {
    double s = (System.nanoTime() - t0) / 1e9;
    System.out.printf(Locale.ROOT, "%-42s %7.1f s %8.1f rows/s%n", what, s, n / s);
  }
}
