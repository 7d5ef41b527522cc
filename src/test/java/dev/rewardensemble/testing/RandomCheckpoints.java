package dev.rewardensemble.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.bench.BenchModels;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.io.TensorBytes;
import dev.rewardensemble.io.TensorSources;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Random Llama reward models written as transformers saves them: bf16 safetensors, sharded with a
 * {@code model.safetensors.index.json} when asked, {@code config.json} of the {@code llama3-seqcls}
 * fixture with the given sizes. For tests and measurements of loading at size.
 */
public final class RandomCheckpoints {
  private static final ObjectMapper JSON = new ObjectMapper();

  private RandomCheckpoints() {}

  /** The {@code config.json} of a Llama-3 reward model with these sizes (heads of 64). */
  public static ObjectNode llamaConfig(int hidden, int layers, int vocab) throws IOException {
    ObjectNode n;
    try (InputStream in =
        RandomCheckpoints.class.getResourceAsStream("/hf-families/llama3-seqcls/config.json")) {
      n = (ObjectNode) JSON.readTree(in);
    }
    n = BenchModels.scaled(n, hidden, layers);
    n.put("vocab_size", vocab);
    n.put("max_position_embeddings", 2048);
    return n;
  }

  /**
   * Writes a random reward model ({@code score.weight [1, H]}) with {@code config} into {@code dir}
   * as {@code dtype} in {@code shards} files (1: {@code model.safetensors}).
   *
   * @return the number of parameters
   */
  public static long write(Path dir, ObjectNode config, Precision dtype, int shards, long seed)
      throws IOException {
    Files.createDirectories(dir);
    JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), config);
    ModelConfig c = ModelConfigs.parse(config, dir.resolve("config.json").toString());
    Map<String, FloatTensor> w = new TreeMap<>(BenchModels.weights(c, 1, seed));
    long params = w.values().stream().mapToLong(FloatTensor::size).sum();
    Map<String, String> meta = Map.of("format", "pt");
    if (shards == 1) {
      Safetensors.write(dir.resolve(TensorSources.SINGLE_FILE), w, meta, dtype);
      return params;
    }
    long per = (params + shards - 1) / shards;
    List<Map<String, FloatTensor>> parts = new ArrayList<>();
    Map<String, FloatTensor> part = new LinkedHashMap<>();
    long filled = 0;
    for (Map.Entry<String, FloatTensor> e : w.entrySet()) {
      if (filled >= per && parts.size() < shards - 1) {
        parts.add(part);
        part = new LinkedHashMap<>();
        filled = 0;
      }
      part.put(e.getKey(), e.getValue());
      filled += e.getValue().size();
    }
    parts.add(part);
    ObjectNode index = JSON.createObjectNode();
    index.putObject("metadata").put("total_size", params * TensorBytes.bytes(dtype));
    ObjectNode map = index.putObject("weight_map");
    for (int i = 0; i < parts.size(); i++) {
      String name = String.format("model-%05d-of-%05d.safetensors", i + 1, parts.size());
      Safetensors.write(dir.resolve(name), parts.get(i), meta, dtype);
      parts.get(i).keySet().forEach(k -> map.put(k, name));
    }
    JSON.writerWithDefaultPrettyPrinter()
        .writeValue(dir.resolve(TensorSources.INDEX_FILE).toFile(), index);
    return params;
  }

  /**
   * Writes a random causal language model ({@code LlamaForCausalLM}: trunk + untied {@code
   * lm_head.weight [V, H]}) with the sizes of {@code config} into {@code dir} as {@code dtype}, one
   * file.
   *
   * @return the number of parameters
   */
  public static long writeCausal(Path dir, ObjectNode config, Precision dtype, long seed)
      throws IOException {
    ObjectNode n = config.deepCopy();
    n.putArray("architectures").add("LlamaForCausalLM");
    n.remove("id2label");
    n.remove("label2id");
    n.put("tie_word_embeddings", false);
    Files.createDirectories(dir);
    JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), n);
    ModelConfig c = ModelConfigs.parse(n, dir.resolve("config.json").toString());
    Map<String, FloatTensor> w = new TreeMap<>(BenchModels.causalWeights(c, seed));
    Safetensors.write(dir.resolve(TensorSources.SINGLE_FILE), w, Map.of("format", "pt"), dtype);
    return w.values().stream().mapToLong(FloatTensor::size).sum();
  }

  /** Writes a random bf16 reward model for measurements: {@code DIR HIDDEN LAYERS VOCAB SHARDS}. */
  public static void main(String[] args) throws IOException {
    long params =
        write(
            Path.of(args[0]),
            llamaConfig(
                Integer.parseInt(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3])),
            Precision.BFLOAT16,
            Integer.parseInt(args[4]),
            1);
    System.out.println(params + " parameters -> " + args[0]);
  }
}
