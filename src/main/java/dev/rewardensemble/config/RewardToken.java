package dev.rewardensemble.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * Which token of a sequence a reward model reads its reward at (the hidden state the heads see).
 * Part of a trained model: stored in {@code ensemble.json} and SavedModel metadata and baked into
 * every reward graph, so that a model is scored with the rule it was trained with.
 */
public enum RewardToken {
  /**
   * As transformers' {@code ...ForSequenceClassification} reads it: the rightmost attended token
   * whose id is not the model's {@code pad_token_id}. With pad = EOS and a trailing EOS, that is
   * the token before the EOS.
   */
  LAST_NON_PAD("last-non-pad"),
  /** The rightmost attended token, whatever its id (this project's rule before it had a choice). */
  LAST_ATTENDED("last-attended");

  /** The key under which the rule is stored in {@code ensemble.json} and SavedModel metadata. */
  public static final String KEY = "reward_token";

  private final String id;

  RewardToken(String id) {
    this.id = id;
  }

  /** The name on the command line and in stored JSON. */
  public String id() {
    return id;
  }

  @Override
  public String toString() {
    return id;
  }

  /** The rule named {@code name}; the error names the value and lists the rules. */
  public static RewardToken byName(String name) {
    for (RewardToken r : values()) {
      if (r.id.equals(name)) {
        return r;
      }
    }
    throw new IllegalArgumentException(
        "reward token '"
            + name
            + "' is not one of "
            + Arrays.stream(values()).map(RewardToken::id).collect(Collectors.joining(", ")));
  }

  /**
   * How transformers reads a checkpoint with this Hugging Face {@code config.json}: {@link
   * #LAST_NON_PAD} when it declares a {@code pad_token_id}, otherwise {@link #LAST_ATTENDED}
   * (transformers then reads the last position).
   */
  public static RewardToken ofHfConfig(JsonNode config) {
    JsonNode pad = config == null ? null : config.get("pad_token_id");
    boolean declared =
        pad != null
            && !pad.isNull()
            && (!pad.isArray() || (!pad.isEmpty() && !pad.get(0).isNull()));
    return declared ? LAST_NON_PAD : LAST_ATTENDED;
  }

  /** {@link #ofHfConfig} of a {@code config.json} file (or a {@code tf-graphs/} preset). */
  public static RewardToken ofHfConfig(Path configFile) throws IOException {
    try {
      return ofHfConfig(new ObjectMapper().readTree(configFile.toFile()));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException(configFile + ": invalid JSON: " + e.getOriginalMessage());
    }
  }

  /**
   * The rule stored under {@link #KEY} in {@code holder} (a manifest, run provenance or SavedModel
   * metadata); {@link #LAST_ATTENDED} when the key is absent, the rule every model stored before
   * the key existed was trained and exported with.
   *
   * @param where the file, for the error message
   */
  public static RewardToken stored(JsonNode holder, Object where) {
    JsonNode v = holder == null ? null : holder.get(KEY);
    if (v == null || v.isNull()) {
      return LAST_ATTENDED;
    }
    try {
      return byName(v.asText().toLowerCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(where + ": key '" + KEY + "': " + e.getMessage(), e);
    }
  }
}
