package dev.rewardensemble.ensemble;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.lora.LoraConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What a model directory will hold once loaded, read from its JSON files only (no tensor): the
 * architecture, the ensemble kind, K and the adapters' configuration. It is what a {@link
 * MemoryPlan} is computed from before anything is allocated.
 *
 * @param config the trunk's architecture
 * @param kind ensemble kind
 * @param k members
 * @param lora the adapters (LoRA only)
 */
public record ModelShape(ModelConfig config, EnsembleKind kind, int k, LoraConfig lora) {

  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The shape of what {@link EnsembleModel#load(Path, List)} would load from {@code model} (a
   * checkpoint, a run directory or a tf-graphs preset) with {@code adapters}, or empty when it
   * cannot be told from the JSON files (a SavedModel, a malformed directory: loading reports those
   * itself, with its own messages).
   */
  public static Optional<ModelShape> read(Path model, List<Path> adapters) {
    return resolve(model, adapters).map(Resolved::shape);
  }

  /**
   * The checkpoint directory whose trunk a scoring graph of {@code model} with {@code adapters}
   * loads (the base of a LoRA ensemble, the first member of an independent one), or empty for a
   * preset and whatever {@link #read} cannot plan.
   */
  public static Optional<Path> trunkCheckpoint(Path model, List<Path> adapters) {
    return resolve(model, adapters).map(Resolved::trunk).filter(java.util.Objects::nonNull);
  }

  /** A shape and the checkpoint its trunk comes from (null for a preset). */
  private record Resolved(ModelShape shape, Path trunk) {}

  private static Optional<Resolved> resolve(Path model, List<Path> adapters) {
    try {
      if (adapters != null && !adapters.isEmpty()) {
        ModelConfig c = config(model);
        return Optional.of(
            new Resolved(
                new ModelShape(c, EnsembleKind.LORA, adapters.size(), adapter(c, adapters.get(0))),
                model));
      }
      if (Files.isRegularFile(model)) {
        ModelConfig c = ModelConfigs.read(model); // a preset: one fresh head
        return Optional.of(new Resolved(new ModelShape(c, EnsembleKind.SINGLE, 1, null), null));
      }
      Path manifest = model.resolve(EnsembleModel.MANIFEST);
      if (Files.isRegularFile(manifest)) {
        JsonNode m = JSON.readTree(manifest.toFile());
        EnsembleKind kind = EnsembleKind.byName(m.path("kind").asText(""));
        return switch (kind) {
          case SINGLE, LINEAR -> {
            Path dir = model.resolve(m.path("model").asText("."));
            ModelShape s = fromCheckpoint(dir);
            int k = m.path("k").asInt(s.k());
            yield Optional.of(
                new Resolved(
                    new ModelShape(s.config(), k == 1 ? EnsembleKind.SINGLE : kind, k, null), dir));
          }
          case INDEPENDENT -> {
            List<Path> members = paths(model, m.path("members"));
            ModelConfig c = config(members.get(0));
            yield Optional.of(
                new Resolved(new ModelShape(c, kind, members.size(), null), members.get(0)));
          }
          case LORA -> {
            List<Path> ads = paths(model, m.path("adapters"));
            Path base = model.resolve(m.path("base").asText());
            ModelConfig c = config(base);
            yield Optional.of(
                new Resolved(new ModelShape(c, kind, ads.size(), adapter(c, ads.get(0))), base));
          }
        };
      }
      if (Files.isRegularFile(model.resolve("config.json"))) {
        return Optional.of(new Resolved(fromCheckpoint(model), model));
      }
    } catch (java.io.IOException | RuntimeException e) {
      // Not plannable from its JSON: the loader names the problem.
    }
    return Optional.empty();
  }

  private static ModelShape fromCheckpoint(Path dir) throws java.io.IOException {
    Path file = dir.resolve("config.json");
    ModelConfig c = ModelConfigs.read(file);
    int labels = JSON.readTree(file.toFile()).path("num_labels").asInt(1);
    int k = Math.max(1, labels);
    return new ModelShape(c, k == 1 ? EnsembleKind.SINGLE : EnsembleKind.LINEAR, k, null);
  }

  private static ModelConfig config(Path dir) throws java.io.IOException {
    return ModelConfigs.read(Files.isRegularFile(dir) ? dir : dir.resolve("config.json"));
  }

  private static List<Path> paths(Path dir, JsonNode a) {
    List<Path> out = new ArrayList<>();
    a.forEach(n -> out.add(dir.resolve(n.asText())));
    if (out.isEmpty()) {
      throw new IllegalArgumentException("no member directories");
    }
    return out;
  }

  /** Rank, targets and layers of a PEFT adapter directory's {@code adapter_config.json}. */
  private static LoraConfig adapter(ModelConfig c, Path dir) throws java.io.IOException {
    JsonNode a = JSON.readTree(dir.resolve("adapter_config.json").toFile());
    int r = a.path("r").asInt(0);
    List<String> targets = new ArrayList<>();
    JsonNode t = a.path("target_modules");
    if (t.isArray()) {
      t.forEach(n -> targets.add(n.asText()));
    } else {
      targets.addAll(c.loraTargets()); // "all-linear" or a pattern: plan for every projection
    }
    JsonNode layers = a.path("layers_to_transform");
    int n = layers.isArray() ? layers.size() : layers.isInt() ? 1 : 0;
    double alpha = a.path("lora_alpha").asDouble(2.0 * r);
    return new LoraConfig(r, alpha, a.path("lora_dropout").asDouble(0), targets, n);
  }
}
