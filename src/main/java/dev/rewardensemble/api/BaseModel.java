package dev.rewardensemble.api;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.RunDirs;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.LmHead;
import dev.rewardensemble.model.RewardHeads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * The starting point of training: a Hugging Face checkpoint directory (its trunk, and its {@code
 * score} head when it has one), a previous run directory, or a {@code tf-graphs/} preset (every
 * weight initialised from the seed).
 *
 * @param trunk trunk weights by checkpoint key
 * @param head {@code score.weight [K, H]} when the source has reward heads
 * @param rewardToken the token the source reads its reward at: a previous run's stored rule, or as
 *     transformers reads a checkpoint or preset ({@link RewardToken#ofHfConfig}); what a run trains
 *     with unless told otherwise
 */
public record BaseModel(
    Path source,
    ModelConfig config,
    Map<String, FloatTensor> trunk,
    Optional<FloatTensor> head,
    Optional<Path> tokenizer,
    RewardToken rewardToken) {

  /**
   * The architecture of {@code source} from its configuration alone ({@code config.json} or the
   * preset), without reading or generating a weight: what a run is planned with before {@link
   * #load}.
   */
  public static ModelConfig readConfig(Path source) throws IOException {
    if (isPreset(source)) {
      return ModelConfigs.read(source);
    }
    requireDirectory(source);
    Path configFile = source.resolve("config.json");
    if (!Files.isRegularFile(configFile)) {
      throw new IllegalArgumentException(
          "not a Hugging Face checkpoint: " + configFile + " not found");
    }
    return ModelConfigs.read(configFile);
  }

  /** Loads {@code source}: a checkpoint directory or a preset {@code .json} file. */
  public static BaseModel load(Path source, long seed) throws IOException {
    if (isPreset(source)) {
      ModelConfig c = ModelConfigs.read(source);
      return new BaseModel(
          source,
          c,
          Init.trunk(c, seed),
          Optional.empty(),
          Optional.empty(),
          RewardToken.ofHfConfig(source));
    }
    requireDirectory(source);
    RunDirs.requireComplete(source); // a killed run is no base to train from
    // Validated from the headers; the trunk stays on disk until streamed into a graph's variables.
    HfCheckpoint.Checkpoint ck = HfCheckpoint.open(source);
    LazyWeights trunk = new LazyWeights(ck.weights());
    FloatTensor head = trunk.containsKey(RewardHeads.KEY) ? trunk.get(RewardHeads.KEY) : null;
    trunk.remove(RewardHeads.KEY);
    trunk.remove(LmHead.KEY);
    Path tok = source.resolve("tokenizer.json");
    return new BaseModel(
        source,
        ck.config(),
        trunk,
        Optional.ofNullable(head),
        Files.isRegularFile(tok) ? Optional.of(tok) : Optional.empty(),
        rewardTokenOf(source));
  }

  /** A run directory's stored rule ({@code ensemble.json}), else the checkpoint's. */
  private static RewardToken rewardTokenOf(Path dir) throws IOException {
    Path manifest = dir.resolve("ensemble.json");
    if (Files.isRegularFile(manifest)) {
      return RewardToken.stored(
          new com.fasterxml.jackson.databind.ObjectMapper().readTree(manifest.toFile()), manifest);
    }
    return RewardToken.ofHfConfig(dir.resolve("config.json"));
  }

  private static boolean isPreset(Path source) {
    return Files.isRegularFile(source) && source.toString().endsWith(".json");
  }

  private static void requireDirectory(Path source) {
    if (!Files.isDirectory(source)) {
      throw new IllegalArgumentException(
          "model not found: "
              + source
              + " (expected a Hugging Face checkpoint directory or a tf-graphs/*.json preset)");
    }
  }

  /** Hugging Face architecture name of a reward model of this family. */
  public String rewardArchitecture() {
    return config.sequenceClassificationArchitecture();
  }

  /**
   * Trunk plus {@code K} heads: the source's heads when it has exactly K, otherwise K fresh heads
   * seeded from {@code seed} (head k from its own stream).
   */
  public Map<String, FloatTensor> withHeads(int k, long seed) {
    Map<String, FloatTensor> w = new LazyWeights(trunk); // lazy entries stay lazy
    if (head.isPresent() && head.get().shape()[0] == k) {
      w.put(RewardHeads.KEY, head.get());
    } else {
      w.put(RewardHeads.KEY, Init.heads(k, config.hiddenSize(), seed));
    }
    return w;
  }
}
