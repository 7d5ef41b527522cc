package dev.rewardensemble.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.data.Padding;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.EnsembleScorer;
import dev.rewardensemble.ensemble.EnsembleSpec;
import dev.rewardensemble.ensemble.MemberScores;
import dev.rewardensemble.ensemble.Normalization;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.ForwardGraph;
import dev.rewardensemble.model.GraphSession;
import dev.rewardensemble.serving.SavedModelScorer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.tensorflow.Result;
import org.tensorflow.Tensor;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * A loaded reward model or ensemble of any kind — a Hugging Face checkpoint (one or K heads), a run
 * directory of {@code rme train-rm} (single, independent, linear, LoRA), a base plus PEFT adapters,
 * or an exported SavedModel — ready to score token sequences: all K members in one graph, one
 * {@code Session.run} per batch.
 *
 * <pre>{@code
 * try (RewardModel rm = RewardModel.load(Path.of("runs/lora-ensemble"))) {
 *   float[][] members = rm.score(List.of(ids1, ids2), 16);          // [N][K]
 *   MemberScores s = rm.aggregate(members[0], AggregationConfig.lcb(0.5));
 * }
 * }</pre>
 *
 * <p>Thread-safe for concurrent {@link #score} calls. Close it to free the native graph and
 * session.
 */
public final class RewardModel implements AutoCloseable, EnsembleScorer {
  private final EnsembleSpec spec;
  private final ModelConfig config;
  private final RewardToken rewardToken;
  private final Optional<Path> tokenizer;
  private final Path source;
  private final EnsembleModel.ParameterCounts counts;
  // Exactly one of the two back ends is set.
  private final GraphSession owner;
  private final ForwardGraph fg;
  private final SavedModelScorer saved;
  // The session compiles with XLA: batches are padded to shape buckets (Padding.bucket).
  private final boolean compiled;

  private RewardModel(EnsembleModel m, ExecConfig exec) {
    spec = m.spec();
    config = m.config();
    rewardToken = m.rewardToken();
    tokenizer = m.tokenizer();
    source = m.source();
    counts = m.parameterCounts();
    saved = null;
    // A scoring graph has fixed shapes per batch: under --xla auto it compiles, with buckets.
    ExecConfig fixed = exec.forFixedShapes();
    compiled = fixed.xla();
    owner = new GraphSession();
    ForwardGraph built = null;
    try {
      // A large token embedding on disk stays there: the host gathers a batch's rows from the
      // file's memory map (ParameterStore.gatherOnHost), as a PyTorch process that maps it does.
      Precision frozen = m.frozenStorage(fixed.weights());
      built =
          m.build(
              BuildContext.of(owner.graph(), fixed).forInference(), frozen, m.rowsOnHost(frozen));
      built.params().load(owner.open(fixed), m.weights(), false, String.valueOf(m.source()));
    } catch (RuntimeException | Error e) {
      owner.close(); // the session first: Graph.close() waits for open sessions
      if (built != null) {
        built.params().unmapHostRows();
      }
      throw e;
    }
    fg = built;
  }

  private RewardModel(SavedModelScorer s) {
    saved = s;
    owner = null;
    fg = null;
    compiled = false;
    JsonNode meta = s.metadata();
    EnsembleKind kind =
        meta.has("kind")
            ? EnsembleKind.byName(meta.get("kind").asText())
            : (s.heads() == 1 ? EnsembleKind.SINGLE : EnsembleKind.LINEAR);
    config = s.config();
    rewardToken = s.rewardToken();
    JsonNode n = meta.get("normalization");
    spec =
        new EnsembleSpec(
            kind,
            s.heads(),
            s.aggregation(),
            n == null || n.isNull()
                ? Optional.empty()
                : Optional.of(
                    new Normalization(
                        floats(n.get("mean")),
                        floats(n.get("std")),
                        n.path("reference_size").asInt())));
    tokenizer = Optional.empty();
    source = s.dir();
    counts = null;
  }

  /** Loads {@code dir} with TensorFlow's default threads. */
  public static RewardModel load(Path dir) throws IOException {
    return load(dir, ExecConfig.defaults());
  }

  /**
   * Loads a SavedModel ({@code saved_model.pb}), an ensemble run directory ({@code ensemble.json})
   * or a Hugging Face checkpoint. A causal LM or bare trunk gets one zero head (rewards 0 until
   * trained). A run directory of {@code rme train-rm} whose training did not complete is refused
   * ({@link dev.rewardensemble.io.RunDirs.IncompleteRunException}).
   */
  public static RewardModel load(Path dir, ExecConfig exec) throws IOException {
    if (Files.isRegularFile(dir.resolve("saved_model.pb"))) {
      return new RewardModel(SavedModelScorer.load(dir));
    }
    return new RewardModel(EnsembleModel.load(dir), exec);
  }

  /**
   * {@link #load(Path, ExecConfig)}, or with PEFT {@code adapters} (null or empty: none) a LoRA
   * ensemble over {@code model} as the base: the one entry point for the CLI's {@code --model /
   * --lora} pairs.
   */
  public static RewardModel load(Path model, List<Path> adapters, ExecConfig exec)
      throws IOException {
    return load(model, adapters, exec, Optional.empty());
  }

  /**
   * {@link #load(Path, List, ExecConfig)} reading the reward at {@code rewardToken} when given (the
   * CLI's {@code --reward-token}); empty: the model's own rule. A run directory or SavedModel keeps
   * the rule it was trained or exported with: a different one is refused naming the file.
   */
  public static RewardModel load(
      Path model, List<Path> adapters, ExecConfig exec, Optional<RewardToken> rewardToken)
      throws IOException {
    if ((adapters == null || adapters.isEmpty())
        && Files.isRegularFile(model.resolve("saved_model.pb"))) {
      SavedModelScorer s = SavedModelScorer.load(model);
      if (rewardToken.isPresent() && rewardToken.get() != s.rewardToken()) {
        RewardToken baked = s.rewardToken();
        s.close();
        throw new IllegalArgumentException(
            "--reward-token "
                + rewardToken.get().id()
                + " contradicts the SavedModel "
                + s.dir()
                + ", whose graph reads the reward at "
                + baked.id()
                + " (key '"
                + RewardToken.KEY
                + "' of "
                + dev.rewardensemble.serving.SavedModels.ASSET
                + ")");
      }
      return new RewardModel(s);
    }
    return new RewardModel(EnsembleModel.load(model, adapters, rewardToken), exec);
  }

  /** A LoRA ensemble of PEFT adapter directories over the checkpoint {@code base}. */
  public static RewardModel loadWithAdapters(Path base, List<Path> adapters, ExecConfig exec)
      throws IOException {
    return new RewardModel(EnsembleModel.fromPeft(base, adapters), exec);
  }

  /** Builds a model from an ensemble description (e.g. one assembled in memory). */
  public static RewardModel of(EnsembleModel m, ExecConfig exec) {
    return new RewardModel(m, exec);
  }

  /**
   * Builds a single or K-head model from a configuration and weights (trunk + {@code score.weight
   * [K, H]}).
   */
  public static RewardModel fromWeights(
      ModelConfig config,
      int heads,
      Map<String, FloatTensor> weights,
      RewardToken rewardToken,
      ExecConfig exec,
      Path source,
      Optional<Path> tokenizer) {
    return new RewardModel(
        new EnsembleModel(
            EnsembleSpec.heads(heads), config, rewardToken, weights, null, tokenizer, source),
        exec);
  }

  public EnsembleKind kind() {
    return spec.kind();
  }

  /** Kind, K, default aggregation and normalisation. */
  public EnsembleSpec spec() {
    return spec;
  }

  public ModelConfig config() {
    return config;
  }

  /** The token the rewards are read at. */
  public RewardToken rewardToken() {
    return rewardToken;
  }

  /** Number of members (reward heads) K. */
  public int heads() {
    return spec.k();
  }

  public Optional<Normalization> normalization() {
    return spec.normalization();
  }

  /** The aggregation stored with the model (mean unless the ensemble says otherwise). */
  public AggregationConfig aggregation() {
    return spec.aggregation();
  }

  public Path source() {
    return source;
  }

  /** The {@code tokenizer.json} found beside the model, if any. */
  public Optional<Path> tokenizer() {
    return tokenizer;
  }

  /** Parameter counts (M, L, A, total in memory); empty for SavedModels. */
  public Optional<EnsembleModel.ParameterCounts> parameterCounts() {
    return Optional.ofNullable(counts);
  }

  /** Aggregates one sequence's raw member rewards with this model's normalisation. */
  public MemberScores aggregate(float[] raw, AggregationConfig agg) {
    return MemberScores.of(raw, spec.normalization(), agg);
  }

  /** Aggregates without normalisation even when the model has it. */
  public MemberScores aggregateRaw(float[] raw, AggregationConfig agg) {
    return MemberScores.of(raw, Optional.empty(), agg);
  }

  /**
   * Scores sequences: returns raw member rewards {@code [N][K]} in input order. Sequences are
   * grouped by length into batches of at most {@code batchSize} to minimise padding.
   *
   * @throws IllegalArgumentException naming the sequence index for an empty sequence, an id outside
   *     the vocabulary, or a sequence longer than the model's positions
   */
  public float[][] score(List<int[]> sequences, int batchSize) {
    if (batchSize < 1) {
      throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
    }
    for (int i = 0; i < sequences.size(); i++) {
      int[] s = sequences.get(i);
      if (s.length == 0) {
        throw new IllegalArgumentException("sequence " + i + " is empty");
      }
      if (s.length > config.maxPositions()) {
        throw new IllegalArgumentException(
            "sequence "
                + i
                + " has "
                + s.length
                + " tokens, more than the model's "
                + config.maxPositions()
                + " positions (use truncation)");
      }
      for (int id : s) {
        if (id < 0 || id >= config.vocabSize()) {
          throw new IllegalArgumentException(
              "sequence "
                  + i
                  + " has token id "
                  + id
                  + " outside the vocabulary [0, "
                  + config.vocabSize()
                  + ")");
        }
      }
    }
    Integer[] order = new Integer[sequences.size()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, Comparator.comparingInt(i -> sequences.get(i).length));
    float[][] out = new float[sequences.size()][];
    for (int start = 0; start < order.length; start += batchSize) {
      int end = Math.min(order.length, start + batchSize);
      List<int[]> batch = new ArrayList<>();
      for (int j = start; j < end; j++) {
        batch.add(sequences.get(order[j]));
      }
      float[][] r = scoreBatch(batch);
      for (int j = start; j < end; j++) {
        out[order[j]] = r[j - start];
      }
    }
    return out;
  }

  /** Scores one right-padded batch in one {@code Session.run}: {@code [B][K]}. */
  private float[][] scoreBatch(List<int[]> batch) {
    int b = batch.size();
    int t = batch.stream().mapToInt(s -> s.length).max().orElse(1);
    int[] ids = new int[b * t];
    int[] mask = new int[b * t];
    int pad = config.padTokenId();
    for (int i = 0; i < b; i++) {
      int[] s = batch.get(i);
      Arrays.fill(ids, i * t, (i + 1) * t, pad);
      System.arraycopy(s, 0, ids, i * t, s.length);
      Arrays.fill(mask, i * t, i * t + s.length, 1);
    }
    return run(ids, mask, b, t);
  }

  /**
   * Raw member rewards {@code [B][K]} of an already padded batch ({@code ids}, {@code mask}
   * row-major [B, T]). When the session compiles with XLA, the batch runs padded to a shape bucket
   * ({@link Padding#bucket}, {@link Padding#bucketRows}: pad columns with mask 0 on the right,
   * copies of the first row below), so that XLA compiles a few shapes instead of one per batch; the
   * rewards are those of the batch as given.
   */
  public float[][] run(int[] ids, int[] mask, int b, int t) {
    if (saved != null) {
      return saved.run(ids, mask, b, t);
    }
    int[] shape = runShape(b, t);
    if (shape[0] != b || shape[1] != t) {
      int[][] padded = Padding.toBucket(ids, mask, b, t, shape[0], shape[1], config.padTokenId());
      return Arrays.copyOf(runExact(padded[0], padded[1], shape[0], shape[1]), b);
    }
    return runExact(ids, mask, b, t);
  }

  /**
   * The shape {@code [rows, length]} a batch of {@code b} sequences padded to {@code t} runs at:
   * the shape bucket ({@link Padding#bucketRows}, {@link Padding#bucket}) when the session compiles
   * with XLA, else {@code [b, t]} itself.
   */
  public int[] runShape(int b, int t) {
    if (!compiled) {
      return new int[] {b, t};
    }
    return new int[] {Padding.bucketRows(b), Padding.bucket(t, config.maxPositions())};
  }

  private float[][] runExact(int[] ids, int[] mask, int b, int t) {
    // close() waits for this run to finish; after close, IllegalStateException("closed").
    return owner.run(
        session -> {
          List<Tensor> rows = new ArrayList<>(1);
          try (TInt32 idT = TInt32.tensorOf(Shape.of(b, t), DataBuffers.of(ids, true, false));
              TInt32 maskT = TInt32.tensorOf(Shape.of(b, t), DataBuffers.of(mask, true, false));
              Result r =
                  dev.rewardensemble.model.RunProfile.run(
                      fg.params()
                          .feedHostRows(session.runner(), ids, rows)
                          .feed(fg.inputIds(), idT)
                          .feed(fg.attentionMask(), maskT)
                          .fetch(fg.rewards()))) {
            TFloat32 rew = (TFloat32) r.get(0);
            int members = spec.k();
            float[] flat = new float[b * members];
            rew.asRawTensor().data().asFloats().read(flat);
            float[][] out = new float[b][members];
            for (int i = 0; i < b; i++) {
              System.arraycopy(flat, i * members, out[i], 0, members);
            }
            return out;
          } finally {
            rows.forEach(Tensor::close);
          }
        });
  }

  /**
   * Bytes of the variables of the loaded scoring graph (each at its stored dtype: 4 bytes a float32
   * value, 2 a bfloat16 one): what the model holds in memory for its weights, the trunk once for a
   * shared-trunk ensemble, K times for an independent one. A token embedding whose rows are
   * gathered on the host from its checkpoint file ({@link #rowsOnHost}) is not a variable and not
   * counted: the process holds only the pages of the rows it has read. Graph back end only.
   */
  public long variableBytes() {
    if (fg == null) {
      throw new IllegalStateException("a SavedModel's variables are not measured from Java");
    }
    dev.rewardensemble.model.ParameterStore p = fg.params();
    long bytes = 0;
    for (String name : p.names()) {
      int width = p.storage(name) == dev.rewardensemble.config.Precision.BFLOAT16 ? 2 : 4;
      bytes += FloatTensor.numElements(p.shape(name)) * width;
    }
    return bytes;
  }

  /**
   * The tables (store keys) whose rows this model gathers on the host from its checkpoint's memory
   * map instead of holding them in variables: a token embedding read from disk of at least {@link
   * dev.rewardensemble.model.ParameterStore#hostRowsMin} bytes. Empty for a SavedModel.
   */
  public List<String> rowsOnHost() {
    return fg == null ? List.of() : fg.params().hostedNames();
  }

  /** Current weights by store key (graph back end only). */
  public Map<String, FloatTensor> weights() {
    if (fg == null) {
      throw new IllegalStateException("a SavedModel's weights are not readable from Java");
    }
    return owner.run(
        session -> {
          Map<String, FloatTensor> all = new java.util.LinkedHashMap<>(fg.params().readHosted());
          all.putAll(fg.params().readAll(session));
          return all;
        });
  }

  private static float[] floats(JsonNode n) {
    float[] out = new float[n.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) n.get(i).asDouble();
    }
    return out;
  }

  @Override
  public void close() {
    if (saved != null) {
      saved.close();
    } else {
      owner.close(); // waits for runs in flight: none reads the mapped tables after it
      fg.params().unmapHostRows();
    }
  }
}
