package dev.rewardensemble.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.data.ChatTemplate;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.LoraEnsembleGraph;
import dev.rewardensemble.ensemble.WeightAveraging;
import dev.rewardensemble.io.AtomicDirs;
import dev.rewardensemble.io.CrashPoints;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.RunDirs;
import dev.rewardensemble.io.TempPaths;
import dev.rewardensemble.lora.PeftAdapters;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.serving.SavedModels;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * {@code rme merge}: WARM (Rame et al. 2024), an ensemble whose members share an initialisation
 * averaged weight by weight into one reward model with one model's inference cost ({@link
 * WeightAveraging} holds the arithmetic). The output is a new model directory that every command
 * takes ({@code rme score}, {@code serve}, {@code best-of-n}, {@code ppo}, {@code export}):
 *
 * <ul>
 *   <li>a single model (linear, independent, LoRA {@code --into base}): {@code config.json} +
 *       {@code model.safetensors} with one head, and {@code ensemble.json} ({@code kind single},
 *       the reward token, the provenance of the merge);
 *   <li>a LoRA model of one adapter ({@code --into adapter}): {@code base/} (the trunk as a Hugging
 *       Face checkpoint), {@code adapters/member-0/} (a PEFT adapter of rank K*R with the averaged
 *       head), {@code ensemble.json} ({@code kind lora}, {@code k 1}).
 * </ul>
 *
 * The directory is written under a temporary name beside {@code out} and renamed when complete: it
 * appears whole or not at all; an existing {@code out} is refused, never written into.
 *
 * <p>Shared initialisation: a linear ensemble's heads sit on one trunk, a LoRA ensemble's adapters
 * on one base (each adapter's delta starts at zero), so both qualify by construction. Independent
 * members qualify when each member's {@code run.json} records the same base model (and, for a
 * {@code tf-graphs} preset, whose trunk is drawn from the seed, the same seed); members that record
 * none are refused unless the caller asserts a shared initialisation ({@link
 * Request#assumeSharedInit}).
 */
public final class ModelMerge {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ModelMerge() {}

  /**
   * What to merge.
   *
   * @param model a run directory or checkpoint of an ensemble, or the base of {@code lora}
   * @param lora PEFT adapter directories over {@code model} (empty: none)
   * @param out the new model directory (must not exist)
   * @param members the members to average (empty: all)
   * @param into where a LoRA ensemble's adapters go ({@link WeightAveraging.Into#BASE} by default)
   * @param assumeSharedInit accept independent members that record no base model
   */
  public record Request(
      Path model,
      List<Path> lora,
      Path out,
      List<Integer> members,
      WeightAveraging.Into into,
      boolean assumeSharedInit) {
    public Request {
      lora = lora == null ? List.of() : List.copyOf(lora);
      members = members == null ? List.of() : List.copyOf(members);
      if (into == null) {
        into = WeightAveraging.Into.BASE;
      }
    }

    /** All members of {@code model} into {@code out}, LoRA adapters into the base. */
    public static Request of(Path model, Path out) {
      return new Request(model, List.of(), out, List.of(), WeightAveraging.Into.BASE, false);
    }

    public Request withLora(List<Path> adapters) {
      return new Request(model, adapters, out, members, into, assumeSharedInit);
    }

    public Request withMembers(List<Integer> chosen) {
      return new Request(model, lora, out, chosen, into, assumeSharedInit);
    }

    public Request withInto(WeightAveraging.Into where) {
      return new Request(model, lora, out, members, where, assumeSharedInit);
    }

    public Request withAssumeSharedInit(boolean assume) {
      return new Request(model, lora, out, members, into, assume);
    }
  }

  /**
   * What was written.
   *
   * @param sourceKind the ensemble's kind
   * @param sourceK its K
   * @param members the members averaged
   * @param kind the merged model's kind: single, or LoRA with one adapter
   * @param sharedInit why the members share an initialisation, as recorded in the provenance
   */
  public record Result(
      Path out,
      EnsembleKind sourceKind,
      int sourceK,
      List<Integer> members,
      EnsembleKind kind,
      String sharedInit) {}

  /** Loads, checks, averages and writes; see the class comment. */
  public static Result merge(Request req) throws IOException {
    Path target = req.out().toAbsolutePath().normalize();
    requireNew(req.out());
    if (Files.isRegularFile(req.model().resolve(SavedModels.ASSET))
        || Files.isRegularFile(req.model().resolve("saved_model.pb"))) {
      throw new IllegalArgumentException(
          req.model()
              + " is a SavedModel, which keeps no member weights to average: merge the run"
              + " directory it was exported from");
    }
    EnsembleModel m = EnsembleModel.load(req.model(), req.lora(), Optional.empty());
    List<Integer> sel = WeightAveraging.members(m, req.members());
    String shared = sharedInit(m, sel, req.assumeSharedInit());
    EnsembleModel merged = WeightAveraging.average(m, sel, req.into());

    ObjectNode prov = JSON.createObjectNode();
    ObjectNode mg = prov.putObject("merge");
    mg.put("method", "weight averaging (WARM, Rame et al. 2024)");
    mg.put("source", req.model().toString());
    if (!req.lora().isEmpty()) {
      ArrayNode l = mg.putArray("source_lora");
      req.lora().forEach(p -> l.add(p.toString()));
    }
    mg.put("source_kind", m.kind().id());
    mg.put("source_k", m.members());
    ArrayNode ms = mg.putArray("members");
    sel.forEach(ms::add);
    if (m.kind() == EnsembleKind.LORA) {
      mg.put("into", req.into().id());
    }
    mg.put("shared_init", shared);
    JsonNode sourceProv = sourceProvenance(req.model());
    if (sourceProv != null) {
      prov.set("source_provenance", sourceProv);
    }
    Provenance.addVersions(prov);

    Path stage = TempPaths.newDirectory(target);
    try {
      write(stage, merged, prov);
      CrashPoints.reached("merge-staged");
      requireNew(req.out()); // another writer may have made it meanwhile
      try {
        Files.move(stage, target, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(stage, target);
      }
    } finally {
      AtomicDirs.deleteRecursively(stage);
    }
    return new Result(req.out(), m.kind(), m.members(), sel, merged.kind(), shared);
  }

  /**
   * The weight average of {@code m}'s {@code members} (empty: all) in memory, after the shared
   * initialisation check of {@link #merge}: what the demo scores without writing a directory.
   */
  public static EnsembleModel average(
      EnsembleModel m, List<Integer> members, WeightAveraging.Into into, boolean assumeSharedInit)
      throws IOException {
    List<Integer> sel = WeightAveraging.members(m, members);
    sharedInit(m, sel, assumeSharedInit);
    return WeightAveraging.average(m, sel, into);
  }

  private static void requireNew(Path out) {
    if (Files.exists(out, LinkOption.NOFOLLOW_LINKS)) {
      throw new IllegalArgumentException(
          "--out "
              + out
              + " exists: rme merge writes a new model directory and never into an existing"
              + " one; choose another --out");
    }
  }

  /**
   * Why the selected members share an initialisation, or an {@link IllegalArgumentException} naming
   * the file and key that says they do not (or cannot tell).
   */
  static String sharedInit(EnsembleModel m, List<Integer> sel, boolean assume) throws IOException {
    switch (m.kind()) {
      case LINEAR:
        return "one trunk: the heads of a linear-layer ensemble";
      case LORA:
        Path manifest0 = m.source().resolve(EnsembleModel.MANIFEST);
        JsonNode b0 =
            Files.isRegularFile(manifest0) ? JSON.readTree(manifest0.toFile()).get("base") : null;
        return "one base: "
            + (b0 != null && b0.isTextual() ? m.source().resolve(b0.asText()) : m.source())
            + " (each adapter's delta starts at zero)";
      case SINGLE:
        throw new IllegalStateException("a single model has no members to average");
      default:
        break;
    }
    Path manifest = m.source().resolve(EnsembleModel.MANIFEST);
    JsonNode dirs = JSON.readTree(manifest.toFile()).get("members");
    String base = null;
    String seed = null;
    Path first = null;
    for (int k : sel) {
      Path dir = m.source().resolve(dirs.get(k).asText());
      ObjectNode run = RunDirs.runJson(dir);
      JsonNode p = run == null ? null : run.get("provenance");
      JsonNode b = p == null ? null : p.get("base_model");
      if (b == null || !b.isTextual()) {
        if (assume) {
          return "asserted by the caller (--assume-shared-init): " + dir + " records no base model";
        }
        throw new IllegalArgumentException(
            dir.resolve(RunDirs.RUN_JSON)
                + ": no key 'provenance.base_model': cannot tell whether the members share an"
                + " initialisation (give --assume-shared-init if they do)");
      }
      String s = p.path("seed").asText("");
      if (first == null) {
        first = dir;
        base = b.asText();
        seed = s;
        continue;
      }
      if (!b.asText().equals(base)) {
        throw new IllegalArgumentException(
            dir.resolve(RunDirs.RUN_JSON)
                + ": key 'provenance.base_model' is '"
                + b.asText()
                + "', "
                + first.resolve(RunDirs.RUN_JSON)
                + " says '"
                + base
                + "': members trained from different bases share no initialisation");
      }
      if (base.endsWith(".json") && !s.equals(seed)) {
        throw new IllegalArgumentException(
            dir.resolve(RunDirs.RUN_JSON)
                + ": key 'provenance.seed' is "
                + s
                + ", "
                + first.resolve(RunDirs.RUN_JSON)
                + " says "
                + seed
                + ": the preset "
                + base
                + " draws its trunk from the seed, so these members share no initialisation");
      }
    }
    return "one base: "
        + base
        + (base.endsWith(".json") ? " (trunk drawn from seed " + seed + ")" : "")
        + ", recorded in each member's run.json";
  }

  /** The source's recorded provenance ({@code ensemble.json}, else {@code run.json}), or null. */
  private static JsonNode sourceProvenance(Path model) throws IOException {
    Path manifest = model.resolve(EnsembleModel.MANIFEST);
    if (Files.isRegularFile(manifest)) {
      JsonNode p = JSON.readTree(manifest.toFile()).get("provenance");
      if (p != null) {
        return p;
      }
    }
    ObjectNode run = RunDirs.runJson(model);
    return run == null ? null : run.get("provenance");
  }

  /** Writes {@code merged} (K = 1) as a model directory into the empty directory {@code dir}. */
  static void write(Path dir, EnsembleModel merged, ObjectNode provenance) throws IOException {
    ObjectNode layout = JSON.createObjectNode();
    if (merged.kind() == EnsembleKind.SINGLE) {
      SavedModels.writeHf(dir, merged.config(), merged.weights(), 1);
      if (merged.tokenizer().isPresent()) {
        ChatTemplate.copyTokenizerFiles(merged.tokenizer().get(), dir);
      }
      layout.put("model", ".");
    } else {
      Path base = Files.createDirectory(dir.resolve("base"));
      LazyWeights trunk = new LazyWeights();
      for (String key : merged.config().parameterShapes().keySet()) {
        trunk.putFrom(key, merged.weights(), key);
      }
      int h = merged.config().hiddenSize();
      trunk.put(RewardHeads.KEY, new FloatTensor(new long[] {1, h}, new float[h]));
      SavedModels.writeHf(base, merged.config(), trunk, 1);
      Set<String> trainable =
          Set.copyOf(LoraEnsembleGraph.trainableKeys(merged.config(), merged.lora()));
      Map<String, FloatTensor> adapter = new LinkedHashMap<>();
      for (String key : merged.weights().keySet()) {
        if (trainable.contains(key)) {
          adapter.put(key, merged.weights().get(key));
        }
      }
      PeftAdapters.export(
          Files.createDirectories(dir.resolve("adapters")).resolve("member-0"),
          new PeftAdapters.Stacked(merged.config(), merged.lora(), 1, adapter),
          0,
          "../../base");
      if (merged.tokenizer().isPresent()) {
        ChatTemplate.copyTokenizerFiles(merged.tokenizer().get(), dir);
        ChatTemplate.copyTokenizerFiles(merged.tokenizer().get(), base);
      }
      layout.put("base", "base");
      layout.putArray("adapters").add("adapters/member-0");
      layout.set("lora", JSON.valueToTree(merged.lora()));
    }
    EnsembleModel.writeManifest(dir, merged.spec(), merged.rewardToken(), layout, provenance);
  }
}
