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
    if (c instanceof Gpt2Config g) {
      return "vocab_size "
          + g.vocabSize()
          + ", n_embd "
          + g.nEmbd()
          + ", n_inner "
          + g.nInner()
          + ", n_layer "
          + g.nLayer()
          + ", n_positions "
          + g.nPositions();
    }
    LlamaConfig l = (LlamaConfig) c;
    return "vocab_size "
        + l.vocabSize()
        + ", hidden_size "
        + l.hiddenSize()
        + ", intermediate_size "
        + l.intermediateSize()
        + ", num_hidden_layers "
        + l.numLayers()
        + ", num_attention_heads x head_dim "
        + l.numHeads()
        + " x "
        + l.headDim();
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
    Reader r = new Reader(node, source);
    try {
      JsonNode archs = node.get("architectures");
      if (archs != null
          && archs.isArray()
          && !archs.isEmpty()
          && (type.equals("gpt2") || type.equals("llama"))) {
        String arch = archs.get(0).asText("");
        String family =
            arch.startsWith("GPT2") ? "gpt2" : arch.startsWith("Llama") ? "llama" : null;
        if (family != null && !family.equals(type)) {
          throw new IllegalArgumentException(
              "architectures [\"" + arch + "\"] contradicts model_type '" + type + "'");
        }
      }
      return switch (type) {
        case "gpt2" -> parseGpt2(r);
        case "llama" -> parseLlama(r);
        case "" -> throw new IllegalArgumentException("missing key 'model_type' (gpt2 or llama)");
        default ->
            throw new IllegalArgumentException(
                "model_type '" + type + "' is not supported (supported: gpt2, llama)");
      };
    } catch (IllegalArgumentException e) {
      if (e.getMessage() != null && e.getMessage().startsWith(source)) {
        throw e;
      }
      throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
    }
  }

  private static Gpt2Config parseGpt2(Reader r) {
    int nEmbd = r.integer("n_embd", null);
    int vocab = r.integer("vocab_size", null);
    int eos = r.tokenId("eos_token_id", -1, vocab);
    int pad = r.firstId("pad_token_id", eos >= 0 && eos < vocab ? eos : 0);
    return new Gpt2Config(
        vocab,
        r.integer("n_positions", null),
        nEmbd,
        r.integer("n_layer", null),
        r.integer("n_head", null),
        r.integer("n_inner", 4 * nEmbd),
        r.number("layer_norm_epsilon", 1e-5),
        r.text("activation_function", "gelu_new"),
        pad,
        r.tokenId("bos_token_id", -1, vocab),
        eos,
        r.bool("tie_word_embeddings", true));
  }

  private static LlamaConfig parseLlama(Reader r) {
    String act = r.text("hidden_act", "silu");
    if (!act.equals("silu")) {
      throw new IllegalArgumentException("hidden_act '" + act + "' is not supported (silu)");
    }
    if (r.bool("attention_bias", false)) {
      throw new IllegalArgumentException("attention_bias true is not supported");
    }
    if (r.bool("mlp_bias", false)) {
      throw new IllegalArgumentException("mlp_bias true is not supported");
    }
    double theta = r.number("rope_theta", 10000.0);
    JsonNode rope = r.node.get("rope_parameters");
    if (rope == null || rope.isNull()) {
      rope = r.node.get("rope_scaling");
    }
    if (rope != null && !rope.isNull()) {
      String ropeType = rope.path("rope_type").asText(rope.path("type").asText("default"));
      if (!ropeType.equals("default")) {
        throw new IllegalArgumentException(
            "rope_type '" + ropeType + "' is not supported (only default rotary embeddings)");
      }
      if (rope.has("rope_theta")) {
        theta = rope.get("rope_theta").asDouble();
      }
    }
    int hidden = r.integer("hidden_size", null);
    int heads = r.integer("num_attention_heads", null);
    ModelConfig.checkSize("num_attention_heads", heads, ModelConfig.MAX_HEADS);
    int vocab = r.integer("vocab_size", null);
    int eos = r.tokenId("eos_token_id", -1, vocab);
    if (hidden % heads != 0 && !r.node.hasNonNull("head_dim")) {
      throw new IllegalArgumentException(
          "hidden_size " + hidden + " is not divisible by num_attention_heads " + heads);
    }
    return new LlamaConfig(
        vocab,
        hidden,
        r.integer("intermediate_size", null),
        r.integer("num_hidden_layers", null),
        heads,
        r.integer("num_key_value_heads", heads),
        r.integer("head_dim", hidden / heads),
        r.integer("max_position_embeddings", null),
        r.number("rms_norm_eps", 1e-6),
        theta,
        r.firstId("pad_token_id", eos >= 0 && eos < vocab ? eos : 0),
        r.tokenId("bos_token_id", -1, vocab),
        eos,
        r.bool("tie_word_embeddings", false));
  }

  /**
   * The Hugging Face {@code config.json} of a config, for the given architecture class name (e.g.
   * {@code LlamaForSequenceClassification}) and number of labels (reward heads).
   */
  public static ObjectNode toHf(ModelConfig config, String architecture, int numLabels) {
    ObjectNode o = JSON.createObjectNode();
    o.putArray("architectures").add(architecture);
    o.put("model_type", config.modelType());
    if (config instanceof Gpt2Config c) {
      o.put("vocab_size", c.vocabSize());
      o.put("n_positions", c.nPositions());
      o.put("n_embd", c.nEmbd());
      o.put("n_layer", c.nLayer());
      o.put("n_head", c.nHead());
      o.put("n_inner", c.nInner());
      o.put("layer_norm_epsilon", c.layerNormEpsilon());
      o.put("activation_function", c.activation());
      o.put("resid_pdrop", 0.0);
      o.put("embd_pdrop", 0.0);
      o.put("attn_pdrop", 0.0);
      o.put("scale_attn_weights", true);
      putIds(o, c);
    } else if (config instanceof LlamaConfig c) {
      o.put("vocab_size", c.vocabSize());
      o.put("hidden_size", c.hiddenSize());
      o.put("intermediate_size", c.intermediateSize());
      o.put("num_hidden_layers", c.numLayers());
      o.put("num_attention_heads", c.numHeads());
      o.put("num_key_value_heads", c.numKeyValueHeads());
      o.put("head_dim", c.headDim());
      o.put("max_position_embeddings", c.maxPositionEmbeddings());
      o.put("rms_norm_eps", c.rmsNormEps());
      // transformers 5 reads rope_parameters; 4.x reads rope_theta.
      o.put("rope_theta", c.ropeTheta());
      ObjectNode rope = o.putObject("rope_parameters");
      rope.put("rope_type", "default");
      rope.put("rope_theta", c.ropeTheta());
      o.put("hidden_act", "silu");
      o.put("attention_bias", false);
      o.put("mlp_bias", false);
      putIds(o, c);
    }
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

  private static void putIds(ObjectNode o, ModelConfig c) {
    o.put("pad_token_id", c.padTokenId());
    // An unknown id (-1, e.g. GPT-2's 50256 in a small vocabulary) is written as null: left out,
    // transformers would fill in its family default, which may lie outside the vocabulary.
    putId(o, "bos_token_id", c.bosTokenId());
    putId(o, "eos_token_id", c.eosTokenId());
  }

  private static void putId(ObjectNode o, String key, int id) {
    if (id >= 0) {
      o.put(key, id);
    } else {
      o.putNull(key);
    }
  }

  /** Typed access to keys with messages that name the key and the bad value. */
  private record Reader(JsonNode node, String source) {
    int integer(String key, Integer dflt) {
      JsonNode v = node.get(key);
      if (v == null || v.isNull()) {
        if (dflt == null) {
          throw new IllegalArgumentException("missing key '" + key + "'");
        }
        return dflt;
      }
      return exactInt(key, v, "an integer");
    }

    /** An integral JSON number that fits an int (1e20 or 2^40 is an error, not a wrapped value). */
    private static int exactInt(String key, JsonNode v, String what) {
      if (!v.isNumber()
          || !v.canConvertToInt()
          || !(v.isIntegralNumber() || v.isDouble() && v.asDouble() == Math.rint(v.asDouble()))) {
        throw new IllegalArgumentException(
            "key '"
                + key
                + "' must be "
                + what
                + " in ["
                + Integer.MIN_VALUE
                + ", "
                + Integer.MAX_VALUE
                + "], got "
                + v);
      }
      return v.asInt();
    }

    /**
     * A token id; ids outside [0, vocab) (e.g. GPT-2's 50256 in a small-vocabulary config) read as
     * -1.
     */
    int tokenId(String key, int dflt, int vocab) {
      int id = firstId(key, dflt);
      return id >= 0 && id < vocab ? id : -1;
    }

    int firstId(String key, int dflt) {
      JsonNode v = node.get(key);
      if (v != null && v.isArray()) {
        v = v.size() > 0 ? v.get(0) : null;
      }
      if (v == null || v.isNull()) {
        return dflt;
      }
      if (!v.isIntegralNumber()) {
        throw new IllegalArgumentException("key '" + key + "' must be a token id, got " + v);
      }
      return exactInt(key, v, "a token id");
    }

    double number(String key, double dflt) {
      JsonNode v = node.get(key);
      if (v == null || v.isNull()) {
        return dflt;
      }
      if (!v.isNumber()) {
        throw new IllegalArgumentException("key '" + key + "' must be a number, got " + v);
      }
      return v.asDouble();
    }

    String text(String key, String dflt) {
      JsonNode v = node.get(key);
      if (v == null || v.isNull()) {
        return dflt;
      }
      if (!v.isTextual()) {
        throw new IllegalArgumentException("key '" + key + "' must be a string, got " + v);
      }
      return v.asText();
    }

    boolean bool(String key, boolean dflt) {
      JsonNode v = node.get(key);
      if (v == null || v.isNull()) {
        return dflt;
      }
      if (!v.isBoolean()) {
        throw new IllegalArgumentException("key '" + key + "' must be true or false, got " + v);
      }
      return v.asBoolean();
    }
  }
}
