package dev.rewardensemble.cli;

import dev.rewardensemble.api.Provenance;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
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

/** {@code rme export}: SavedModel for TF Serving and Python, Hugging Face layout, or PEFT adapters. */
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
  @Option(names = "--model", required = true, description = "A run directory, Hugging Face checkpoint, or base (with --lora).")
  Path model;

  @Option(names = "--lora", split = ",", description = "PEFT adapter directories over --model.")
  List<Path> lora;

  @Option(names = "--format", defaultValue = "savedmodel", description = "savedmodel, hf or peft (default: ${DEFAULT-VALUE}).")
  String format;

  @Option(names = "--name", description = "SavedModel name (savedmodel format).")
  String name;

  @Option(names = "--version", defaultValue = "1", description = "SavedModel version directory (default: ${DEFAULT-VALUE}).")
  int version;

  @Option(names = "--root", defaultValue = "savedmodels", description = "SavedModel root (default: ${DEFAULT-VALUE}).")
  Path root;

  @Option(names = "--out", description = "Output directory (hf and peft formats).")
  Path out;

  @Option(names = "--overwrite", description = "Replace an existing export.")
  boolean overwrite;

  @CommandLine.Mixin AggregationOptions aggregation = new AggregationOptions();

  @Option(
      names = "--policy",
      description = "--model is a causal LM (e.g. RUN_DIR/policy of rme ppo): export a SavedModel with a 'generate' signature.")
  boolean policy;

  @Override
  public Integer call() throws Exception {
    if (policy) {
      if (!format.equals("savedmodel") || name == null) {
        throw new UserError("--policy exports a SavedModel: give --name (and no --format other than savedmodel)");
      }
      Path dir = root.resolve(name).resolve(Integer.toString(version));
      try (dev.rewardensemble.rl.Sampler s = dev.rewardensemble.rl.Sampler.load(model, dev.rewardensemble.config.ExecConfig.defaults())) {
        if (overwrite) {
          dev.rewardensemble.io.AtomicDirs.deleteRecursively(dir);
        }
        s.exportSavedModel(dir);
      }
      System.err.printf("exported policy %s with signature 'generate' -> %s%n", model, dir);
      return 0;
    }
    EnsembleModel m = EnsembleModel.load(model, lora);
    m = new EnsembleModel(m.kind(), m.config(), m.members(), m.weights(), m.lora(), m.normalization(),
        aggregation.resolve(m.aggregation()), m.tokenizer(), m.source());
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
          prov.put("run", new com.fasterxml.jackson.databind.ObjectMapper().readTree(runJson.toFile()));
        }
        Path dir = SavedModels.export(root.resolve(name).resolve(Integer.toString(version)), m, prov, overwrite);
        System.err.printf("exported %s (%s, K=%d) -> %s%n", model, m.kind().id(), m.members(), dir);
      }
      case "hf" -> {
        requireOut();
        if (m.kind() == EnsembleKind.LORA) {
          throw new UserError("a LoRA ensemble has no plain Hugging Face layout: use --format peft (adapters) or savedmodel");
        }
        if (m.kind() == EnsembleKind.INDEPENDENT) {
          for (int k = 0; k < m.members(); k++) {
            Map<String, dev.rewardensemble.io.FloatTensor> w = new LinkedHashMap<>();
            String p = dev.rewardensemble.ensemble.IndependentGraph.prefix(k);
            m.weights().forEach((key, v) -> {
              if (key.startsWith(p)) {
                w.put(key.substring(p.length()), v);
              }
            });
            SavedModels.exportHf(out.resolve("member-" + k), m.config(), w, 1);
          }
        } else {
          SavedModels.exportHf(out, m.config(), m.weights(), m.members());
        }
        copyTokenizer(m);
        System.err.printf("exported %s (%s, K=%d) in the Hugging Face layout -> %s%n", model, m.kind().id(), m.members(), out);
      }
      case "peft" -> {
        requireOut();
        if (m.kind() != EnsembleKind.LORA) {
          throw new UserError("--format peft needs a LoRA ensemble, " + model + " is " + m.kind().id());
        }
        PeftAdapters.Stacked stacked = new PeftAdapters.Stacked(m.config(), m.lora(), m.members(), loraWeights(m));
        for (int k = 0; k < m.members(); k++) {
          PeftAdapters.export(out.resolve("member-" + k), stacked, k, m.source().toAbsolutePath().toString());
        }
        System.err.printf("exported %d PEFT adapters -> %s%n", m.members(), out);
      }
      default -> throw new UserError("--format must be savedmodel, hf or peft, got '" + format + "'");
    }
    return 0;
  }

  private static Map<String, dev.rewardensemble.io.FloatTensor> loraWeights(EnsembleModel m) {
    Map<String, dev.rewardensemble.io.FloatTensor> w = new LinkedHashMap<>();
    m.weights().forEach((k, v) -> {
      if (k.endsWith(".lora_A") || k.endsWith(".lora_B") || k.equals("score.weight")) {
        w.put(k, v);
      }
    });
    return w;
  }

  private void requireOut() {
    if (out == null) {
      throw new UserError("--out is required for --format " + format);
    }
  }

  private void copyTokenizer(EnsembleModel m) throws java.io.IOException {
    if (m.tokenizer().isPresent()) {
      Files.createDirectories(out);
      Files.copy(m.tokenizer().get(), out.resolve("tokenizer.json"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
  }

  static String provenanceCommit() {
    return Provenance.gitCommit();
  }
}
