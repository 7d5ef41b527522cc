package dev.rewardensemble.spark;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The output schema: the input's columns passed through, then {@code rme score}'s fields — {@code
 * reward}, and for an ensemble {@code members}, {@code members_standardized} (when it stores a
 * normalisation), {@code mean}, {@code std} and {@code aggregation} — then the job's own helper
 * columns, dropped before writing. An input column with the name of an output field (e.g. a
 * re-scored Best-of-n pool's {@code reward}) is replaced by it.
 */
final class ScoreColumns implements java.io.Serializable {
  private static final long serialVersionUID = 1L;
  static final String CORRUPT = "_corrupt_record";
  static final String FILE = "_rme_file";
  static final String POS = "_rme_pos";
  static final String RANK = "_rme_rank";
  static final String SELECTED = "selected";
  static final Set<String> SCORE_FIELDS =
      Set.of("reward", "members", "members_standardized", "mean", "std", "aggregation", SELECTED);

  /** Input columns kept, by index into the input schema. */
  final int[] kept;

  final int k;
  final boolean standardized;
  final StructType schema;
  final List<String> replaced = new ArrayList<>();
  final int fileIndex;
  final int corruptIndex;

  /**
   * @param input the input schema, with {@link #FILE} (and {@link #CORRUPT} for JSON) added
   * @param k members of the model (1: a single model)
   * @param standardized whether the ensemble stores a normalisation
   */
  ScoreColumns(StructType input, int k, boolean standardized) {
    this.k = k;
    this.standardized = standardized;
    List<Integer> keep = new ArrayList<>();
    List<StructField> fields = new ArrayList<>();
    StructField[] in = input.fields();
    int file = -1;
    int corrupt = -1;
    for (int i = 0; i < in.length; i++) {
      String name = in[i].name();
      if (name.equals(FILE)) {
        file = i;
      } else if (name.equals(CORRUPT)) {
        corrupt = i;
      } else if (SCORE_FIELDS.contains(name) || name.equals(POS) || name.equals(RANK)) {
        replaced.add(name);
      } else {
        keep.add(i);
        fields.add(in[i]);
      }
    }
    fileIndex = file;
    corruptIndex = corrupt;
    kept = keep.stream().mapToInt(Integer::intValue).toArray();
    fields.add(DataTypes.createStructField("reward", DataTypes.FloatType, true));
    if (k > 1) {
      fields.add(
          DataTypes.createStructField(
              "members", DataTypes.createArrayType(DataTypes.FloatType, false), true));
      if (standardized) {
        fields.add(
            DataTypes.createStructField(
                "members_standardized",
                DataTypes.createArrayType(DataTypes.FloatType, false),
                true));
      }
      fields.add(DataTypes.createStructField("mean", DataTypes.FloatType, true));
      fields.add(DataTypes.createStructField("std", DataTypes.FloatType, true));
      fields.add(DataTypes.createStructField("aggregation", DataTypes.StringType, false));
    }
    fields.add(DataTypes.createStructField(POS, DataTypes.LongType, false));
    schema = DataTypes.createStructType(fields);
  }

  /** Number of score values after the kept input columns (without the position). */
  int scoreWidth() {
    return k > 1 ? (standardized ? 6 : 5) : 1;
  }
}
