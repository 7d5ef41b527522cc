package dev.rewardensemble.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.Gpt2Config;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.StackedLora;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.model.Transformers;
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
 * <p>Combining K adapters ({@link #stack}) into the {@link StackedLora} layout {@code lora_A [K,
 * in, R]}, {@code lora_B [K, R, out]}: R is the largest rank, smaller ranks are padded with zero
 * columns of A and zero rows of B (which adds nothing); a module a member does not target gets zero
 * A and B; and since the graph has one scaling, member k's own scaling {@code s_k} is folded into
 * its B as {@code B_k * s_k / s} where {@code s} is member 0's scaling (the factor is exactly 1,
 * and not applied, when the members agree).
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

  /**
   * K adapters in the stacked layout of {@link StackedLora} plus the heads: {@code <module>.lora_A
   * [K, in, R]}, {@code <module>.lora_B [K, R, out]} for every module of {@link
   * StackedLora#modules(ModelConfig, LoraConfig)}, and {@code score.weight [K, H]}.
   */
  public record Stacked(
      ModelConfig config, LoraConfig lora, int members, Map<String, FloatTensor> weights) {

    /**
     * The same ensemble with adapters only in the top {@code n} blocks (0 = all). Modules that
     * appear get zero A and B; modules that disappear must have an all-zero B in every member.
     */
    public Stacked withLoraLayers(int n) {
      LoraConfig to = lora.withLoraLayers(n).checkFor(config);
      Map<String, FloatTensor> out = new LinkedHashMap<>();
      Set<String> kept = new HashSet<>();
      for (StackedLora.Module m : StackedLora.modules(config, to)) {
        kept.add(m.module());
        String a = m.module() + StackedLora.A;
        String b = m.module() + StackedLora.B;
        out.put(a, weights.getOrDefault(a, FloatTensor.zeros(members, m.in(), to.rank())));
        out.put(b, weights.getOrDefault(b, FloatTensor.zeros(members, to.rank(), m.out())));
      }
      for (StackedLora.Module m : StackedLora.modules(config, lora)) {
        if (!kept.contains(m.module())) {
          FloatTensor b = weights.get(m.module() + StackedLora.B);
          for (float v : b.data()) {
            if (v != 0f) {
              throw new IllegalArgumentException(
                  "cannot keep adapters only in the top "
                      + n
                      + " blocks: "
                      + m.module()
                      + StackedLora.B
                      + " (block "
                      + m.layer()
                      + ") is not zero");
            }
          }
        }
      }
      out.put(RewardHeads.KEY, weights.get(RewardHeads.KEY));
      return new Stacked(config, to, members, out);
    }
  }

  /** Reads and checks the adapters in {@code dirs} and stacks them; see {@link #stack}. */
  public static Stacked load(ModelConfig c, List<Path> dirs) throws IOException {
    List<Adapter> adapters = new ArrayList<>();
    for (Path d : dirs) {
      adapters.add(read(d, c));
    }
    return stack(c, adapters);
  }

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
    if (fanInFanOut && !(c instanceof Gpt2Config)) {
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
    List<String> allowed = Transformers.loraTargets(c);
    List<String> targets = targetModules(cfg.path("target_modules"), allowed, configFile);
    Set<Integer> layers = layersToTransform(cfg.path("layers_to_transform"), c, configFile);

    Map<String, long[]> base = Transformers.parameterShapes(c);
    boolean conv1d = c instanceof Gpt2Config;
    Map<String, FloatTensor> as = new LinkedHashMap<>();
    Map<String, FloatTensor> bs = new LinkedHashMap<>();
    FloatTensor score = null;
    try (Safetensors src = Safetensors.open(weightsFile)) {
      for (String key : src.keys()) {
        String k = key.startsWith(PREFIX) ? key.substring(PREFIX.length()) : key;
        long[] shape = src.info(key).shape();
        if (k.equals(RewardHeads.KEY)) {
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
        int layer = StackedLora.layerOf(module);
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
   * Stacks K adapters (member k = {@code adapters.get(k)}). The stacked {@link LoraConfig} has rank
   * R = the largest rank, member 0's scaling ({@code alpha = s_0 * R}) and dropout, the union of
   * targeted modules, and {@code loraLayers} covering the lowest adapted block.
   */
  public static Stacked stack(ModelConfig c, List<Adapter> adapters) {
    if (adapters.isEmpty()) {
      throw new IllegalArgumentException("no adapters to stack");
    }
    int k = adapters.size();
    int rank = adapters.stream().mapToInt(Adapter::rank).max().orElseThrow();
    double s = adapters.get(0).scaling();
    Set<String> used = new HashSet<>();
    int minLayer = Integer.MAX_VALUE;
    for (Adapter a : adapters) {
      for (String m : a.loraA().keySet()) {
        used.add(m.substring(m.lastIndexOf('.') + 1));
        minLayer = Math.min(minLayer, StackedLora.layerOf(m));
      }
    }
    List<String> targets = new ArrayList<>();
    for (String t : Transformers.loraTargets(c)) {
      if (used.contains(t)) {
        targets.add(t);
      }
    }
    int loraLayers = minLayer <= 0 ? 0 : c.numLayers() - minLayer;
    LoraConfig lora =
        new LoraConfig(rank, s * rank, adapters.get(0).dropout(), targets, loraLayers).checkFor(c);

    Map<String, FloatTensor> out = new LinkedHashMap<>();
    for (StackedLora.Module m : StackedLora.modules(c, lora)) {
      int in = m.in();
      int o = m.out();
      float[] a = new float[k * in * rank];
      float[] b = new float[k * rank * o];
      for (int member = 0; member < k; member++) {
        Adapter ad = adapters.get(member);
        FloatTensor pa = ad.loraA().get(m.module());
        if (pa == null) {
          continue;
        }
        FloatTensor pb = ad.loraB().get(m.module());
        int r = ad.rank();
        float f = (float) (ad.scaling() / s);
        for (int i = 0; i < in; i++) {
          for (int j = 0; j < r; j++) {
            a[(member * in + i) * rank + j] = pa.data()[j * in + i]; // [r, in] -> [in, R]
          }
        }
        for (int j = 0; j < r; j++) {
          for (int x = 0; x < o; x++) {
            float v = pb.data()[x * r + j]; // [out, r] -> [R, out]
            b[(member * rank + j) * o + x] = f == 1f ? v : v * f;
          }
        }
      }
      out.put(m.module() + StackedLora.A, new FloatTensor(new long[] {k, in, rank}, a));
      out.put(m.module() + StackedLora.B, new FloatTensor(new long[] {k, rank, o}, b));
    }
    int h = c.hiddenSize();
    float[] heads = new float[k * h];
    for (int member = 0; member < k; member++) {
      System.arraycopy(adapters.get(member).score().data(), 0, heads, member * h, h);
    }
    out.put(RewardHeads.KEY, new FloatTensor(new long[] {k, h}, heads));
    return new Stacked(c, lora, k, out);
  }

  /**
   * Writes member {@code member} of a stacked ensemble as a PEFT adapter directory (rank R, alpha
   * and target modules of {@code stacked.lora()}, {@code layers_to_transform} when the adapters
   * cover only the top blocks, the {@code score} head as a module to save), with the key names PEFT
   * writes, so that {@link #read} gives back exactly the same tensors. Staged in a temporary
   * directory: a new {@code dir} appears complete or not at all; in an existing {@code dir} only
   * the adapter's two files are replaced (each by a rename), other files stay.
   *
   * @param baseModel stored as {@code base_model_name_or_path}
   */
  public static void export(Path dir, Stacked stacked, int member, String baseModel)
      throws IOException {
    if (member < 0 || member >= stacked.members()) {
      throw new IllegalArgumentException(
          "member " + member + " out of range: the ensemble has " + stacked.members() + " members");
    }
    ModelConfig c = stacked.config();
    LoraConfig lora = stacked.lora();
    int rank = lora.rank();
    Map<String, FloatTensor> tensors = new LinkedHashMap<>();
    for (StackedLora.Module m : StackedLora.modules(c, lora)) {
      int in = m.in();
      int o = m.out();
      float[] sa = stacked.weights().get(m.module() + StackedLora.A).data();
      float[] sb = stacked.weights().get(m.module() + StackedLora.B).data();
      float[] a = new float[rank * in];
      float[] b = new float[o * rank];
      for (int i = 0; i < in; i++) {
        for (int j = 0; j < rank; j++) {
          a[j * in + i] = sa[(member * in + i) * rank + j]; // [in, R] -> [r, in]
        }
      }
      for (int j = 0; j < rank; j++) {
        for (int x = 0; x < o; x++) {
          b[x * rank + j] = sb[(member * rank + j) * o + x]; // [R, out] -> [out, r]
        }
      }
      tensors.put(
          PREFIX + m.module() + ".lora_A.weight", new FloatTensor(new long[] {rank, in}, a));
      tensors.put(PREFIX + m.module() + ".lora_B.weight", new FloatTensor(new long[] {o, rank}, b));
    }
    int h = c.hiddenSize();
    float[] head =
        Arrays.copyOfRange(
            stacked.weights().get(RewardHeads.KEY).data(), member * h, (member + 1) * h);
    tensors.put(PREFIX + RewardHeads.KEY, new FloatTensor(new long[] {1, h}, head));

    ObjectNode cfg = JSON.createObjectNode();
    cfg.put("peft_type", "LORA");
    cfg.put("task_type", "SEQ_CLS");
    cfg.put("base_model_name_or_path", baseModel);
    cfg.put("r", rank);
    cfg.put("lora_alpha", lora.alpha());
    cfg.put("lora_dropout", lora.dropout());
    ArrayNode targets = cfg.putArray("target_modules");
    lora.targetModules().forEach(targets::add);
    cfg.put("fan_in_fan_out", c instanceof Gpt2Config);
    cfg.put("bias", "none");
    cfg.put("lora_bias", false);
    cfg.put("use_dora", false);
    cfg.put("use_rslora", false);
    cfg.put("init_lora_weights", true);
    cfg.put("inference_mode", true);
    cfg.putArray("modules_to_save").add("score");
    cfg.putObject("rank_pattern");
    cfg.putObject("alpha_pattern");
    int fork = lora.forkLayer(c);
    if (fork > 0) {
      ArrayNode layers = cfg.putArray("layers_to_transform");
      for (int l = fork; l < c.numLayers(); l++) {
        layers.add(l);
      }
    } else {
      cfg.putNull("layers_to_transform");
    }
    cfg.putNull("layers_pattern");

    OutputDirs.write(dir, stage -> {
      JSON.writerWithDefaultPrettyPrinter().writeValue(stage.resolve(CONFIG_FILE).toFile(), cfg);
      Safetensors.write(stage.resolve(WEIGHTS_FILE), tensors, Map.of("format", "pt"));
    });
  }
}
