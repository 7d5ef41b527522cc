package dev.rewardensemble.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.Precision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Import and export of Hugging Face checkpoint directories ({@code config.json} + {@code
 * model.safetensors} or a sharded {@code model.safetensors.index.json}).
 *
 * <p>Supported architectures: {@code GPT2ForSequenceClassification}, {@code
 * LlamaForSequenceClassification} (trunk and {@code score} head), and the trunks of {@code
 * GPT2LMHeadModel}, {@code LlamaForCausalLM}, {@code GPT2Model}, {@code LlamaModel} (with the
 * language-model head when present). Every tensor's name and shape is checked against the
 * architecture; errors name the file, the key and both shapes.
 */
public final class HfCheckpoint {
  private static final ObjectMapper JSON = new ObjectMapper();

  private HfCheckpoint() {}

  /** Key of the reward heads, {@code score.weight [num_labels, H]} ({@code model.RewardHeads}). */
  public static final String SCORE_KEY = "score.weight";

  /** Key of an untied language-model head, {@code lm_head.weight [V, H]} ({@code model.LmHead}). */
  public static final String LM_HEAD_KEY = "lm_head.weight";

  /** What the checkpoint's head is. */
  public enum Kind {
    /** {@code ...ForSequenceClassification}: trunk + {@code score.weight [num_labels, H]}. */
    SEQUENCE_CLASSIFICATION,
    /** {@code ...ForCausalLM} / {@code GPT2LMHeadModel}: trunk + language-model head. */
    CAUSAL_LM,
    /** Bare trunk ({@code GPT2Model}, {@code LlamaModel}). */
    BASE
  }

  /**
   * An imported checkpoint: configuration, head kind and every weight by its project key (the
   * Hugging Face key of the {@code ...ForSequenceClassification} / {@code ...ForCausalLM} layout).
   *
   * @param numLabels reward heads in {@code score.weight} (0 when there is none)
   */
  public record Checkpoint(
      Path dir,
      ModelConfig config,
      String architecture,
      Kind kind,
      int numLabels,
      Map<String, FloatTensor> weights) {}

  /** Whether {@code dir} looks like a Hugging Face checkpoint directory. */
  public static boolean isCheckpoint(Path dir) {
    return Files.isRegularFile(dir.resolve("config.json"))
        && (Files.isRegularFile(dir.resolve("model.safetensors"))
            || Files.isRegularFile(dir.resolve("model.safetensors.index.json")));
  }

  /** The kind of {@code architecture}, which must be one of {@code config}'s family's classes. */
  public static Kind kindOf(String architecture, ModelConfig config, Path configFile) {
    if (architecture.equals(config.sequenceClassificationArchitecture())) {
      return Kind.SEQUENCE_CLASSIFICATION;
    }
    if (architecture.equals(config.causalLmArchitecture())) {
      return Kind.CAUSAL_LM;
    }
    if (architecture.equals(config.baseArchitecture())) {
      return Kind.BASE;
    }
    throw new IllegalArgumentException(
        configFile
            + ": architecture '"
            + architecture
            + "' is not supported for model_type '"
            + config.modelType()
            + "' (supported: "
            + config.sequenceClassificationArchitecture()
            + ", "
            + config.causalLmArchitecture()
            + ", "
            + config.baseArchitecture()
            + ")");
  }

  /**
   * Imports a checkpoint directory, checking every tensor, with every weight read into the heap as
   * float32 (refused first when that cannot fit). {@link #open} reads none.
   */
  public static Checkpoint load(Path dir) throws IOException {
    Checkpoint ck = open(dir);
    LazyWeights lazy = (LazyWeights) ck.weights();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    lazy.keySet().forEach(k -> shapes.put(k, lazy.shape(k)));
    // Refused before any tensor is read when the float32 weights cannot fit in this JVM's heap.
    ModelConfigs.requireMemory(ck.config(), shapes, 0);
    return new Checkpoint(
        ck.dir(), ck.config(), ck.architecture(), ck.kind(), ck.numLabels(), lazy.materializeAll());
  }

  /**
   * Opens a checkpoint directory, checking every tensor's name and shape from the safetensors
   * headers alone: its {@link Checkpoint#weights} are a {@link LazyWeights} whose tensors stay on
   * disk until read or streamed into a graph's variables.
   */
  public static Checkpoint open(Path dir) throws IOException {
    Path configFile = dir.resolve("config.json");
    if (!Files.isRegularFile(configFile)) {
      throw new IllegalArgumentException(
          "not a Hugging Face checkpoint: " + configFile + " not found");
    }
    JsonNode cfgNode;
    try {
      cfgNode = JSON.readTree(configFile.toFile());
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException(
          configFile
              + ": invalid JSON at line "
              + e.getLocation().getLineNr()
              + ": "
              + e.getOriginalMessage());
    }
    ModelConfig config = ModelConfigs.parse(cfgNode, configFile.toString());
    JsonNode archs = cfgNode.path("architectures");
    String arch =
        archs.isArray() && archs.size() > 0 ? archs.get(0).asText() : config.baseArchitecture();
    Kind kind = kindOf(arch, config, configFile);
    try (TensorSource src = TensorSources.openCheckpoint(dir)) {
      Map<String, String> keyMap = normalizeKeys(src, config);
      Map<String, long[]> expected = new LinkedHashMap<>(config.parameterShapes());
      int numLabels = 0;
      if (kind == Kind.SEQUENCE_CLASSIFICATION) {
        TensorInfo score =
            keyMap.containsValue(SCORE_KEY) ? src.info(sourceKey(keyMap, SCORE_KEY)) : null;
        numLabels =
            score != null && score.rank() == 2
                ? (int) score.shape()[0]
                : cfgNode.path("num_labels").asInt(1);
        expected.put(SCORE_KEY, new long[] {numLabels, config.hiddenSize()});
      }
      boolean hasLmHead = keyMap.containsValue(LM_HEAD_KEY);
      if (kind == Kind.CAUSAL_LM && (hasLmHead || !config.tieWordEmbeddings())) {
        expected.put(LM_HEAD_KEY, new long[] {config.vocabSize(), config.hiddenSize()});
      }
      List<String> problems = new ArrayList<>();
      for (Map.Entry<String, String> e : keyMap.entrySet()) {
        String key = e.getValue();
        long[] want = expected.get(key);
        TensorInfo info = src.info(e.getKey());
        if (want == null) {
          if (!(kind == Kind.CAUSAL_LM && key.equals(LM_HEAD_KEY))) {
            problems.add("unexpected tensor '" + e.getKey() + "' " + info.shapeString());
          }
        } else if (!Arrays.equals(want, info.shape())) {
          problems.add(
              "tensor '"
                  + e.getKey()
                  + "' has shape "
                  + info.shapeString()
                  + ", the config implies "
                  + Arrays.toString(want));
        }
      }
      TreeSet<String> missing = new TreeSet<>(expected.keySet());
      missing.removeAll(keyMap.values());
      for (String m : missing) {
        problems.add("missing tensor '" + m + "' " + Arrays.toString(expected.get(m)));
      }
      if (!problems.isEmpty()) {
        int shown = Math.min(10, problems.size());
        throw new IllegalArgumentException(
            src.path()
                + " ("
                + arch
                + "): "
                + String.join("; ", problems.subList(0, shown))
                + (problems.size() > shown ? "; and " + (problems.size() - shown) + " more" : ""));
      }
      LazyWeights weights = new LazyWeights();
      for (Map.Entry<String, String> e : keyMap.entrySet()) {
        if (expected.containsKey(e.getValue())) {
          weights.putLazy(e.getValue(), dir, e.getKey(), src.info(e.getKey()));
        }
      }
      return new Checkpoint(dir, config, arch, kind, numLabels, weights);
    }
  }

  private static String sourceKey(Map<String, String> keyMap, String projectKey) {
    return keyMap.entrySet().stream()
        .filter(e -> e.getValue().equals(projectKey))
        .findFirst()
        .orElseThrow()
        .getKey();
  }

  /**
   * Source key to project key. Bare-trunk checkpoints ({@code h.0...}, {@code layers.0...}) get the
   * family prefix; known non-parameter buffers (GPT-2's {@code attn.bias}/{@code attn.masked_bias},
   * rotary {@code inv_freq}) are dropped.
   */
  private static Map<String, String> normalizeKeys(TensorSource src, ModelConfig config) {
    Map<String, String> out = new LinkedHashMap<>();
    String prefix = config.trunkPrefix();
    for (String key : src.keys()) {
      if (key.endsWith(".attn.bias") && !key.contains("c_attn")
          || key.endsWith(".attn.masked_bias")
          || key.endsWith("rotary_emb.inv_freq")) {
        continue;
      }
      String k = key;
      if (!k.startsWith(prefix) && !k.equals(SCORE_KEY) && !k.equals(LM_HEAD_KEY)) {
        k = prefix + k;
      }
      out.put(key, k);
    }
    return out;
  }

  /**
   * Writes a checkpoint directory in the Hugging Face layout: {@code config.json} for {@code
   * architecture} and {@code model.safetensors}. Written to a temporary directory and renamed when
   * complete.
   */
  public static void save(
      Path dir,
      ModelConfig config,
      String architecture,
      Map<String, FloatTensor> weights,
      Map<String, String> metadata)
      throws IOException {
    save(dir, config, architecture, weights, metadata, Precision.FLOAT32);
  }

  /**
   * {@link #save(Path, ModelConfig, String, Map, Map)} with the tensors stored as {@code dtype}
   * (bfloat16: rounded to nearest even, as transformers saves a bfloat16 model).
   */
  public static void save(
      Path dir,
      ModelConfig config,
      String architecture,
      Map<String, FloatTensor> weights,
      Map<String, String> metadata,
      Precision dtype)
      throws IOException {
    Path tmp = TempPaths.newDirectory(dir);
    try {
      writeFiles(tmp, config, architecture, weights, metadata, dtype);
      AtomicDirs.replace(tmp, dir);
    } catch (IOException | RuntimeException e) {
      AtomicDirs.deleteRecursively(tmp);
      throw e;
    }
  }

  /**
   * Writes {@code config.json} and {@code model.safetensors} of a checkpoint into the existing
   * directory {@code dir} (for a caller that stages and publishes the directory itself).
   */
  public static void writeFiles(
      Path dir,
      ModelConfig config,
      String architecture,
      Map<String, FloatTensor> weights,
      Map<String, String> metadata)
      throws IOException {
    writeFiles(dir, config, architecture, weights, metadata, Precision.FLOAT32);
  }

  /** {@link #writeFiles(Path, ModelConfig, String, Map, Map)} with the tensors as {@code dtype}. */
  public static void writeFiles(
      Path dir,
      ModelConfig config,
      String architecture,
      Map<String, FloatTensor> weights,
      Map<String, String> metadata,
      Precision dtype)
      throws IOException {
    int numLabels =
        weights.containsKey(SCORE_KEY) ? (int) LazyWeights.shapeOf(weights, SCORE_KEY)[0] : 0;
    ObjectNode cfg = ModelConfigs.toHf(config, architecture, numLabels);
    JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), cfg);
    Map<String, String> meta = new LinkedHashMap<>(metadata);
    meta.putIfAbsent("format", "pt");
    Safetensors.write(dir.resolve("model.safetensors"), weights, meta, dtype);
  }
}
