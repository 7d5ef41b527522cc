package dev.rewardensemble.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.io.AtomicDirs;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.io.StreamingSafetensors;
import dev.rewardensemble.io.TempPaths;
import dev.rewardensemble.io.TensorInfo;
import dev.rewardensemble.io.TensorSources;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * A random reward model written as transformers 5 writes a bf16 {@code
 * LlamaForSequenceClassification} with {@code save_pretrained}: {@code config.json} (its keys,
 * sorted, indented by 2 as {@code json.dumps}), the tensors in the model's {@code state_dict} order
 * split into shards greedily at {@code max_shard_size} (huggingface_hub's {@code
 * split_torch_state_dict_into_shards}: a new shard when the next tensor would overflow the current
 * one), one shard as {@code model.safetensors}, several as {@code model-0000i-of-0000N.safetensors}
 * with {@code model.safetensors.index.json} ({@code total_parameters}, {@code total_size}, the
 * weight map, keys sorted). transformers 5's default {@code max_shard_size} is 50 GB (4.x: 5 GB).
 *
 * <p>Values: RMSNorm weights 1, every other tensor N(0, 0.02) (transformers' {@code
 * initializer_range}) from a generator seeded by the seed and the tensor's name, so a checkpoint
 * with fewer layers ({@link #truncated}) holds exactly the same values for the keys it shares.
 * Written tensor by tensor, chunk by chunk (nothing model-sized in memory), into a temporary
 * directory beside the target that is renamed when complete.
 */
public final class ScaleCheckpoint {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** transformers 5's default {@code max_shard_size}, 50 GB (decimal, as {@code "50GB"}). */
  public static final long TRANSFORMERS5_MAX_SHARD = 50_000_000_000L;

  /** transformers 4.x's default, 5 GB: what most published 7B checkpoints are sharded at. */
  public static final long TRANSFORMERS4_MAX_SHARD = 5_000_000_000L;

  /**
   * The transformers version written into {@code config.json} (the one its layout was taken from).
   */
  public static final String TRANSFORMERS_VERSION = "5.18.0";

  /** Standard deviation of the random weights (transformers' {@code initializer_range}). */
  public static final double STD = 0.02;

  private ScaleCheckpoint() {}

  /** One shard: its file name and its tensors, in state_dict order. */
  public record Shard(String file, List<StreamingSafetensors.Entry> tensors) {}

  /** What a checkpoint directory will hold. */
  public record Plan(ObjectNode config, List<Shard> shards, long totalParameters, long totalBytes) {
    public boolean sharded() {
      return shards.size() > 1;
    }
  }

  /**
   * The {@code config.json} transformers 5 writes for a bf16 {@code LlamaForSequenceClassification}
   * of {@code preset} with one label.
   */
  public static ObjectNode config(ObjectNode preset) {
    ModelConfig c = ModelConfigs.parse(preset, "preset");
    if (!(c instanceof LlamaConfig l)) {
      throw new IllegalArgumentException(
          "the scale checkpoint writer supports Llama presets only, got model_type '"
              + c.modelType()
              + "'");
    }
    if (!l.ropeScaling().type().equals("default")) {
      throw new IllegalArgumentException(
          "the scale checkpoint writer supports the default rope only, got '"
              + l.ropeScaling().type()
              + "'");
    }
    ObjectNode o = JSON.createObjectNode();
    o.putArray("architectures").add("LlamaForSequenceClassification");
    o.put("attention_bias", false);
    o.put("attention_dropout", 0.0);
    o.put("bos_token_id", l.bosTokenId());
    o.put("dtype", "bfloat16");
    o.put("eos_token_id", l.eosTokenId());
    o.put("head_dim", l.headDim());
    o.put("hidden_act", "silu");
    o.put("hidden_size", l.hiddenSize());
    o.putObject("id2label").put("0", "LABEL_0");
    o.put("initializer_range", STD);
    o.put("intermediate_size", l.intermediateSize());
    o.putObject("label2id").put("LABEL_0", 0);
    o.put("max_position_embeddings", l.maxPositionEmbeddings());
    o.put("mlp_bias", false);
    o.put("model_type", "llama");
    o.put("num_attention_heads", l.numHeads());
    o.put("num_hidden_layers", l.numLayers());
    o.put("num_key_value_heads", l.numKeyValueHeads());
    o.put("pad_token_id", l.padTokenId());
    o.put("pretraining_tp", 1);
    o.put("rms_norm_eps", l.rmsNormEps());
    ObjectNode rope = o.putObject("rope_parameters");
    rope.put("rope_theta", l.ropeTheta());
    rope.put("rope_type", "default");
    o.put("tie_word_embeddings", l.tieWordEmbeddings());
    o.put("transformers_version", TRANSFORMERS_VERSION);
    o.put("use_cache", true);
    o.put("vocab_size", l.vocabSize());
    return o;
  }

  /** {@code preset} with only its first {@code layers} blocks (the rest of it unchanged). */
  public static ObjectNode truncated(ObjectNode preset, int layers) {
    ObjectNode n = preset.deepCopy();
    n.put("num_hidden_layers", layers);
    return n;
  }

  /** The checkpoint of {@code preset} (one reward head) split at {@code maxShardBytes}. */
  public static Plan plan(ObjectNode preset, long maxShardBytes) {
    if (maxShardBytes < 1) {
      throw new IllegalArgumentException("max shard size must be >= 1 byte, got " + maxShardBytes);
    }
    ObjectNode cfg = config(preset);
    ModelConfig c = ModelConfigs.parse(cfg, "config.json");
    Map<String, long[]> shapes = c.parameterShapes();
    List<StreamingSafetensors.Entry> order = new ArrayList<>();
    // LlamaForSequenceClassification's state_dict order: model.embed_tokens, per block self_attn
    // (q, k, v, o), mlp (gate, up, down), input_layernorm, post_attention_layernorm; model.norm;
    // score.
    List<String> keys = new ArrayList<>();
    keys.add("model.embed_tokens.weight");
    for (int i = 0; i < c.numLayers(); i++) {
      String p = "model.layers." + i + ".";
      for (String m :
          List.of(
              "self_attn.q_proj",
              "self_attn.k_proj",
              "self_attn.v_proj",
              "self_attn.o_proj",
              "mlp.gate_proj",
              "mlp.up_proj",
              "mlp.down_proj",
              "input_layernorm",
              "post_attention_layernorm")) {
        keys.add(p + m + ".weight");
      }
    }
    keys.add("model.norm.weight");
    for (String k : keys) {
      long[] s = shapes.get(k);
      if (s == null) {
        throw new IllegalStateException("no shape for " + k + " in " + shapes.keySet());
      }
      order.add(new StreamingSafetensors.Entry(k, s));
    }
    if (order.size() != shapes.size()) {
      throw new IllegalStateException(
          "state_dict order covers " + order.size() + " of " + shapes.size() + " tensors");
    }
    order.add(new StreamingSafetensors.Entry("score.weight", new long[] {1, c.hiddenSize()}));
    // huggingface_hub's split: in order, a new shard when the next tensor would overflow.
    List<List<StreamingSafetensors.Entry>> parts = new ArrayList<>();
    List<StreamingSafetensors.Entry> current = new ArrayList<>();
    long currentBytes = 0;
    long params = 0;
    for (StreamingSafetensors.Entry e : order) {
      long bytes = e.size() * 2;
      params += e.size();
      if (bytes > maxShardBytes) {
        parts.add(List.of(e));
        continue;
      }
      if (currentBytes + bytes > maxShardBytes) {
        parts.add(current);
        current = new ArrayList<>();
        currentBytes = 0;
      }
      current.add(e);
      currentBytes += bytes;
    }
    if (!current.isEmpty()) {
      parts.add(current);
    }
    List<Shard> shards = new ArrayList<>();
    for (int i = 0; i < parts.size(); i++) {
      String name =
          parts.size() == 1
              ? TensorSources.SINGLE_FILE
              : String.format("model-%05d-of-%05d.safetensors", i + 1, parts.size());
      shards.add(new Shard(name, List.copyOf(parts.get(i))));
    }
    return new Plan(cfg, List.copyOf(shards), params, params * 2);
  }

  /** The index file's JSON ({@code null} for a single file). */
  public static ObjectNode index(Plan p) {
    if (!p.sharded()) {
      return null;
    }
    ObjectNode idx = JSON.createObjectNode();
    ObjectNode meta = idx.putObject("metadata");
    meta.put("total_parameters", p.totalParameters());
    meta.put("total_size", p.totalBytes());
    ObjectNode map = idx.putObject("weight_map");
    TreeMap<String, String> sorted = new TreeMap<>();
    for (Shard s : p.shards()) {
      s.tensors().forEach(e -> sorted.put(e.name(), s.file()));
    }
    sorted.forEach(map::put);
    return idx;
  }

  /** The values of tensor {@code name} at {@code [offset, offset + count)}. */
  static StreamingSafetensors.Values values(long seed) {
    return new StreamingSafetensors.Values() {
      private String current;
      private SplittableRandom rnd;
      private long next;

      @Override
      public void fill(String name, long offset, float[] out, int count) {
        if (name.endsWith("layernorm.weight") || name.equals("model.norm.weight")) {
          Arrays.fill(out, 0, count, 1f);
          return;
        }
        if (!name.equals(current) || offset != next) {
          if (offset != 0) {
            throw new IllegalStateException("values of " + name + " must be read in order");
          }
          current = name;
          rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ mix(name));
        }
        for (int i = 0; i < count; i++) {
          out[i] = (float) (rnd.nextGaussian() * STD);
        }
        next = offset + count;
      }
    };
  }

  private static long mix(String name) {
    long h = 1125899906842597L;
    for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
      h = 31 * h + b;
    }
    return h;
  }

  /**
   * Writes {@code p} into {@code dir} (which must not exist) with seed {@code seed}: staged in a
   * temporary directory beside it, renamed when every file is complete.
   */
  public static void write(Path dir, Plan p, long seed) throws IOException {
    write(dir, p, values(seed));
  }

  /** {@link #write(Path, Plan, long)} with the values from {@code v}. */
  static void write(Path dir, Plan p, StreamingSafetensors.Values v) throws IOException {
    if (Files.exists(dir)) {
      throw new IllegalArgumentException(dir + " already exists: it is not overwritten");
    }
    Files.createDirectories(dir.toAbsolutePath().getParent());
    Path tmp = TempPaths.newDirectory(dir);
    try {
      for (Shard s : p.shards()) {
        StreamingSafetensors.write(
            tmp.resolve(s.file()), s.tensors(), Map.of("format", "pt"), Precision.BFLOAT16, v);
      }
      ObjectNode idx = index(p);
      if (idx != null) {
        Files.writeString(tmp.resolve(TensorSources.INDEX_FILE), pythonJson(idx));
      }
      Files.writeString(tmp.resolve("config.json"), pythonJson(p.config()));
      AtomicDirs.replace(tmp, dir);
    } catch (IOException | RuntimeException | Error e) {
      AtomicDirs.deleteRecursively(tmp);
      throw e;
    }
  }

  /**
   * Whether {@code dir} already holds {@code p}: its {@code config.json} and index are the plan's
   * and every shard's header lists the plan's tensors as BF16 with their shapes. Values are not
   * read (they are a function of the seed, which the caller puts in the directory's name).
   */
  public static boolean holds(Path dir, Plan p) throws IOException {
    if (!Files.isDirectory(dir)) {
      return false;
    }
    Path cfg = dir.resolve("config.json");
    if (!Files.isRegularFile(cfg) || !Files.readString(cfg).equals(pythonJson(p.config()))) {
      return false;
    }
    ObjectNode idx = index(p);
    Path idxFile = dir.resolve(TensorSources.INDEX_FILE);
    if (idx == null
        ? Files.exists(idxFile)
        : !Files.isRegularFile(idxFile) || !Files.readString(idxFile).equals(pythonJson(idx))) {
      return false;
    }
    for (Shard s : p.shards()) {
      Path f = dir.resolve(s.file());
      if (!Files.isRegularFile(f)) {
        return false;
      }
      try (Safetensors st = Safetensors.open(f)) {
        if (st.keys().size() != s.tensors().size()) {
          return false;
        }
        for (StreamingSafetensors.Entry e : s.tensors()) {
          if (!st.contains(e.name())) {
            return false;
          }
          TensorInfo info = st.info(e.name());
          if (!info.dtype().equals("BF16") || !Arrays.equals(info.shape(), e.shape())) {
            return false;
          }
        }
      }
    }
    return true;
  }

  /** Writes {@code p} into {@code dir} unless it already holds it; refuses anything else there. */
  public static boolean ensure(Path dir, Plan p, long seed) throws IOException {
    if (holds(dir, p)) {
      return false;
    }
    if (Files.exists(dir)) {
      throw new IllegalArgumentException(
          dir
              + " exists but is not the checkpoint this run writes (other config, shards or tensors):"
              + " remove it or choose another --scale-dir");
    }
    write(dir, p, seed);
    return true;
  }

  /** The parsed parameter-key map of a written checkpoint, as the loaders see it. */
  static Map<String, long[]> shapes(Plan p) {
    Map<String, long[]> out = new LinkedHashMap<>();
    p.shards().forEach(s -> s.tensors().forEach(e -> out.put(e.name(), e.shape())));
    return out;
  }

  /**
   * {@code node} as Python's {@code json.dumps(node, indent=2, sort_keys=True) + "\n"} writes it
   * (how transformers writes {@code config.json} and the index): keys sorted, two-space indent,
   * {@code ", "}-free line ends, floats in Python's {@code repr}.
   */
  public static String pythonJson(JsonNode node) {
    StringBuilder sb = new StringBuilder();
    dump(node, sb, 0);
    return sb.append('\n').toString();
  }

  private static void dump(JsonNode n, StringBuilder sb, int indent) {
    if (n.isObject()) {
      if (n.isEmpty()) {
        sb.append("{}");
        return;
      }
      TreeMap<String, JsonNode> sorted = new TreeMap<>();
      for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        sorted.put(e.getKey(), e.getValue());
      }
      sb.append("{\n");
      int i = 0;
      for (Map.Entry<String, JsonNode> e : sorted.entrySet()) {
        sb.append(" ".repeat(indent + 2));
        sb.append(JSON.valueToTree(e.getKey()).toString()).append(": ");
        dump(e.getValue(), sb, indent + 2);
        sb.append(++i < sorted.size() ? ",\n" : "\n");
      }
      sb.append(" ".repeat(indent)).append('}');
    } else if (n.isArray()) {
      if (n.isEmpty()) {
        sb.append("[]");
        return;
      }
      sb.append("[\n");
      for (int i = 0; i < n.size(); i++) {
        sb.append(" ".repeat(indent + 2));
        dump(n.get(i), sb, indent + 2);
        sb.append(i + 1 < n.size() ? ",\n" : "\n");
      }
      sb.append(" ".repeat(indent)).append(']');
    } else if (n.isFloatingPointNumber()) {
      sb.append(pythonFloat(n.doubleValue()));
    } else {
      sb.append(n.toString());
    }
  }

  /**
   * Python's {@code repr} of a finite float: shortest digits, scientific below 1e-4 or from 1e16.
   */
  static String pythonFloat(double d) {
    if (d == 0) {
      return Double.doubleToRawLongBits(d) == 0 ? "0.0" : "-0.0";
    }
    BigDecimal b = new BigDecimal(Double.toString(d)).stripTrailingZeros();
    int exp = b.precision() - b.scale() - 1; // decimal exponent of the leading digit
    if (exp >= -4 && exp < 16) {
      String s = b.toPlainString();
      return s.contains(".") ? s : s + ".0";
    }
    String digits = b.unscaledValue().abs().toString();
    String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
    return (d < 0 ? "-" : "")
        + mantissa
        + "e"
        + (exp < 0 ? "-" : "+")
        + String.format("%02d", Math.abs(exp));
  }

  /**
   * Writes (or finds complete) the checkpoint of a preset: {@code PRESET.json DIR SEED
   * MAX_SHARD_BYTES}.
   */
  public static void main(String[] args) throws IOException {
    ObjectNode preset = BenchModels.presetJson(Path.of(args[0]));
    Plan p = plan(preset, Long.parseLong(args[3]));
    boolean wrote = ensure(Path.of(args[1]), p, Long.parseLong(args[2]));
    System.out.println(
        (wrote ? "wrote " : "already complete: ")
            + args[1]
            + " ("
            + p.totalParameters()
            + " parameters, "
            + p.shards().size()
            + " file(s))");
  }
}
