package dev.rewardensemble.cli;

import dev.rewardensemble.api.Provenance;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.io.AtomicDirs;
import dev.rewardensemble.io.OutputDirs;
import dev.rewardensemble.io.TempPaths;
import dev.rewardensemble.lora.PeftAdapters;
import dev.rewardensemble.serving.SavedModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code rme export}: SavedModel for TF Serving and Python, Hugging Face layout, or PEFT adapters.
 */
@Command(
    name = "export",
    mixinStandardHelpOptions = true,
    description = {
      "Export a reward model or ensemble.",
      "  --format savedmodel (default): SAVEDMODELS/NAME/VERSION in TF Serving's layout, signature serving_default",
      "    (inputs input_ids, attention_mask int32 [B, T]; outputs reward [B], and for ensembles members [B, K],",
      "    mean, std, lcb), built from an inference-only graph, written atomically.",
      "  --format hf: config.json + model.safetensors loadable by transformers (single or linear-layer models;",
      "    independent ensembles export one directory per member).",
      "  --format peft: each LoRA member as a PEFT adapter directory (adapter_config.json + adapter_model.safetensors)."
    })
public final class ExportCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      description = "A run directory, Hugging Face checkpoint, or base (with --lora).")
  Path model;

  @Option(names = "--lora", split = ",", description = "PEFT adapter directories over --model.")
  List<Path> lora;

  @Option(
      names = "--format",
      defaultValue = "savedmodel",
      description = "savedmodel, hf or peft (default: ${DEFAULT-VALUE}).")
  String format;

  @Option(names = "--name", description = "SavedModel name (savedmodel format).")
  String name;

  @Option(
      names = "--version",
      defaultValue = "1",
      description = "SavedModel version directory (default: ${DEFAULT-VALUE}).")
  int version;

  @Option(
      names = "--root",
      defaultValue = "savedmodels",
      description = "SavedModel root (default: ${DEFAULT-VALUE}).")
  Path root;

  @Option(names = "--out", description = "Output directory (hf and peft formats).")
  Path out;

  @Option(
      names = "--overwrite",
      description =
          "Replace an existing SavedModel version; for hf and peft, write into a non-empty --out (only the files the export writes are replaced).")
  boolean overwrite;

  @CommandLine.Mixin AggregationOptions aggregation = new AggregationOptions();

  @CommandLine.Mixin RewardTokenOption rewardToken = new RewardTokenOption();

  @Option(
      names = "--policy",
      description =
          "--model is a causal LM (e.g. RUN_DIR/policy of rme ppo): export a SavedModel with a 'generate' signature.")
  boolean policy;

  @Override
  public Integer call() throws Exception {
    if (policy) {
      if (!format.equals("savedmodel") || name == null) {
        throw new UserError(
            "--policy exports a SavedModel: give --name (and no --format other than savedmodel)");
      }
      Path dir = savedModelDir();
      checkPaths(dir);
      try (dev.rewardensemble.rl.Sampler s =
          dev.rewardensemble.rl.Sampler.load(
              model,
              // streamed from the checkpoint; the SavedModel keeps float32 variables as before
              dev.rewardensemble.config.ExecConfig.defaults()
                  .withWeights(dev.rewardensemble.config.WeightStorage.FLOAT32))) {
        if (Files.exists(dir)) {
          // --overwrite: the old version is replaced only once the new one is complete.
          Path stage = TempPaths.newDirectory(dir);
          try {
            Path complete = stage.resolve(dir.getFileName().toString());
            s.exportSavedModel(complete);
            AtomicDirs.replace(complete, dir);
          } finally {
            AtomicDirs.deleteRecursively(stage);
          }
        } else {
          s.exportSavedModel(dir);
        }
      }
      System.err.printf("exported policy %s with signature 'generate' -> %s%n", model, dir);
      return 0;
    }
    if (format.equals("savedmodel")) {
      checkPaths(name == null || name.isBlank() || version < 1 ? null : savedModelDir());
    } else if (format.equals("hf") || format.equals("peft")) {
      requireOut();
      checkPaths(out.toAbsolutePath().normalize());
    }
    MemoryCheck.export(model, lora)
        .ifPresent(p -> MemoryCheck.require(p, "rme export of " + model));
    EnsembleModel m = EnsembleModel.load(model, lora, rewardToken.rule());
    m = m.withAggregation(aggregation.resolve(m.aggregation()));
    switch (format) {
      case "savedmodel" -> {
        if (name == null || name.isBlank()) {
          throw new UserError("--name is required for --format savedmodel");
        }
        if (version < 1) {
          throw new UserError("--version must be >= 1, got " + version);
        }
        Map<String, Object> prov = new LinkedHashMap<>();
        prov.put("source", model.toString());
        Path runJson = model.resolve("run.json");
        if (Files.isRegularFile(runJson)) {
          prov.put(
              "run", new com.fasterxml.jackson.databind.ObjectMapper().readTree(runJson.toFile()));
        }
        Path dir =
            SavedModels.export(
                root.resolve(name).resolve(Integer.toString(version)), m, prov, overwrite);
        System.err.printf("exported %s (%s, K=%d) -> %s%n", model, m.kind().id(), m.members(), dir);
      }
      case "hf" -> {
        requireOut();
        warnRewardToken(m);
        if (m.kind() == EnsembleKind.LORA) {
          throw new UserError(
              "a LoRA ensemble has no plain Hugging Face layout: use --format peft (adapters) or savedmodel");
        }
        EnsembleModel em = m;
        // Staged as a whole: a new --out appears complete or not at all; in an existing one only
        // the
        // files written here are replaced.
        OutputDirs.write(
            out,
            stage -> {
              if (em.kind() == EnsembleKind.INDEPENDENT) {
                for (int k = 0; k < em.members(); k++) {
                  // Lazy entries stay on disk until streamed into the member's file.
                  dev.rewardensemble.io.LazyWeights w = new dev.rewardensemble.io.LazyWeights();
                  String p = dev.rewardensemble.ensemble.IndependentGraph.prefix(k);
                  for (String key : em.weights().keySet()) {
                    if (key.startsWith(p)) {
                      w.putFrom(key.substring(p.length()), em.weights(), key);
                    }
                  }
                  SavedModels.writeHf(
                      Files.createDirectory(stage.resolve("member-" + k)), em.config(), w, 1);
                }
              } else {
                SavedModels.writeHf(stage, em.config(), em.weights(), em.members());
              }
              if (em.tokenizer().isPresent()) {
                dev.rewardensemble.data.ChatTemplate.copyTokenizerFiles(
                    em.tokenizer().get(), stage);
              }
            });
        System.err.printf(
            "exported %s (%s, K=%d) in the Hugging Face layout -> %s%n",
            model, m.kind().id(), m.members(), out);
      }
      case "peft" -> {
        requireOut();
        warnRewardToken(m);
        if (m.kind() != EnsembleKind.LORA) {
          throw new UserError(
              "--format peft needs a LoRA ensemble, " + model + " is " + m.kind().id());
        }
        PeftAdapters.Stacked stacked =
            new PeftAdapters.Stacked(m.config(), m.lora(), m.members(), loraWeights(m));
        int members = m.members();
        // The adapters' base is written beside them: the frozen trunk as a
        // ...ForSequenceClassification with one zero head (each adapter saves its own `score`), so
        // PeftModel.from_pretrained(base, member-k) and AutoPeftModel load it as transformers reads
        // any checkpoint. A run directory itself is not a Hugging Face checkpoint.
        String base = out.toAbsolutePath().normalize().resolve("base").toString();
        dev.rewardensemble.io.LazyWeights trunk = new dev.rewardensemble.io.LazyWeights();
        for (String key : m.config().parameterShapes().keySet()) {
          trunk.putFrom(key, m.weights(), key); // streamed into base/ when written
        }
        trunk.put(
            dev.rewardensemble.model.RewardHeads.KEY,
            new dev.rewardensemble.io.FloatTensor(
                new long[] {1, m.config().hiddenSize()}, new float[m.config().hiddenSize()]));
        EnsembleModel lora = m;
        OutputDirs.write(
            out,
            stage -> {
              Path baseDir = Files.createDirectory(stage.resolve("base"));
              SavedModels.writeHf(baseDir, lora.config(), trunk, 1);
              if (lora.tokenizer().isPresent()) {
                dev.rewardensemble.data.ChatTemplate.copyTokenizerFiles(
                    lora.tokenizer().get(), baseDir);
              }
              for (int k = 0; k < members; k++) {
                PeftAdapters.export(stage.resolve("member-" + k), stacked, k, base);
              }
            });
        System.err.printf(
            "exported %d PEFT adapters and their base (the frozen trunk) -> %s%n",
            m.members(), out);
      }
      default ->
          throw new UserError("--format must be savedmodel, hf or peft, got '" + format + "'");
    }
    return 0;
  }

  private static Map<String, dev.rewardensemble.io.FloatTensor> loraWeights(EnsembleModel m) {
    Map<String, dev.rewardensemble.io.FloatTensor> w = new LinkedHashMap<>();
    java.util.Set<String> trainable =
        java.util.Set.copyOf(
            dev.rewardensemble.ensemble.LoraEnsembleGraph.trainableKeys(m.config(), m.lora()));
    for (String k : m.weights().keySet()) {
      if (trainable.contains(k)) {
        w.put(k, m.weights().get(k)); // adapters and heads only
      }
    }
    return w;
  }

  private void requireOut() {
    if (out == null) {
      throw new UserError("--out is required for --format " + format);
    }
  }

  private Path savedModelDir() {
    return root.resolve(name).resolve(Integer.toString(version)).toAbsolutePath().normalize();
  }

  /**
   * Before any work: the export directory must not be or contain an input; an existing SavedModel
   * version, or a non-empty --out of the hf and peft formats, is refused without --overwrite.
   */
  private void checkPaths(Path target) throws java.io.IOException {
    boolean savedModel = policy || format.equals("savedmodel");
    Outputs.paths()
        .input("--model", model)
        .inputs("--lora", lora)
        .outputDir(savedModel ? "the export directory" : "--out", target)
        .check();
    if (target == null || overwrite || !Files.isDirectory(target)) {
      return;
    }
    if (savedModel) {
      throw new UserError(
          "cannot export to "
              + target
              + ": that version already exists (choose another --version, or give --overwrite to replace it)");
    }
    try (var entries = Files.list(target)) {
      if (entries.findAny().isPresent()) {
        throw new UserError(
            "--out "
                + out
                + " is not empty: give --overwrite to replace the files the export"
                + " writes there (other files stay), or choose another directory");
      }
    }
  }

  static String provenanceCommit() {
    return Provenance.gitCommit();
  }

  /**
   * transformers reads an exported {@code ...ForSequenceClassification} at the last non-pad token
   * ({@code pad_token_id} is written): say so when the model was trained reading elsewhere.
   */
  private static void warnRewardToken(EnsembleModel m) {
    if (m.rewardToken() != dev.rewardensemble.config.RewardToken.LAST_NON_PAD) {
      System.err.printf(
          "rme export: note: the model reads its reward at %s, transformers will read it at the"
              + " last token that is not pad_token_id %d (the same unless a sequence ends with"
              + " that id)%n",
          m.rewardToken().id(), m.config().padTokenId());
    }
  }
}
