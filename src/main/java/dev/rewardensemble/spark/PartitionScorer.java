package dev.rewardensemble.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.ScoreRows;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.Diagnostics;
import dev.rewardensemble.ensemble.MemberScores;
import dev.rewardensemble.rl.BestOfNRunner;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.OptionalInt;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.CollectionAccumulator;
import org.apache.spark.util.LongAccumulator;

/**
 * Scores one partition as a stream: it takes up to {@code chunkRows} rows from Spark's iterator,
 * encodes them as {@code rme score} does, scores them sorted by length in batches of {@code
 * batchSize} (one {@code Session.run} each, {@link RewardModel#score}), and hands them on in input
 * order before reading the next chunk, so a task never holds more than one chunk.
 *
 * <p>Rows: any shape {@code rme score} reads ({@code input_ids}, {@code prompt}/{@code response},
 * {@code messages}; {@link ScoreRows#encodeRow}), and the candidates of {@code rme best-of-n
 * --candidates-out} ({@code prompt_ids} + {@code response_ids}, scored as {@code rme best-of-n
 * --pool-in} scores them: {@link BestOfNRunner#scoredSequence}).
 */
final class PartitionScorer implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final List<String> ROW_FIELDS =
      List.of(
          "input_ids",
          "prompt",
          "response",
          "messages",
          "prompt_ids",
          "response_ids",
          "eos_token_id");

  private final SparkScoreSpec spec;
  private final StructType input;
  private final ScoreColumns cols;
  private final int cores;
  private final int slots;
  private final LongAccumulator scored;
  private final LongAccumulator bad;
  private final CollectionAccumulator<String> badExamples;
  private final LongAccumulator nonfinite;

  /**
   * @param cores the executor's cores (0: the JVM's processors)
   * @param slots task slots per executor (0: {@code cores})
   */
  PartitionScorer(
      SparkScoreSpec spec,
      StructType input,
      ScoreColumns cols,
      int cores,
      int slots,
      LongAccumulator scored,
      LongAccumulator bad,
      CollectionAccumulator<String> badExamples,
      LongAccumulator nonfinite) {
    this.spec = spec;
    this.input = input;
    this.cols = cols;
    this.cores = cores;
    this.slots = slots;
    this.scored = scored;
    this.bad = bad;
    this.badExamples = badExamples;
    this.nonfinite = nonfinite;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> rows) {
    TaskContext ctx = TaskContext.get();
    int c = cores > 0 ? cores : Runtime.getRuntime().availableProcessors();
    int s = slots > 0 ? slots : c;
    ExecutorModels.Lease lease = ExecutorModels.acquire(spec, c, s);
    if (ctx != null) {
      ctx.addTaskCompletionListener((TaskContext t) -> lease.release());
    }
    return new Chunks(rows, lease.loaded(), ctx);
  }

  /** Where a row is: its file, partition and row within the partition, and its id. */
  private String where(Row row, int partition, long index) {
    String file = cols.fileIndex >= 0 ? row.getString(cols.fileIndex) : null;
    StringBuilder sb = new StringBuilder();
    String f = file == null || file.isEmpty() ? spec.data() : file;
    sb.append(f.startsWith("file://") ? f.substring("file://".length()) : f);
    sb.append(" (partition ").append(partition).append(", row ").append(index + 1);
    int id = fieldIndex("id");
    if (id >= 0 && !row.isNullAt(id)) {
      sb.append(", id ").append(abbreviate(String.valueOf(row.get(id))));
    }
    return sb.append(")").toString();
  }

  private int fieldIndex(String name) {
    for (int i = 0; i < input.fields().length; i++) {
      if (input.fields()[i].name().equals(name)) {
        return i;
      }
    }
    return -1;
  }

  private final class Chunks implements Iterator<Row> {
    private final Iterator<Row> rows;
    private final RewardModel rm;
    private final Object tokLock;
    private final Encoder encoder;
    private final AggregationConfig agg;
    private final String aggLabel;
    private final int vocab;
    private final int maxLen;
    private final int partition;
    private final boolean firstAttempt;
    private final List<Row> out = new ArrayList<>();
    private int next;
    private long index;
    private long emitted;

    Chunks(Iterator<Row> rows, ExecutorModels.Loaded loaded, TaskContext ctx) {
      this.rows = rows;
      this.rm = loaded.model();
      this.tokLock = loaded;
      this.agg = spec.aggregation(rm.aggregation());
      this.aggLabel = Diagnostics.label(agg);
      this.vocab = rm.config().vocabSize();
      this.maxLen = spec.maxLength() > 0 ? spec.maxLength() : rm.config().maxPositions();
      this.encoder =
          new Encoder(
              loaded.tokenizer(), spec.template(), maxLen, OptionalInt.empty(), spec.truncation());
      this.partition = ctx == null ? 0 : ctx.partitionId();
      this.firstAttempt = ctx == null || ctx.attemptNumber() == 0;
    }

    @Override
    public boolean hasNext() {
      while (next >= out.size()) {
        if (!rows.hasNext()) {
          return false;
        }
        fill();
      }
      return true;
    }

    @Override
    public Row next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      if (spec.failFirstAttemptAfter() >= 0
          && firstAttempt
          && partition == 0
          && emitted == spec.failFirstAttemptAfter()) {
        throw new IllegalStateException(
            "test hook: the first attempt of partition 0 fails after "
                + emitted
                + " rows (failFirstAttemptAfter)");
      }
      emitted++;
      Row r = out.get(next);
      out.set(next++, null);
      return r;
    }

    /** Reads, encodes and scores the next chunk. */
    private void fill() {
      out.clear();
      next = 0;
      List<Row> chunk = new ArrayList<>();
      List<int[]> seqs = new ArrayList<>();
      List<Long> positions = new ArrayList<>();
      while (chunk.size() < spec.chunkRows() && rows.hasNext()) {
        Row row = rows.next();
        long i = index++;
        int[] ids;
        try {
          ids = encode(row);
        } catch (IllegalArgumentException e) {
          String msg = where(row, partition, i) + ": " + e.getMessage();
          if (!spec.skipBadRows()) {
            throw new SparkScoreJob.BadRowError(msg);
          }
          bad.add(1);
          if (badExamples.value().size() < 3) {
            badExamples.add(ScoreRows.badRowReason(e) + ": " + msg);
          }
          continue;
        }
        chunk.add(row);
        seqs.add(ids);
        positions.add(((long) partition << 40) | i);
      }
      if (chunk.isEmpty()) {
        return;
      }
      float[][] members = rm.score(seqs, spec.batchSize());
      for (int j = 0; j < chunk.size(); j++) {
        out.add(
            output(
                chunk.get(j), members[j], positions.get(j), (positions.get(j) & ((1L << 40) - 1))));
      }
      scored.add(chunk.size());
    }

    private int[] encode(Row row) {
      if (cols.corruptIndex >= 0 && !row.isNullAt(cols.corruptIndex)) {
        throw new IllegalArgumentException(
            "row: invalid JSON: " + abbreviate(row.getString(cols.corruptIndex)));
      }
      ObjectNode obj = JsonNodeFactory.instance.objectNode();
      StructField[] fields = input.fields();
      for (int i = 0; i < fields.length; i++) {
        if (ROW_FIELDS.contains(fields[i].name()) && !row.isNullAt(i)) {
          obj.set(fields[i].name(), json(row.get(i), fields[i].dataType(), fields[i].name()));
        }
      }
      if (obj.has("prompt_ids") && obj.has("response_ids")) {
        int[] prompt = ids(obj, "prompt_ids");
        int[] response = ids(obj, "response_ids");
        JsonNode eos = obj.get("eos_token_id");
        int eosId = eos != null && eos.canConvertToInt() ? eos.intValue() : -1;
        return BestOfNRunner.scoredSequence(prompt, response, eosId, maxLen);
      }
      synchronized (tokLock) {
        return ScoreRows.encodeRow(obj, encoder, vocab);
      }
    }

    private int[] ids(ObjectNode obj, String field) {
      JsonNode n = obj.get(field);
      if (!n.isArray()) {
        throw new IllegalArgumentException(field + ": expected an array of ints");
      }
      int[] ids = new int[n.size()];
      for (int i = 0; i < ids.length; i++) {
        JsonNode e = n.get(i);
        if (!e.isIntegralNumber() || !e.canConvertToInt() || e.intValue() < 0) {
          throw new IllegalArgumentException(
              field + ": element " + i + " is not a token id: " + abbreviate(e.toString()));
        }
        if (e.intValue() >= vocab) {
          throw new IllegalArgumentException(
              field
                  + ": element "
                  + i
                  + " = "
                  + e.intValue()
                  + " is not below the vocabulary size "
                  + vocab);
        }
        ids[i] = e.intValue();
      }
      return ids;
    }

    private Row output(Row row, float[] raw, long pos, long indexInPartition) {
      Object[] v = new Object[cols.kept.length + cols.scoreWidth() + 1];
      int at = 0;
      for (int i : cols.kept) {
        v[at++] = row.get(i);
      }
      boolean finite = true;
      for (float f : raw) {
        finite &= Float.isFinite(f);
      }
      if (!finite) {
        if (!spec.allowNonfinite()) {
          throw new SparkScoreJob.BadRowError(
              where(row, partition, indexInPartition)
                  + ": non-finite reward from "
                  + spec.model()
                  + " (check the checkpoint for NaN/Inf weights; --allow-nonfinite writes null"
                  + " instead)");
        }
        nonfinite.add(1);
      }
      MemberScores s = spec.normalize() ? rm.aggregate(raw, agg) : rm.aggregateRaw(raw, agg);
      if (cols.k == 1) {
        v[at++] = finiteOrNull(s.members()[0]);
      } else {
        v[at++] = finiteOrNull((float) s.reward());
        v[at++] = boxed(s.members());
        if (cols.standardized) {
          v[at++] = s.standardized() == null ? null : boxed(s.standardized());
        }
        v[at++] = finiteOrNull((float) s.mean());
        v[at++] = finiteOrNull((float) s.std());
        v[at++] = aggLabel;
      }
      v[at] = pos;
      return RowFactory.create(v);
    }
  }

  private static Float finiteOrNull(float f) {
    return Float.isFinite(f) ? f : null;
  }

  private static Float[] boxed(float[] a) {
    Float[] b = new Float[a.length];
    for (int i = 0; i < a.length; i++) {
      b[i] = finiteOrNull(a[i]);
    }
    return b;
  }

  /**
   * A Spark value as JSON. A field that JSON schema inference widened to a string (because rows
   * disagree on its type, e.g. one row's {@code input_ids} is a string) holds the other rows' JSON
   * text: it is read back as JSON when it is an array or object, so those rows keep their shape.
   */
  static JsonNode json(Object value, DataType type, String field) {
    JsonNodeFactory f = JsonNodeFactory.instance;
    if (value == null) {
      return f.nullNode();
    }
    if (type instanceof ArrayType at) {
      ArrayNode a = f.arrayNode();
      List<Object> list = seq(value);
      for (Object o : list) {
        a.add(json(o, at.elementType(), field));
      }
      return a;
    }
    if (type instanceof StructType st) {
      Row r = (Row) value;
      ObjectNode o = f.objectNode();
      for (int i = 0; i < st.fields().length; i++) {
        if (!r.isNullAt(i)) {
          o.set(st.fields()[i].name(), json(r.get(i), st.fields()[i].dataType(), field));
        }
      }
      return o;
    }
    if (type.equals(DataTypes.StringType)) {
      String s = (String) value;
      String t = s.strip();
      if ((field.equals("input_ids") || field.endsWith("_ids") || field.equals("messages"))
          && (t.startsWith("[") || t.startsWith("{"))) {
        try {
          return JSON.readTree(t);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
          return f.textNode(s);
        }
      }
      return f.textNode(s);
    }
    if (value instanceof Integer i) {
      return f.numberNode(i);
    }
    if (value instanceof Long l) {
      return f.numberNode(l);
    }
    if (value instanceof Short s) {
      return f.numberNode(s);
    }
    if (value instanceof Byte b) {
      return f.numberNode(b);
    }
    if (value instanceof Double d) {
      return f.numberNode(d);
    }
    if (value instanceof Float fl) {
      return f.numberNode(fl);
    }
    if (value instanceof java.math.BigDecimal d) {
      return f.numberNode(d);
    }
    if (value instanceof Boolean b) {
      return f.booleanNode(b);
    }
    return f.textNode(String.valueOf(value));
  }

  @SuppressWarnings("unchecked")
  private static List<Object> seq(Object value) {
    if (value instanceof scala.collection.Seq<?> s) {
      return (List<Object>) scala.jdk.javaapi.CollectionConverters.asJava(s);
    }
    if (value instanceof List<?> l) {
      return (List<Object>) l;
    }
    if (value.getClass().isArray()) {
      int n = java.lang.reflect.Array.getLength(value);
      List<Object> out = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        out.add(java.lang.reflect.Array.get(value, i));
      }
      return out;
    }
    throw new IllegalArgumentException("not an array: " + value.getClass().getName());
  }

  static String abbreviate(String s) {
    return s.length() <= 60 ? s : s.substring(0, 57) + "...";
  }
}
