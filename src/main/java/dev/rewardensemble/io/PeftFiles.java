package dev.rewardensemble.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ModelConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Import and export of PEFT LoRA adapters of sequence-classification reward models ({@code
 * adapter_config.json} + {@code adapter_model.safetensors}, keys such as {@code
 * base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight [r, in]}, {@code ...lora_B.weight
 * [out, r]} and the {@code score} head saved through {@code modules_to_save} as {@code
 * base_model.model.score.weight [1, H]}).
 *
 * <p>Supported: plain LoRA ({@code peft_type LORA}) with {@code bias "none"}, {@code lora_bias
 * false}, no DoRA, empty {@code rank_pattern}/{@code alpha_pattern}, {@code target_modules} as a
 * list of the family's LoRA targets (or {@code "all-linear"}), and {@code layers_to_transform}
 * (adapters only in those blocks). rsLoRA ({@code use_rslora true}) is supported: its scaling is
 * {@code alpha / sqrt(r)} instead of {@code alpha / r}. {@code fan_in_fan_out} must be false for
 * Llama; for GPT-2's Conv1D layers PEFT sets it to true, and either value is accepted (the adapter
 * tensors are {@code [r, in]} / {@code [out, r]} regardless).
 *
 * <p>This class is the file format only: one adapter in PEFT's orientation ({@link Adapter}). The
 * ensemble layout, K adapters stacked into {@code [K, ...]} tensors for the graph, is {@code
 * lora.PeftAdapters}.
 */
public final class PeftFiles {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** File names of a PEFT adapter directory. */
  public static final String CONFIG_FILE = "adapter_config.json";

  public static final String WEIGHTS_FILE = "adapter_model.safetensors";

  /** Prefix PEFT puts before the base model's keys. */
  public static final String PREFIX = "base_model.model.";

  private PeftFiles() {}

  /**
   * One imported adapter, in PEFT's orientation.
   *
   * @param scaling {@code alpha / r}, or {@code alpha / sqrt(r)} for rsLoRA
   * @param loraA module key (e.g. {@code model.layers.0.mlp.up_proj}) to {@code [r, in]}
   * @param loraB module key to {@code [out, r]}
   * @param score the head {@code [1, H]}
   */
  public record Adapter(
      Path dir,
      int rank,
      double alpha,
      double scaling,
      double dropout,
      List<String> targetModules,
      Map<String, FloatTensor> loraA,
      Map<String, FloatTensor> loraB,
      FloatTensor score) {}

  /** Reads one PEFT adapter directory for base model {@code c}, checking every tensor's shape. */
  public static Adapter read(Path dir, ModelConfig c) throws IOException {
    Path configFile = dir.resolve(CONFIG_FILE);
    Path weightsFile = dir.resolve(WEIGHTS_FILE);
    if (!Files.isRegularFile(configFile)) {
      throw new IllegalArgumentException("not a PEFT adapter: " + configFile + " not found");
    }
    if (!Files.isRegularFile(weightsFile)) {
      throw new IllegalArgumentException("not a PEFT adapter: " + weightsFile + " not found");
    }
    JsonNode cfg;
    try {
      cfg = JSON.readTree(configFile.toFile());
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(
          configFile
              + ": invalid JSON at line "
              + e.getLocation().getLineNr()
              + ": "
              + e.getOriginalMessage());
    }
    String peftType = cfg.path("peft_type").asText("");
    if (!peftType.equals("LORA")) {
      throw new IllegalArgumentException(
          configFile + ": peft_type '" + peftType + "' is not supported (only LORA)");
    }
    if (cfg.path("use_dora").asBoolean(false)) {
      throw new IllegalArgumentException(configFile + ": DoRA is not supported (use_dora is true)");
    }
    if (cfg.path("lora_bias").asBoolean(false)) {
      throw new IllegalArgumentException(configFile + ": lora_bias true is not supported");
    }
    String bias = cfg.path("bias").asText("none");
    if (!bias.equals("none")) {
      throw new IllegalArgumentException(
          configFile + ": bias '" + bias + "' is not supported (only \"none\")");
    }
    boolean fanInFanOut = cfg.path("fan_in_fan_out").asBoolean(false);
    if (fanInFanOut && !c.conv1dWeights()) {
      throw new IllegalArgumentException(
          configFile
              + ": fan_in_fan_out is true, but "
              + c.modelType()
              + " projections are torch Linear layers");
    }
    for (String field : List.of("rank_pattern", "alpha_pattern")) {
      JsonNode p = cfg.path(field);
      if (!p.isMissingNode() && !p.isNull() && p.size() > 0) {
        throw new IllegalArgumentException(
            configFile + ": " + field + " " + p + " is not supported (must be empty)");
      }
    }
    for (String field :
        List.of("layer_replication", "target_parameters", "trainable_token_indices")) {
      JsonNode p = cfg.path(field);
      if (!p.isMissingNode() && !p.isNull() && !(p.isContainerNode() && p.size() == 0)) {
        throw new IllegalArgumentException(
            configFile + ": " + field + " " + p + " is not supported (must be null)");
      }
    }
    int r = cfg.path("r").asInt(0);
    double alpha = cfg.path("lora_alpha").asDouble(0);
    if (r <= 0) {
      throw new IllegalArgumentException(configFile + ": r must be > 0, got " + cfg.path("r"));
    }
    if (!(alpha > 0)) {
      throw new IllegalArgumentException(
          configFile + ": lora_alpha must be > 0, got " + cfg.path("lora_alpha"));
    }
    boolean rslora = cfg.path("use_rslora").asBoolean(false);
    double scaling = rslora ? alpha / Math.sqrt(r) : alpha / r;
    double dropout = cfg.path("lora_dropout").asDouble(0);
    if (!(dropout >= 0 && dropout < 1)) {
      throw new IllegalArgumentException(
          configFile + ": lora_dropout must be in [0, 1), got " + dropout);
    }
    List<String> allowed = c.loraTargets();
    List<String> targets = targetModules(cfg.path("target_modules"), allowed, configFile);
    Set<Integer> layers = layersToTransform(cfg.path("layers_to_transform"), c, configFile);

    Map<String, long[]> base = c.parameterShapes();
    boolean conv1d = c.conv1dWeights();
    Map<String, FloatTensor> as = new LinkedHashMap<>();
    Map<String, FloatTensor> bs = new LinkedHashMap<>();
    FloatTensor score = null;
    try (Safetensors src = Safetensors.open(weightsFile)) {
      for (String key : src.keys()) {
        String k = key.startsWith(PREFIX) ? key.substring(PREFIX.length()) : key;
        long[] shape = src.info(key).shape();
        if (k.equals(HfCheckpoint.SCORE_KEY)) {
          long[] want = {1, c.hiddenSize()};
          checkShape(weightsFile, key, shape, want);
          score = src.read(key);
          continue;
        }
        boolean isA = k.endsWith(".lora_A.weight");
        boolean isB = k.endsWith(".lora_B.weight");
        if (!isA && !isB) {
          throw new IllegalArgumentException(
              weightsFile
                  + ": unexpected tensor '"
                  + key
                  + "' "
                  + Arrays.toString(shape)
                  + " (only lora_A/lora_B weights and the score head are supported)");
        }
        String module = k.substring(0, k.length() - ".lora_A.weight".length());
        String target = module.substring(module.lastIndexOf('.') + 1);
        long[] w = base.get(module + ".weight");
        if (w == null || !allowed.contains(target)) {
          throw new IllegalArgumentException(
              weightsFile
                  + ": tensor '"
                  + key
                  + "' adapts '"
                  + module
                  + "', which is not a LoRA target of "
                  + c.modelType()
                  + " (allowed: "
                  + String.join(", ", allowed)
                  + ")");
        }
        if (!targets.contains(target)) {
          throw new IllegalArgumentException(
              weightsFile
                  + ": tensor '"
                  + key
                  + "' adapts '"
                  + target
                  + "', which is not in target_modules "
                  + targets
                  + " of "
                  + configFile);
        }
        int layer = layerOf(module);
        if (layers != null && !layers.contains(layer)) {
          throw new IllegalArgumentException(
              weightsFile
                  + ": tensor '"
                  + key
                  + "' is in block "
                  + layer
                  + ", outside layers_to_transform "
                  + new TreeSet<>(layers)
                  + " of "
                  + configFile);
        }
        long in = conv1d ? w[0] : w[1];
        long out = conv1d ? w[1] : w[0];
        checkShape(weightsFile, key, shape, isA ? new long[] {r, in} : new long[] {out, r});
        (isA ? as : bs).put(module, src.read(key));
      }
    }
    for (String m : as.keySet()) {
      if (!bs.containsKey(m)) {
        throw new IllegalArgumentException(
            weightsFile + ": '" + PREFIX + m + ".lora_A.weight' has no lora_B");
      }
    }
    for (String m : bs.keySet()) {
      if (!as.containsKey(m)) {
        throw new IllegalArgumentException(
            weightsFile + ": '" + PREFIX + m + ".lora_B.weight' has no lora_A");
      }
    }
    if (score == null) {
      throw new IllegalArgumentException(
          "adapter " + dir + " has no score head (modules_to_save must include score)");
    }
    if (as.isEmpty()) {
      throw new IllegalArgumentException(
          "adapter " + dir + " has no lora_A/lora_B tensors in " + weightsFile);
    }
    return new Adapter(dir, r, alpha, scaling, dropout, targets, as, bs, score);
  }

  /**
   * Block index of a module key ({@code model.layers.3.mlp.up_proj} -> 3), or -1 when the key has
   * no numeric part.
   */
  public static int layerOf(String module) {
    for (String part : module.split("\\.")) {
      if (!part.isEmpty() && part.chars().allMatch(Character::isDigit)) {
        return Integer.parseInt(part);
      }
    }
    return -1;
  }

  private static void checkShape(Path file, String key, long[] got, long[] want) {
    if (!Arrays.equals(got, want)) {
      throw new IllegalArgumentException(
          file
              + ": tensor '"
              + key
              + "' has shape "
              + Arrays.toString(got)
              + ", the base model implies "
              + Arrays.toString(want));
    }
  }

  private static List<String> targetModules(JsonNode n, List<String> allowed, Path configFile) {
    if (n.isTextual()) {
      if (n.asText().equals("all-linear")) {
        return allowed;
      }
      throw new IllegalArgumentException(
          configFile
              + ": target_modules \""
              + n.asText()
              + "\" is a regular expression, which is not supported"
              + " (use a list of "
              + String.join(", ", allowed)
              + ")");
    }
    if (!n.isArray() || n.size() == 0) {
      throw new IllegalArgumentException(
          configFile + ": target_modules must be a non-empty list, got " + n);
    }
    List<String> out = new ArrayList<>();
    for (JsonNode m : n) {
      String name = m.asText();
      if (!allowed.contains(name)) {
        throw new IllegalArgumentException(
            configFile
                + ": target module '"
                + name
                + "' is not supported (allowed: "
                + String.join(", ", allowed)
                + ")");
      }
      out.add(name);
    }
    return out;
  }

  private static Set<Integer> layersToTransform(JsonNode n, ModelConfig c, Path configFile) {
    if (n.isMissingNode() || n.isNull()) {
      return null;
    }
    Set<Integer> out = new HashSet<>();
    if (n.isInt()) {
      out.add(n.asInt());
    } else if (n.isArray()) {
      n.forEach(v -> out.add(v.asInt()));
    } else {
      throw new IllegalArgumentException(
          configFile + ": layers_to_transform must be an int or a list, got " + n);
    }
    for (int l : out) {
      if (l < 0 || l >= c.numLayers()) {
        throw new IllegalArgumentException(
            configFile
                + ": layers_to_transform has block "
                + l
                + ", the model has "
                + c.numLayers());
      }
    }
    return out;
  }

  /**
   * Writes one adapter as a PEFT adapter directory ({@code adapter_config.json} with its rank,
   * alpha, dropout and target modules, {@code layers_to_transform}, the {@code score} head as a
   * module to save; {@code adapter_model.safetensors} with the key names PEFT writes), so that
   * {@link #read} gives back exactly the same tensors. Staged in a temporary directory: a new
   * {@code dir} appears complete or not at all; in an existing {@code dir} only the adapter's two
   * files are replaced (each by a rename), other files stay.
   *
   * @param a {@code loraA}/{@code loraB} in module order, PEFT's orientation; plain LoRA scaling
   * @param layersToTransform the blocks that carry adapters, or null for all
   * @param baseModel stored as {@code base_model_name_or_path}
   */
  public static void write(
      Path dir, ModelConfig c, Adapter a, List<Integer> layersToTransform, String baseModel)
      throws IOException {
    if (a.scaling() != a.alpha() / a.rank()) {
      throw new IllegalArgumentException(
          "cannot write adapter: scaling "
              + a.scaling()
              + " is not lora_alpha / r = "
              + a.alpha() / a.rank()
              + " (rsLoRA adapters are read, not written)");
    }
    Map<String, FloatTensor> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, FloatTensor> e : a.loraA().entrySet()) {
      FloatTensor b = a.loraB().get(e.getKey());
      if (b == null) {
        throw new IllegalArgumentException(
            "cannot write adapter: '" + e.getKey() + "' has no lora_B");
      }
      tensors.put(PREFIX + e.getKey() + ".lora_A.weight", e.getValue());
      tensors.put(PREFIX + e.getKey() + ".lora_B.weight", b);
    }
    tensors.put(PREFIX + HfCheckpoint.SCORE_KEY, a.score());

    ObjectNode cfg = JSON.createObjectNode();
    cfg.put("peft_type", "LORA");
    cfg.put("task_type", "SEQ_CLS");
    cfg.put("base_model_name_or_path", baseModel);
    cfg.put("r", a.rank());
    cfg.put("lora_alpha", a.alpha());
    cfg.put("lora_dropout", a.dropout());
    ArrayNode targets = cfg.putArray("target_modules");
    a.targetModules().forEach(targets::add);
    cfg.put("fan_in_fan_out", c.conv1dWeights());
    cfg.put("bias", "none");
    cfg.put("lora_bias", false);
    cfg.put("use_dora", false);
    cfg.put("use_rslora", false);
    cfg.put("init_lora_weights", true);
    cfg.put("inference_mode", true);
    cfg.putArray("modules_to_save").add("score");
    cfg.putObject("rank_pattern");
    cfg.putObject("alpha_pattern");
    if (layersToTransform != null) {
      ArrayNode layers = cfg.putArray("layers_to_transform");
      layersToTransform.forEach(layers::add);
    } else {
      cfg.putNull("layers_to_transform");
    }
    cfg.putNull("layers_pattern");

    OutputDirs.write(
        dir,
        stage -> {
          JSON.writerWithDefaultPrettyPrinter()
              .writeValue(stage.resolve(CONFIG_FILE).toFile(), cfg);
          Safetensors.write(stage.resolve(WEIGHTS_FILE), tensors, Map.of("format", "pt"));
        });
  }
}
