package dev.rewardensemble.data;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A Hugging Face {@code tokenizer.json} loaded offline through DJL's native {@code tokenizers}
 * binding.
 *
 * <p>Encoding adds no special tokens (no BOS/EOS from the post-processor), and the tokenizer does
 * neither truncation nor padding: those are the job of {@link Encoder} and {@link Padding}.
 * Decoding keeps every token, special ones included. The vocabulary ({@link #tokenId}, {@link
 * #vocabSize}) is read from the same file, since DJL exposes no token-to-id lookup.
 *
 * <p>DJL is put into offline mode ({@code ai.djl.offline=true}) unless the property was set
 * explicitly, so it uses the CPU native library bundled in its jar and never tries a download.
 */
public final class Tokenizer implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path file;
  private final HuggingFaceTokenizer hf;
  private final Map<String, Integer> vocab;
  private final int vocabSize;
  private volatile Optional<ChatTemplate> chatTemplate;

  private Tokenizer(Path file, HuggingFaceTokenizer hf, Map<String, Integer> vocab, int size) {
    this.file = file;
    this.hf = hf;
    this.vocab = vocab;
    this.vocabSize = size;
  }

  /**
   * Loads a tokenizer.
   *
   * @param tokenizerJson a {@code tokenizer.json} file, or a directory containing one
   * @throws IllegalArgumentException if the file is missing, unreadable or not a valid tokenizer
   */
  public static Tokenizer load(Path tokenizerJson) {
    Objects.requireNonNull(tokenizerJson, "tokenizerJson");
    Path file = tokenizerJson;
    if (Files.isDirectory(file)) {
      file = file.resolve("tokenizer.json");
    }
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException("tokenizer file not found: " + file);
    }
    JsonNode root;
    try {
      root = JSON.readTree(file.toFile());
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      // one line: Jackson's message adds the source excerpt on further lines
      throw new IllegalArgumentException(
          "invalid tokenizer file "
              + file
              + ": invalid JSON at line "
              + e.getLocation().getLineNr()
              + ", column "
              + e.getLocation().getColumnNr()
              + ": "
              + e.getOriginalMessage(),
          e);
    } catch (IOException e) {
      throw new IllegalArgumentException(
          "invalid tokenizer file " + file + ": " + e.getMessage(), e);
    }
    if (root == null || !root.isObject() || !root.path("model").isObject()) {
      throw new IllegalArgumentException(
          "invalid tokenizer file " + file + ": no \"model\" object");
    }
    Map<String, Integer> vocab = readVocab(root);
    int size = 0;
    for (int id : vocab.values()) {
      size = Math.max(size, id + 1);
    }
    if (System.getProperty("ai.djl.offline") == null) {
      System.setProperty("ai.djl.offline", "true");
    }
    Map<String, String> options = new HashMap<>();
    options.put("addSpecialTokens", "false");
    options.put("truncation", "false");
    options.put("padding", "false");
    options.put("withOverflowingTokens", "false");
    options.put("doLowerCase", "false");
    HuggingFaceTokenizer hf;
    try {
      hf = HuggingFaceTokenizer.newInstance(file, options);
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException(
          "invalid tokenizer file " + file + ": " + e.getMessage(), e);
    }
    return new Tokenizer(file, hf, Map.copyOf(vocab), size);
  }

  private static Map<String, Integer> readVocab(JsonNode root) {
    Map<String, Integer> vocab = new HashMap<>();
    JsonNode v = root.path("model").path("vocab");
    if (v.isObject()) {
      // BPE, WordPiece, WordLevel: {"token": id}
      for (Iterator<Map.Entry<String, JsonNode>> it = v.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        if (e.getValue().canConvertToInt()) {
          vocab.put(e.getKey(), e.getValue().intValue());
        }
      }
    } else if (v.isArray()) {
      // Unigram: [["piece", score], ...], id = index
      for (int i = 0; i < v.size(); i++) {
        JsonNode piece = v.get(i).path(0);
        if (piece.isTextual()) {
          vocab.put(piece.asText(), i);
        }
      }
    }
    for (JsonNode added : root.path("added_tokens")) {
      if (added.path("content").isTextual() && added.path("id").canConvertToInt()) {
        vocab.put(added.get("content").asText(), added.get("id").intValue());
      }
    }
    return vocab;
  }

  /** The file this tokenizer was loaded from. */
  public Path file() {
    return file;
  }

  /** Encodes text to token ids, without special tokens, truncation or padding. */
  public int[] encode(String text) {
    Objects.requireNonNull(text, "text");
    if (text.isEmpty()) {
      return new int[0];
    }
    Encoding enc = hf.encode(text, false, false);
    long[] ids = enc.getIds();
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = Math.toIntExact(ids[i]);
    }
    return out;
  }

  /**
   * Decodes token ids to text, keeping special tokens.
   *
   * @throws IllegalArgumentException if an id is negative or not below {@link #vocabSize()}
   */
  public String decode(int[] ids) {
    long[] l = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= vocabSize) {
        throw new IllegalArgumentException(
            "token id "
                + ids[i]
                + " at position "
                + i
                + " outside vocabulary [0, "
                + vocabSize
                + ")");
      }
      l[i] = ids[i];
    }
    if (l.length == 0) {
      return "";
    }
    return hf.decode(l, false);
  }

  /** The id of a vocabulary entry or added token (e.g. {@code "</s>"}), if it exists. */
  public OptionalInt tokenId(String token) {
    Integer id = vocab.get(token);
    return id == null ? OptionalInt.empty() : OptionalInt.of(id);
  }

  /**
   * The chat template stored beside this tokenizer ({@code chat_template.jinja} or the {@code
   * chat_template} of {@code tokenizer_config.json}), read on first use.
   *
   * @throws IllegalArgumentException if those files are malformed
   */
  public Optional<ChatTemplate> chatTemplate() {
    Optional<ChatTemplate> t = chatTemplate;
    if (t == null) {
      t = ChatTemplate.find(file);
      chatTemplate = t;
    }
    return t;
  }

  /** Number of ids: one more than the largest id in the vocabulary and added tokens. */
  public int vocabSize() {
    return vocabSize;
  }

  @Override
  public void close() {
    hf.close();
  }

  @Override
  public String toString() {
    return "Tokenizer[" + file + ", vocab " + vocabSize + "]";
  }
}
