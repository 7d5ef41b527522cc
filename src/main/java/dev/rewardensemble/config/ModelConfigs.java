package dev.rewardensemble.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads and writes {@link ModelConfig}s as Hugging Face {@code config.json} objects. The presets in
 * {@code tf-graphs/} use the same format, so a preset, an imported checkpoint and an export all
 * describe an architecture with the same keys.
 */
public final class ModelConfigs {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ModelConfigs() {}

  /** Java's largest array: a float32 tensor held on the heap has at most this many elements. */
  public static final long MAX_TENSOR_ELEMENTS = Integer.MAX_VALUE - 8;

  /**
   * Refuses, before any weight is allocated, a model whose float32 weights ({@code shapes}, e.g.
   * the trunk's, plus {@code extraParameters}) cannot exist in this JVM: a tensor over Java's array
   * limit, or more parameter memory (4 bytes each, plus a quarter for activations) than the heap
   * can still allocate. The error names the configuration's size keys and the estimate vs the
   * memory available. Graph-only commands do not call this.
   */
  public static void requireMemory(
      ModelConfig c, java.util.Map<String, long[]> shapes, long extraParameters) {
    long params = extraParameters;
    for (java.util.Map.Entry<String, long[]> e : shapes.entrySet()) {
      long n = 1;
      for (long d : e.getValue()) {
        n = Math.multiplyHigh(n, d) != 0 ? Long.MAX_VALUE : n * d;
      }
      if (n > MAX_TENSOR_ELEMENTS) {
        throw new IllegalArgumentException(
            sizeKeys(c)
                + ": tensor '"
                + e.getKey()
                + "' "
                + java.util.Arrays.toString(e.getValue())
                + " has "
                + n
                + " elements, more than a Java array holds ("
                + MAX_TENSOR_ELEMENTS
                + ")");
      }
      params = params + n < 0 ? Long.MAX_VALUE : params + n;
    }
    double need = params * 4.0 * 1.25;
    Runtime rt = Runtime.getRuntime();
    long available = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
    if (need > available) {
      throw new IllegalArgumentException(
          sizeKeys(c)
              + " give "
              + params
              + " parameters: about "
              + gib(need)
              + " GiB as float32, more than the "
              + gib(available)
              + " GiB this JVM can still allocate (raise -Xmx, e.g. JAVA_TOOL_OPTIONS=-Xmx64g,"
              + " or use a smaller configuration)");
    }
  }

  private static String gib(double bytes) {
    return String.format(java.util.Locale.ROOT, "%.1f", bytes / (1L << 30));
  }

  /** The size keys of {@code c} with their values, as the error messages name them. */
  static String sizeKeys(ModelConfig c) {
    return c.sizeKeys();
  }

  /**
   * The families, by Hugging Face {@code model_type}: adding a family means adding its record (with
   * a {@code parse}) and one line here, plus its forward in {@code model/}.
   */
  private static final java.util.Map<String, java.util.function.Function<HfKeys, ModelConfig>>
      FAMILIES =
          java.util.Map.of(
              "gpt2", Gpt2Config::parse,
              "llama", LlamaConfig::parse,
              "qwen2", Qwen2Config::parse,
              "qwen3", Qwen3Config::parse,
              "mistral", MistralConfig::parse,
              "gemma2", Gemma2Config::parse);

  /** The supported {@code model_type}s, sorted, for messages. */
  public static java.util.List<String> supportedTypes() {
    return FAMILIES.keySet().stream().sorted().toList();
  }

  /** Reads a {@code config.json} (or a {@code tf-graphs/} preset). */
  public static ModelConfig read(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException("model configuration not found: " + file);
    }
    JsonNode node;
    try {
      node = JSON.readTree(file.toFile());
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException(
          file
              + ": invalid JSON at line "
              + e.getLocation().getLineNr()
              + ": "
              + e.getOriginalMessage());
    }
    return parse(node, file.toString());
  }

  /** Parses a Hugging Face configuration object; {@code source} names it in error messages. */
  public static ModelConfig parse(JsonNode node, String source) {
    if (node == null || !node.isObject()) {
      throw new IllegalArgumentException(source + ": expected a JSON object");
    }
    String type = node.path("model_type").asText("");
    HfKeys r = new HfKeys(node, source);
    try {
      if (type.isEmpty()) {
        throw new IllegalArgumentException(
            "missing key 'model_type' (" + String.join(", ", supportedTypes()) + ")");
      }
      java.util.function.Function<HfKeys, ModelConfig> family = FAMILIES.get(type);
      if (family == null) {
        throw new IllegalArgumentException(
            "model_type '"
                + type
                + "' is not supported (supported: "
                + String.join(", ", supportedTypes())
                + ")");
      }
      ModelConfig config = family.apply(r);
      JsonNode archs = node.get("architectures");
      if (archs != null && archs.isArray() && !archs.isEmpty()) {
        String arch = archs.get(0).asText("");
        // An architecture of another supported family contradicts model_type.
        for (String other : supportedTypes()) {
          if (!other.equals(type)
              && arch.startsWith(prefixOf(other))
              && !arch.startsWith(config.hfClassPrefix())) {
            throw new IllegalArgumentException(
                "architectures [\"" + arch + "\"] contradicts model_type '" + type + "'");
          }
        }
      }
      return config;
    } catch (IllegalArgumentException e) {
      if (e.getMessage() != null && e.getMessage().startsWith(source)) {
        throw e;
      }
      throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
    }
  }

  /** The class-name prefix of a supported {@code model_type}. */
  private static String prefixOf(String type) {
    return switch (type) {
      case "gpt2" -> "GPT2";
      case "llama" -> "Llama";
      case "qwen2" -> "Qwen2";
      case "qwen3" -> "Qwen3";
      case "mistral" -> "Mistral";
      case "gemma2" -> "Gemma2";
      default -> type;
    };
  }

  /**
   * The Hugging Face {@code config.json} of a config, for the given architecture class name (e.g.
   * {@code LlamaForSequenceClassification}) and number of labels (reward heads).
   */
  public static ObjectNode toHf(ModelConfig config, String architecture, int numLabels) {
    ObjectNode o = JSON.createObjectNode();
    o.putArray("architectures").add(architecture);
    o.put("model_type", config.modelType());
    config.writeHf(o);
    o.put("tie_word_embeddings", config.tieWordEmbeddings());
    if (numLabels > 0) {
      o.put("num_labels", numLabels);
      ObjectNode id2label = o.putObject("id2label");
      ObjectNode label2id = o.putObject("label2id");
      for (int i = 0; i < numLabels; i++) {
        id2label.put(Integer.toString(i), "LABEL_" + i);
        label2id.put("LABEL_" + i, i);
      }
    }
    // "dtype" since transformers 4.56 ("torch_dtype" is deprecated in 5); without it float32
    // anyway.
    o.put("dtype", "float32");
    return o;
  }
}
