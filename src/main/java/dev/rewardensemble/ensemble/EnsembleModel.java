package dev.rewardensemble.ensemble;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.RunDirs;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.tensorflow.op.Ops;

/**
 * A reward model or ensemble of any kind, as values: enough to build its forward graph ({@link
 * #build}) and load it ({@link #weights}). Loaded from a Hugging Face checkpoint (single or K
 * heads), a run directory with {@code ensemble.json}, or a base plus PEFT adapter directories.
 *
 * @param weights every variable of the forward graph by store key
 * @param lora the adapters' configuration (LoRA ensembles only)
 * @param normalization per-member standardisation applied before aggregation, if measured
 * @param aggregation the default aggregation of the members
 */
public record EnsembleModel(
    EnsembleKind kind,
    ModelConfig config,
    int members,
    Map<String, FloatTensor> weights,
    LoraConfig lora,
    Optional<Normalization> normalization,
    AggregationConfig aggregation,
    Optional<Path> tokenizer,
    Path source) {

  private static final ObjectMapper JSON = new ObjectMapper();

  /** The manifest file of an ensemble run directory. */
  public static final String MANIFEST = "ensemble.json";

  /** Builds the forward graph ({@code rewards [B, K]}) into {@code tf}'s graph, in float32, for TensorFlow's own kernels. */
  public ForwardGraph build(Ops tf) {
    return build(BuildContext.float32(tf));
  }

  /**
   * Builds the forward graph ({@code rewards [B, K]}) into {@code cx}'s graph, in its precision; a LoRA ensemble's
   * adapter products take the form that suits the context's XLA setting ({@link LoraEnsembleGraph#scoring}).
   */
  public ForwardGraph build(BuildContext cx) {
    ParameterStore params = new ParameterStore(cx.tf());
    return switch (kind) {
      case SINGLE, LINEAR -> RewardGraph.build(cx, config, members, params, Projector.NONE).forward();
      case INDEPENDENT -> IndependentGraph.build(cx, config, members, params);
      case LORA -> {
        LoraEnsembleGraph g = LoraEnsembleGraph.scoring(cx, config, lora, members, params);
        yield new ForwardGraph(g.inputIds(), g.attentionMask(), g.rewards(), params, members);
      }
    };
  }

  /**
   * Parameter counts in the paper's terms: trunk M, one head L, one member's adapters A, and the
   * total held in memory: K(M+L), M+KL or M+KL+KA.
   */
  public record ParameterCounts(long trunk, long head, long adapter, long total) {}

  public ParameterCounts parameterCounts() {
    long m = Transformers.parameterShapes(config).values().stream().mapToLong(FloatTensor::numElements).sum();
    long l = config.hiddenSize();
    long total = weights.values().stream().mapToLong(FloatTensor::size).sum();
    long a = 0;
    if (kind == EnsembleKind.LORA) {
      long adapters = weights.entrySet().stream()
          .filter(e -> e.getKey().endsWith(".lora_A") || e.getKey().endsWith(".lora_B"))
          .mapToLong(e -> e.getValue().size()).sum();
      a = adapters / members;
    }
    return new ParameterCounts(m, l, a, total);
  }

  /**
   * The trunk of the (first) member by plain checkpoint key: what a PPO value model starts from (as
   * AlpacaFarm initialises it from the reward model).
   */
  public Map<String, FloatTensor> trunkWeights() {
    String prefix = kind == EnsembleKind.INDEPENDENT ? IndependentGraph.prefix(0) : "";
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    for (String key : Transformers.parameterShapes(config).keySet()) {
      FloatTensor t = weights.get(prefix + key);
      if (t == null) {
        throw new IllegalStateException(source + ": no trunk tensor " + prefix + key);
      }
      out.put(key, t);
    }
    return out;
  }

  /**
   * Loads any directory a reward model can be scored from (except SavedModels). A run directory of
   * {@code rme train-rm} must be complete ({@link RunDirs#requireComplete}: {@link
   * RunDirs.IncompleteRunException} otherwise).
   */
  public static EnsembleModel load(Path dir) throws IOException {
    RunDirs.requireComplete(dir);
    Path manifest = dir.resolve(MANIFEST);
    if (Files.isRegularFile(manifest)) {
      return fromManifest(dir, manifest);
    }
    return fromCheckpoint(dir);
  }

  /** A Hugging Face checkpoint: SINGLE with one head, LINEAR with K heads. */
  public static EnsembleModel fromCheckpoint(Path dir) throws IOException {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(dir);
    Map<String, FloatTensor> w = new LinkedHashMap<>(ck.weights());
    w.remove(LmHead.KEY);
    int k = ck.numLabels();
    if (k == 0) {
      k = 1;
      w.put(RewardHeads.KEY, FloatTensor.zeros(1, ck.config().hiddenSize()));
    }
    return new EnsembleModel(
        k == 1 ? EnsembleKind.SINGLE : EnsembleKind.LINEAR, ck.config(), k, w, null, Optional.empty(),
        AggregationConfig.mean(), tokenizerIn(dir), dir);
  }

  /** {@link #load(Path)}, or with PEFT {@code adapters} (null or empty: none) {@link #fromPeft}. */
  public static EnsembleModel load(Path model, List<Path> adapters) throws IOException {
    return adapters == null || adapters.isEmpty() ? load(model) : fromPeft(model, adapters);
  }

  /** A LoRA ensemble of PEFT adapter directories over the base checkpoint {@code base}. */
  public static EnsembleModel fromPeft(Path base, List<Path> adapterDirs) throws IOException {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(base);
    PeftAdapters.Stacked stacked = PeftAdapters.load(ck.config(), adapterDirs);
    Map<String, FloatTensor> w = new LinkedHashMap<>();
    Transformers.parameterShapes(ck.config()).keySet().forEach(key -> w.put(key, ck.weights().get(key)));
    w.putAll(stacked.weights());
    return new EnsembleModel(
        EnsembleKind.LORA, ck.config(), stacked.members(), w, stacked.lora(), Optional.empty(),
        AggregationConfig.mean(), tokenizerIn(base), base);
  }

  /**
   * The ensemble a training run has just written, assembled from its {@code layout} (the manifest's
   * {@code model} / {@code members} / {@code base} + {@code adapters} keys) without a manifest and
   * without normalisation, and without requiring the run to be complete: what the run measures its
   * normalisation and diagnostics on before it writes {@code ensemble.json} and completes.
   */
  public static EnsembleModel fromLayout(Path dir, EnsembleKind kind, JsonNode layout, AggregationConfig agg)
      throws IOException {
    return assemble(dir, layout, dir.resolve(MANIFEST), kind, Optional.empty(), agg);
  }

  private static EnsembleModel fromManifest(Path dir, Path manifest) throws IOException {
    JsonNode m;
    try {
      m = JSON.readTree(manifest.toFile());
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException(manifest + ": invalid JSON at line " + e.getLocation().getLineNr()
          + ", column " + e.getLocation().getColumnNr() + ": " + e.getOriginalMessage());
    }
    if (m == null || !m.isObject()) {
      throw new IllegalArgumentException(manifest + ": expected a JSON object");
    }
    EnsembleKind kind = EnsembleKind.byName(m.path("kind").asText(""));
    Optional<Normalization> norm = Optional.empty();
    JsonNode n = m.get("normalization");
    if (n != null && !n.isNull()) {
      norm = Optional.of(new Normalization(floats(n.get("mean")), floats(n.get("std")), n.path("reference_size").asInt()));
    }
    AggregationConfig agg = aggregation(m.get("aggregation"), manifest);
    return assemble(dir, m, manifest, kind, norm, agg);
  }

  private static EnsembleModel assemble(
      Path dir, JsonNode m, Path manifest, EnsembleKind kind, Optional<Normalization> norm, AggregationConfig agg)
      throws IOException {
    EnsembleModel base =
        switch (kind) {
          case SINGLE, LINEAR -> fromCheckpoint(dir.resolve(m.path("model").asText(".")));
          case INDEPENDENT -> independent(dir, m, manifest);
          case LORA -> fromPeft(dir.resolve(m.path("base").asText()), paths(dir, m.get("adapters"), manifest));
        };
    return new EnsembleModel(
        kind, base.config(), base.members(), base.weights(), base.lora(), norm, agg,
        tokenizerIn(dir).or(base::tokenizer), dir);
  }

  private static EnsembleModel independent(Path dir, JsonNode m, Path manifest) throws IOException {
    List<Path> memberDirs = paths(dir, m.get("members"), manifest);
    Map<String, FloatTensor> w = new LinkedHashMap<>();
    ModelConfig config = null;
    for (int k = 0; k < memberDirs.size(); k++) {
      HfCheckpoint.Checkpoint ck = HfCheckpoint.load(memberDirs.get(k));
      if (ck.numLabels() != 1) {
        throw new IllegalArgumentException(memberDirs.get(k) + ": an independent member must have 1 head, has " + ck.numLabels());
      }
      if (config == null) {
        config = ck.config();
      } else if (!config.equals(ck.config())) {
        throw new IllegalArgumentException(memberDirs.get(k) + ": architecture differs from member 0's");
      }
      for (Map.Entry<String, FloatTensor> e : ck.weights().entrySet()) {
        if (!e.getKey().equals(LmHead.KEY)) {
          w.put(IndependentGraph.prefix(k) + e.getKey(), e.getValue());
        }
      }
    }
    return new EnsembleModel(
        EnsembleKind.INDEPENDENT, config, memberDirs.size(), w, null, Optional.empty(), AggregationConfig.mean(),
        tokenizerIn(memberDirs.get(0)), dir);
  }

  private static List<Path> paths(Path dir, JsonNode arr, Path manifest) {
    if (arr == null || !arr.isArray() || arr.isEmpty()) {
      throw new IllegalArgumentException(manifest + ": expected a non-empty array of member directories");
    }
    List<Path> out = new ArrayList<>();
    arr.forEach(p -> out.add(dir.resolve(p.asText())));
    return out;
  }

  static AggregationConfig aggregation(JsonNode a, Path source) {
    if (a == null || a.isNull()) {
      return AggregationConfig.mean();
    }
    try {
      return new AggregationConfig(
          rule(a.path("rule").asText("mean")), a.path("beta").asDouble(0), a.path("lambda").asDouble(0));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(source + ": aggregation: " + e.getMessage(), e);
    }
  }

  /** An aggregation rule by its lower-case name; the error lists the names (not "No enum constant"). */
  public static Aggregation rule(String name) {
    for (Aggregation a : Aggregation.values()) {
      if (a.name().toLowerCase(java.util.Locale.ROOT).equals(name)) {
        return a;
      }
    }
    throw new IllegalArgumentException("rule '" + name + "' is not one of " + String.join(", ",
        java.util.Arrays.stream(Aggregation.values()).map(x -> x.name().toLowerCase(java.util.Locale.ROOT)).toList()));
  }

  private static float[] floats(JsonNode n) {
    float[] out = new float[n.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) n.get(i).asDouble();
    }
    return out;
  }

  private static Optional<Path> tokenizerIn(Path dir) {
    Path t = dir.resolve("tokenizer.json");
    return Files.isRegularFile(t) ? Optional.of(t) : Optional.empty();
  }

  /**
   * Writes {@code ensemble.json} (atomically) into {@code dir}. A run directory is complete only
   * when its {@code run.json} says so afterwards ({@link RunDirs#markComplete}).
   */
  public static void writeManifest(
      Path dir, EnsembleKind kind, int k, ObjectNode layout, AggregationConfig agg, Normalization norm, ObjectNode provenance)
      throws IOException {
    ObjectNode m = JSON.createObjectNode();
    m.put("format", "rme-ensemble/1");
    m.put("kind", kind.id());
    m.put("k", k);
    m.setAll(layout);
    ObjectNode a = m.putObject("aggregation");
    a.put("rule", agg.rule().name().toLowerCase(java.util.Locale.ROOT));
    a.put("beta", agg.beta());
    a.put("lambda", agg.lambda());
    if (norm != null) {
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
