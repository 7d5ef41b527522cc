package dev.rewardensemble.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The world's character-level vocabulary: four special tokens, the newline and the 95 printable
 * ASCII characters, 100 ids in all.
 *
 * <pre>
 *   0 &lt;pad&gt;   1 &lt;s&gt; (BOS)   2 &lt;/s&gt; (EOS)   3 &lt;unk&gt;   4 '\n'   5..99 ' ' .. '~' (ASCII 32..126)
 * </pre>
 *
 * Every printable ASCII character is in the vocabulary so that a reward model can read the world's
 * texts under any prompt template (the Alpaca template included), not only the world's own prompts.
 * {@link #writeTokenizerJson} writes the same mapping as a Hugging Face {@code tokenizer.json} (a
 * BPE model with single-character tokens and no merges, decoded by {@code Fuse}), which DJL's
 * {@code tokenizers} loads, so {@code data.Tokenizer} and this class produce the same ids.
 */
public final class CharVocabulary {
  public static final int PAD = 0;
  public static final int BOS = 1;
  public static final int EOS = 2;
  public static final int UNK = 3;
  public static final String PAD_TOKEN = "<pad>";
  public static final String BOS_TOKEN = "<s>";
  public static final String EOS_TOKEN = "</s>";
  public static final String UNK_TOKEN = "<unk>";

  private static final int NEWLINE_ID = 4;
  private static final int FIRST_PRINTABLE_ID = 5;
  private static final char FIRST_PRINTABLE = ' ';
  private static final char LAST_PRINTABLE = '~';

  /** Number of ids. */
  public static final int SIZE = FIRST_PRINTABLE_ID + (LAST_PRINTABLE - FIRST_PRINTABLE + 1);

  private static final String[] SPECIALS = {PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN};

  private CharVocabulary() {}

  /** The id of a character; {@link #UNK} for characters outside the vocabulary. */
  public static int id(char c) {
    if (c == '\n') {
      return NEWLINE_ID;
    }
    if (c >= FIRST_PRINTABLE && c <= LAST_PRINTABLE) {
      return FIRST_PRINTABLE_ID + (c - FIRST_PRINTABLE);
    }
    return UNK;
  }

  /** Whether every character of {@code text} has its own id. */
  public static boolean covers(String text) {
    for (int i = 0; i < text.length(); i++) {
      if (id(text.charAt(i)) == UNK) {
        return false;
      }
    }
    return true;
  }

  /** One id per character, no special tokens. */
  public static int[] encode(String text) {
    int[] out = new int[text.length()];
    for (int i = 0; i < out.length; i++) {
      out[i] = id(text.charAt(i));
    }
    return out;
  }

  /** The token text of an id: a character, or a special token's name. */
  public static String token(int id) {
    if (id < 0 || id >= SIZE) {
      throw new IllegalArgumentException(
          "token id " + id + " outside the vocabulary [0, " + SIZE + ")");
    }
    if (id < SPECIALS.length) {
      return SPECIALS[id];
    }
    if (id == NEWLINE_ID) {
      return "\n";
    }
    return String.valueOf((char) (FIRST_PRINTABLE + (id - FIRST_PRINTABLE_ID)));
  }

  /**
   * Decodes ids to text. Stops at the first {@link #EOS}; padding and BOS are skipped, {@code
   * <unk>} is kept as its name.
   */
  public static String decode(int[] ids) {
    StringBuilder sb = new StringBuilder(ids.length);
    for (int id : ids) {
      if (id == EOS) {
        break;
      }
      if (id == PAD || id == BOS) {
        continue;
      }
      sb.append(token(id));
    }
    return sb.toString();
  }

  /**
   * Writes the vocabulary as a Hugging Face {@code tokenizer.json}: BPE with one token per
   * character and no merges, the four specials as added special tokens, no normalizer or
   * pre-tokenizer (spaces and newlines are ordinary characters) and a {@code Fuse} decoder that
   * joins tokens without separators.
   */
  public static void writeTokenizerJson(Path file) throws IOException {
    ObjectMapper json = new ObjectMapper();
    ObjectNode root = json.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    for (int i = 0; i < SPECIALS.length; i++) {
      ObjectNode t = added.addObject();
      t.put("id", i);
      t.put("content", SPECIALS[i]);
      t.put("single_word", false);
      t.put("lstrip", false);
      t.put("rstrip", false);
      t.put("normalized", false);
      t.put("special", true);
    }
    root.putNull("normalizer");
    root.putNull("pre_tokenizer");
    root.putNull("post_processor");
    root.putObject("decoder").put("type", "Fuse");
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE");
    model.putNull("dropout");
    model.put("unk_token", UNK_TOKEN);
    model.putNull("continuing_subword_prefix");
    model.putNull("end_of_word_suffix");
    model.put("fuse_unk", false);
    model.put("byte_fallback", false);
    model.put("ignore_merges", false);
    ObjectNode vocab = model.putObject("vocab");
    for (int i = 0; i < SIZE; i++) {
      vocab.put(token(i), i);
    }
    model.putArray("merges");
    Files.createDirectories(file.toAbsolutePath().getParent());
    json.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), root);
  }
}
