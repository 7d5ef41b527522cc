package dev.rewardensemble.ensemble;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.config.WeightStorage;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.RunDirs;
import dev.rewardensemble.io.TensorBytes;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.PeftAdapters;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.ForwardGraph;
import dev.rewardensemble.model.LmHead;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.RewardGraph;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.model.Transformers;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.tensorflow.op.Ops;

/**
 * A reward model or ensemble of any kind, as values: enough to build its forward graph ({@link
 * #build}) and load it ({@link #weights}). Loaded from a Hugging Face checkpoint (single or K
 * heads), a run directory with {@code ensemble.json}, or a base plus PEFT adapter directories.
 *
 * @param spec kind, K (validated there), default aggregation and normalisation
 * @param rewardToken the token the rewards are read at: stored in a run's {@code ensemble.json}
 *     (absent: {@link RewardToken#LAST_ATTENDED}, the rule older runs were trained with), or for a
 *     Hugging Face checkpoint as transformers reads it ({@link RewardToken#ofHfConfig})
 * @param weights every variable of the forward graph by store key
 * @param lora the adapters' configuration (LoRA ensembles only)
 */
public record EnsembleModel(
    EnsembleSpec spec,
    ModelConfig config,
    RewardToken rewardToken,
    Map<String, FloatTensor> weights,
    LoraConfig lora,
    Optional<Path> tokenizer,
    Path source) {

  private static final ObjectMapper JSON = new ObjectMapper();

  /** The manifest file of an ensemble run directory. */
  public static final String MANIFEST = "ensemble.json";

  public EnsembleModel {
    if (spec == null) {
      throw new IllegalArgumentException("an ensemble model needs its EnsembleSpec");
    }
    java.util.Objects.requireNonNull(rewardToken, "rewardToken");
  }

  public EnsembleKind kind() {
    return spec.kind();
  }

  /** K. */
  public int members() {
    return spec.k();
  }

  /** Per-member standardisation applied before aggregation, if measured. */
  public Optional<Normalization> normalization() {
    return spec.normalization();
  }

  /** The default aggregation of the members. */
  public AggregationConfig aggregation() {
    return spec.aggregation();
  }

  /** The same model with another default aggregation. */
  public EnsembleModel withAggregation(AggregationConfig agg) {
    return new EnsembleModel(
        spec.withAggregation(agg), config, rewardToken, weights, lora, tokenizer, source);
  }

  /** The same model read at another token. */
  public EnsembleModel withRewardToken(RewardToken rule) {
    return new EnsembleModel(spec, config, rule, weights, lora, tokenizer, source);
  }

  /**
   * Builds the forward graph ({@code rewards [B, K]}) into {@code tf}'s graph, in float32, for
   * TensorFlow's own kernels.
   */
  public ForwardGraph build(Ops tf) {
    return build(BuildContext.float32(tf));
  }

  /**
   * Builds the forward graph ({@code rewards [B, K]}) into {@code cx}'s graph, in its precision; a
   * LoRA ensemble's adapter products take the form that suits the context's XLA setting ({@link
   * LoraEnsembleGraph#scoring}).
   */
  public ForwardGraph build(BuildContext cx) {
    return build(cx, Precision.FLOAT32);
  }

  /**
   * {@link #build(BuildContext)} with the frozen trunk ({@link #isFrozen}) stored in {@code frozen}
   * (e.g. {@link #frozenStorage}): bfloat16 variables widened to float32 where they are used. Heads
   * and adapters stay float32.
   */
  public ForwardGraph build(BuildContext cx, Precision frozen) {
    return build(cx, frozen, java.util.Set.of());
  }

  /**
   * {@link #build(BuildContext, Precision)} with the rows of the tables {@code onHost} (store keys,
   * e.g. {@link #rowsOnHost}) gathered on the host ({@link ParameterStore#gatherOnHost}): the
   * graph's runs feed them ({@link ParameterStore#feedHostRows}).
   */
  public ForwardGraph build(BuildContext cx, Precision frozen, java.util.Set<String> onHost) {
    ParameterStore params =
        new ParameterStore(cx.tf())
            .storeAs(key -> isFrozen(key) ? frozen : Precision.FLOAT32)
            .gatherOnHost(onHost::contains);
    int k = spec.k();
    return switch (spec.kind()) {
      case SINGLE, LINEAR ->
          RewardGraph.build(cx, config, k, params, Projector.NONE, rewardToken).forward();
      case INDEPENDENT -> IndependentGraph.build(cx, config, k, params, rewardToken);
      case LORA -> LoraEnsembleGraph.scoring(cx, config, lora, k, params, rewardToken).forward();
    };
  }

  /**
   * Whether {@code key} (a store key) is a trunk weight: what scoring never trains and {@link
   * ExecConfig#weights} may store in bfloat16.
   */
  public boolean isFrozen(String key) {
    return Transformers.parameterShapes(config).containsKey(plainKey(key));
  }

  /** {@code key} without an independent ensemble's member prefix ({@code member2.}). */
  private String plainKey(String key) {
    if (kind() == EnsembleKind.INDEPENDENT && key.startsWith("member")) {
      int dot = key.indexOf('.');
      return dot < 0 ? key : key.substring(dot + 1);
    }
    return key;
  }

  /**
   * The token embeddings (store keys: every member's for an independent ensemble) that a scoring
   * graph reads from their checkpoint files on the host ({@link ParameterStore#gatherOnHost}): each
   * one still on disk as an F32 or BF16 matrix ({@link LazyWeights#rowsMappable}) and of at least
   * {@link ParameterStore#hostRowsMin} bytes when stored in {@code frozen}. Weights given in memory
   * have none.
   */
  public java.util.Set<String> rowsOnHost(Precision frozen) {
    if (!(weights instanceof LazyWeights lazy)) {
      return java.util.Set.of();
    }
    java.util.Set<String> out = new java.util.LinkedHashSet<>();
    for (String key : weights.keySet()) {
      if (plainKey(key).equals(config.embeddingKey())
          && isFrozen(key)
          && rowsOnHost(lazy, key, frozen)) {
        out.add(key);
      }
    }
    return out;
  }

  /**
   * Whether a scoring graph reads {@code key} of {@code lazy} from its file's memory map: an F32 or
   * BF16 matrix on disk ({@link LazyWeights#rowsMappable}) of at least {@link
   * ParameterStore#hostRowsMin} bytes when stored in {@code frozen}. The rule of {@link
   * #rowsOnHost(Precision)} and of the memory pre-check's plan.
   */
  public static boolean rowsOnHost(LazyWeights lazy, String key, Precision frozen) {
    long min = ParameterStore.hostRowsMin();
    return min >= 0
        && lazy.rowsMappable(key)
        && FloatTensor.numElements(lazy.shape(key)) * TensorBytes.bytes(frozen) >= min;
  }

  /**
   * The storage of the frozen trunk under {@code w}: {@link WeightStorage#AUTO} is bfloat16 when
   * every trunk tensor is stored as BF16 in its checkpoint (lossless), else float32.
   */
  public Precision frozenStorage(WeightStorage w) {
    boolean bf16 =
        weights instanceof LazyWeights lazy
            && weights.keySet().stream()
                .filter(this::isFrozen)
                .allMatch(key -> lazy.storedDtype(key).equals("BF16"));
    return w.resolve(bf16);
  }

  /**
   * Parameter counts in the paper's terms: trunk M, one head L, one member's adapters A, and the
   * total held in memory: K(M+L), M+KL or M+KL+KA.
   */
  public record ParameterCounts(long trunk, long head, long adapter, long total) {}

  public ParameterCounts parameterCounts() {
    long m =
        Transformers.parameterShapes(config).values().stream()
            .mapToLong(FloatTensor::numElements)
            .sum();
    long l = config.hiddenSize();
    long total =
        weights.keySet().stream()
            .mapToLong(key -> FloatTensor.numElements(LazyWeights.shapeOf(weights, key)))
            .sum();
    long a = 0;
    if (kind() == EnsembleKind.LORA) {
      java.util.Set<String> adapterKeys =
          new java.util.HashSet<>(LoraEnsembleGraph.trainableKeys(config, lora));
      adapterKeys.remove(RewardHeads.KEY);
      long adapters =
          weights.keySet().stream()
              .filter(adapterKeys::contains)
              .mapToLong(key -> FloatTensor.numElements(LazyWeights.shapeOf(weights, key)))
              .sum();
      a = adapters / members();
    }
    return new ParameterCounts(m, l, a, total);
  }

  /**
   * The trunk of the (first) member by plain checkpoint key: what a PPO value model starts from (as
   * AlpacaFarm initialises it from the reward model).
   */
  public Map<String, FloatTensor> trunkWeights() {
    String prefix = kind() == EnsembleKind.INDEPENDENT ? IndependentGraph.prefix(0) : "";
    LazyWeights out = new LazyWeights(); // tensors still on disk stay there
    for (String key : Transformers.parameterShapes(config).keySet()) {
      if (!weights.containsKey(prefix + key)) {
        throw new IllegalStateException(source + ": no trunk tensor " + prefix + key);
      }
      out.putFrom(key, weights, prefix + key);
    }
    return out;
  }

  /**
   * Loads any directory a reward model can be scored from (except SavedModels). A run directory of
   * {@code rme train-rm} must be complete ({@link RunDirs#requireComplete}: {@link
   * RunDirs.IncompleteRunException} otherwise).
   */
  public static EnsembleModel load(Path dir) throws IOException {
    return load(dir, List.of(), Optional.empty());
  }

  /**
   * {@link #load(Path, List)} read at {@code requested} when given. A run directory keeps the rule
   * stored in its {@code ensemble.json}: a different {@code requested} rule is refused naming it,
   * so a model is never scored at another token than it was trained at; a Hugging Face checkpoint
   * (or base + PEFT adapters) without it is read as transformers reads it.
   */
  public static EnsembleModel load(Path model, List<Path> adapters, Optional<RewardToken> requested)
      throws IOException {
    EnsembleModel m =
        adapters == null || adapters.isEmpty() ? loadDir(model) : fromPeft(model, adapters);
    if (requested.isEmpty() || requested.get() == m.rewardToken()) {
      return m;
    }
    Path manifest = model.resolve(MANIFEST);
    if ((adapters == null || adapters.isEmpty()) && Files.isRegularFile(manifest)) {
      throw new IllegalArgumentException(
          "--reward-token "
              + requested.get().id()
              + " contradicts "
              + manifest
              + ": the model was trained reading its reward at "
              + m.rewardToken().id()
              + " (key '"
              + RewardToken.KEY
              + "')");
    }
    return m.withRewardToken(requested.get());
  }

  private static EnsembleModel loadDir(Path dir) throws IOException {
    RunDirs.requireComplete(dir);
    Path manifest = dir.resolve(MANIFEST);
    if (Files.isRegularFile(manifest)) {
      return fromManifest(dir, manifest);
    }
    return fromCheckpoint(dir);
  }

  /** A Hugging Face checkpoint: SINGLE with one head, LINEAR with K heads. */
  public static EnsembleModel fromCheckpoint(Path dir) throws IOException {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.open(dir);
    LazyWeights w = new LazyWeights(ck.weights());
    w.remove(LmHead.KEY);
    int k = ck.numLabels();
    if (k == 0) {
      k = 1;
      w.put(RewardHeads.KEY, FloatTensor.zeros(1, ck.config().hiddenSize()));
    }
    return new EnsembleModel(
        EnsembleSpec.heads(k),
        ck.config(),
        RewardToken.ofHfConfig(dir.resolve("config.json")),
        w,
        null,
        tokenizerIn(dir),
        dir);
  }

  /** {@link #load(Path)}, or with PEFT {@code adapters} (null or empty: none) {@link #fromPeft}. */
  public static EnsembleModel load(Path model, List<Path> adapters) throws IOException {
    return load(model, adapters, Optional.empty());
  }

  /** A LoRA ensemble of PEFT adapter directories over the base checkpoint {@code base}. */
  public static EnsembleModel fromPeft(Path base, List<Path> adapterDirs) throws IOException {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.open(base);
    PeftAdapters.Stacked stacked = PeftAdapters.load(ck.config(), adapterDirs);
    LazyWeights w = new LazyWeights();
    Transformers.parameterShapes(ck.config())
        .keySet()
        .forEach(key -> w.putFrom(key, ck.weights(), key));
    w.putAll(stacked.weights());
    return new EnsembleModel(
        EnsembleSpec.of(EnsembleKind.LORA, stacked.members()),
        ck.config(),
        RewardToken.ofHfConfig(base.resolve("config.json")),
        w,
        stacked.lora(),
        tokenizerIn(base),
        base);
  }

  /**
   * The ensemble a training run has just written, assembled from its {@code layout} (the manifest's
   * {@code model} / {@code members} / {@code base} + {@code adapters} keys) without a manifest, and
   * without requiring the run to be complete: what the run measures its normalisation and
   * diagnostics on before it writes {@code ensemble.json} and completes. The layout must hold
   * {@code spec}'s K members, read at {@code rewardToken} (the rule it was trained with).
   */
  public static EnsembleModel fromLayout(
      Path dir, EnsembleSpec spec, JsonNode layout, RewardToken rewardToken) throws IOException {
    Path manifest = dir.resolve(MANIFEST);
    checkLayout(layout, spec.k(), manifest);
    EnsembleModel base = assemble(dir, layout, manifest, spec.kind());
    checkHeads(base, spec.k(), manifest);
    return new EnsembleModel(
        spec,
        base.config(),
        rewardToken,
        base.weights(),
        base.lora(),
        tokenizerIn(dir).or(base::tokenizer),
        dir);
  }

  /**
   * Reads {@code ensemble.json}. Its {@code k} must match what it describes: the number of member
   * or adapter directories, the rows of {@code score.weight} and the length of the normalisation's
   * {@code mean} and {@code std}. A manifest without {@code k} (a hand-written or older one) takes
   * K from its directories.
   */
  private static EnsembleModel fromManifest(Path dir, Path manifest) throws IOException {
    JsonNode m;
    try {
      m = JSON.readTree(manifest.toFile());
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException(
          manifest
              + ": invalid JSON at line "
              + e.getLocation().getLineNr()
              + ", column "
              + e.getLocation().getColumnNr()
              + ": "
              + e.getOriginalMessage());
    }
    if (m == null || !m.isObject()) {
      throw new IllegalArgumentException(manifest + ": expected a JSON object");
    }
    EnsembleKind kind =
        inManifest(manifest, "kind", () -> EnsembleKind.byName(m.path("kind").asText("")));
    JsonNode kNode = m.get("k");
    Integer declared = null;
    if (kNode != null && !kNode.isNull()) {
      if (!kNode.isIntegralNumber() || !kNode.canConvertToInt()) {
        throw new IllegalArgumentException(manifest + ": key 'k' must be an integer, got " + kNode);
      }
      int k = kNode.intValue();
      inManifest(manifest, "k", () -> EnsembleSpec.of(kind, k));
      checkLayout(m, k, manifest);
      declared = k;
    }
    Normalization norm = normalization(m.get("normalization"), declared, manifest);
    AggregationConfig agg = aggregation(m.get("aggregation"), manifest);
    EnsembleModel base = assemble(dir, m, manifest, kind);
    int k;
    if (declared != null) {
      k = declared;
      checkHeads(base, k, manifest);
    } else {
      k = base.members();
    }
    EnsembleSpec plain =
        inManifest(
            manifest,
            declared != null ? "k" : "kind",
            () -> new EnsembleSpec(kind, k, agg, Optional.empty()));
    EnsembleSpec spec = inManifest(manifest, "normalization", () -> plain.withNormalization(norm));
    return new EnsembleModel(
        spec,
        base.config(),
        RewardToken.stored(m, manifest),
        base.weights(),
        base.lora(),
        tokenizerIn(dir).or(base::tokenizer),
        dir);
  }

  /** The members of {@code m}'s layout as loaded (K = what the directories hold). */
  private static EnsembleModel assemble(Path dir, JsonNode m, Path manifest, EnsembleKind kind)
      throws IOException {
    return switch (kind) {
      case SINGLE, LINEAR -> fromCheckpoint(dir.resolve(m.path("model").asText(".")));
      case INDEPENDENT -> independent(dir, m, manifest);
      case LORA ->
          fromPeft(dir.resolve(m.path("base").asText()), paths(dir, m, "adapters", manifest));
    };
  }

  /** The layout's member or adapter directories number K. */
  private static void checkLayout(JsonNode layout, int k, Path manifest) {
    for (String key : List.of("members", "adapters")) {
      JsonNode a = layout.get(key);
      if (a != null && a.isArray() && a.size() != k) {
        throw new IllegalArgumentException(
            manifest
                + ": key 'k' is "
                + k
                + ", but key '"
                + key
                + "' lists "
                + a.size()
                + " directories");
      }
    }
  }

  /**
   * The loaded model has K reward heads ({@code score.weight [K, H]}; one per independent member).
   */
  private static void checkHeads(EnsembleModel base, int k, Path manifest) {
    FloatTensor score = base.weights().get(RewardHeads.KEY);
    int rows =
        base.kind() == EnsembleKind.INDEPENDENT || score == null
            ? base.members()
            : (int) score.shape()[0];
    if (rows != k) {
      String holder =
          base.kind() == EnsembleKind.LORA
              ? "its adapters have"
              : base.source().normalize() + " has";
      throw new IllegalArgumentException(
          manifest
              + ": key 'k' is "
              + k
              + ", but "
              + holder
              + " "
              + rows
              + " reward heads ("
              + RewardHeads.KEY
              + " rows)");
    }
  }

  /**
   * The manifest's {@code normalization}: {@code mean} and {@code std} of K values each (null:
   * none).
   */
  private static Normalization normalization(JsonNode n, Integer k, Path manifest) {
    if (n == null || n.isNull()) {
      return null;
    }
    float[] mean = floats(n, "mean", manifest);
    float[] std = floats(n, "std", manifest);
    if (k != null) {
      for (String key : List.of("mean", "std")) {
        int len = n.get(key).size();
        if (len != k) {
          throw new IllegalArgumentException(
              manifest
                  + ": key 'normalization."
                  + key
                  + "' has "
                  + len
                  + " values, but key 'k' is "
                  + k);
        }
      }
    }
    return inManifest(
        manifest,
        "normalization",
        () -> new Normalization(mean, std, n.path("reference_size").asInt()));
  }

  /**
   * {@code read()}, its {@link IllegalArgumentException} prefixed with the manifest and the key.
   */
  private static <T> T inManifest(Path manifest, String key, java.util.function.Supplier<T> read) {
    try {
      return read.get();
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(manifest + ": key '" + key + "': " + e.getMessage(), e);
    }
  }

  private static EnsembleModel independent(Path dir, JsonNode m, Path manifest) throws IOException {
    List<Path> memberDirs = paths(dir, m, "members", manifest);
    LazyWeights w = new LazyWeights();
    ModelConfig config = null;
    for (int k = 0; k < memberDirs.size(); k++) {
      HfCheckpoint.Checkpoint ck = HfCheckpoint.open(memberDirs.get(k));
      if (ck.numLabels() != 1) {
        throw new IllegalArgumentException(
            memberDirs.get(k) + ": an independent member must have 1 head, has " + ck.numLabels());
      }
      if (config == null) {
        config = ck.config();
      } else if (!config.equals(ck.config())) {
        throw new IllegalArgumentException(
            memberDirs.get(k) + ": architecture differs from member 0's");
      }
      for (String key : ck.weights().keySet()) {
        if (!key.equals(LmHead.KEY)) {
          w.putFrom(IndependentGraph.prefix(k) + key, ck.weights(), key);
        }
      }
    }
    return new EnsembleModel(
        EnsembleSpec.of(EnsembleKind.INDEPENDENT, memberDirs.size()),
        config,
        RewardToken.ofHfConfig(memberDirs.get(0).resolve("config.json")),
        w,
        null,
        tokenizerIn(memberDirs.get(0)),
        dir);
  }

  private static List<Path> paths(Path dir, JsonNode m, String key, Path manifest) {
    JsonNode arr = m.get(key);
    if (arr == null || !arr.isArray() || arr.isEmpty()) {
      throw new IllegalArgumentException(
          manifest + ": key '" + key + "': expected a non-empty array of member directories");
    }
    List<Path> out = new ArrayList<>();
    for (JsonNode p : arr) {
      Path d = dir.resolve(p.asText());
      if (!Files.isDirectory(d)) {
        throw new IllegalArgumentException(
            manifest + ": key '" + key + "' lists " + d + ", which is not a directory");
      }
      out.add(d);
    }
    return out;
  }

  static AggregationConfig aggregation(JsonNode a, Path source) {
    if (a == null || a.isNull()) {
      return AggregationConfig.mean();
    }
    try {
      return new AggregationConfig(
          rule(a.path("rule").asText("mean")),
          a.path("beta").asDouble(0),
          a.path("lambda").asDouble(0));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(source + ": aggregation: " + e.getMessage(), e);
    }
  }

  /**
   * An aggregation rule by its lower-case name; the error lists the names (not "No enum constant").
   */
  public static Aggregation rule(String name) {
    for (Aggregation a : Aggregation.values()) {
      if (a.name().toLowerCase(java.util.Locale.ROOT).equals(name)) {
        return a;
      }
    }
    throw new IllegalArgumentException(
        "rule '"
            + name
            + "' is not one of "
            + String.join(
                ", ",
                java.util.Arrays.stream(Aggregation.values())
                    .map(x -> x.name().toLowerCase(java.util.Locale.ROOT))
                    .toList()));
  }

  private static float[] floats(JsonNode n, String key, Path manifest) {
    JsonNode a = n.get(key);
    if (a == null || !a.isArray()) {
      throw new IllegalArgumentException(
          manifest + ": key 'normalization." + key + "' must be an array of numbers");
    }
    float[] out = new float[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) a.get(i).asDouble();
    }
    return out;
  }

  private static Optional<Path> tokenizerIn(Path dir) {
    Path t = dir.resolve("tokenizer.json");
    return Files.isRegularFile(t) ? Optional.of(t) : Optional.empty();
  }

  /**
   * Writes {@code ensemble.json} (atomically) into {@code dir}: {@code spec} (kind, {@code k},
   * aggregation, normalisation), the token the rewards are read at, the {@code layout} of the
   * member directories and the provenance. A run directory is complete only when its {@code
   * run.json} says so afterwards ({@link RunDirs#markComplete}).
   */
  public static void writeManifest(
      Path dir,
      EnsembleSpec spec,
      RewardToken rewardToken,
      ObjectNode layout,
      ObjectNode provenance)
      throws IOException {
    ObjectNode m = JSON.createObjectNode();
    m.put("format", "rme-ensemble/1");
    m.put("kind", spec.kind().id());
    m.put("k", spec.k());
    m.put(RewardToken.KEY, rewardToken.id());
    m.setAll(layout);
    AggregationConfig agg = spec.aggregation();
    ObjectNode a = m.putObject("aggregation");
    a.put("rule", agg.rule().name().toLowerCase(java.util.Locale.ROOT));
    a.put("beta", agg.beta());
    a.put("lambda", agg.lambda());
    if (spec.normalization().isPresent()) {
      Normalization norm = spec.normalization().get();
      ObjectNode n = m.putObject("normalization");
      ArrayNode mean = n.putArray("mean");
      ArrayNode std = n.putArray("std");
      for (int i = 0; i < norm.mean().length; i++) {
        mean.add(norm.mean()[i]);
        std.add(norm.std()[i]);
      }
      n.put("reference_size", norm.referenceSize());
      n.put("std_kind", "population");
    }
    if (provenance != null) {
      m.set("provenance", provenance);
    }
    RunDirs.writeJson(dir.resolve(MANIFEST), m);
  }
}
