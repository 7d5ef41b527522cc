package dev.rewardensemble.cli;

import dev.rewardensemble.config.AvailableMemory;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.MemoryPlan;
import dev.rewardensemble.ensemble.ModelShape;
import dev.rewardensemble.lora.LoraConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code rme info}: what a model or ensemble is, how many parameters it holds, and the memory plan
 * of a piece of work with it (computed from its configuration, before anything is allocated).
 */
@Command(
    name = "info",
    mixinStandardHelpOptions = true,
    description = {
      "Describe a reward model or ensemble: kind, architecture, K, parameter counts, and the memory",
      "a piece of work with it needs, part by part. Counts in the paper's terms",
      "(M trunk, L head, A adapters per member): single M+L, independent K(M+L), linear M+KL, LoRA M+KL+KA."
    })
public final class InfoCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      description = "Checkpoint, run directory, base (with --lora), or a tf-graphs/*.json preset.")
  Path model;

  @Option(names = "--lora", split = ",", description = "PEFT adapter directories over --model.")
  List<Path> lora;

  @Option(
      names = "--ensemble",
      description = "Plan this kind instead of the model's: single, independent, linear, lora.")
  String ensemble;

  @Option(names = "--k", description = "Members K of --ensemble (default 3; 1 for single).")
  Integer k;

  @Option(names = "--lora-rank", description = "Adapter rank r (default 8, or the adapters').")
  Integer loraRank;

  @Option(
      names = "--lora-targets",
      split = ",",
      description = "Adapted modules (default: every projection, or the adapters').")
  List<String> loraTargets;

  @Option(
      names = "--lora-layers",
      description = "Adapters only in the top N blocks (0 = all; default: the adapters').")
  Integer loraLayers;

  @Option(
      names = "--weights",
      defaultValue = "float32",
      description = "Storage of frozen weights: float32 or bfloat16 (default: ${DEFAULT-VALUE}).")
  String weights;

  @Option(
      names = "--mode",
      defaultValue = "score",
      description = "The work: score, train, generate or ppo (default: ${DEFAULT-VALUE}).")
  String mode;

  @Option(
      names = "--batch-size",
      defaultValue = "8",
      description =
          "Sequences per batch (train: pairs per micro-batch) (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--max-length",
      description =
          "Tokens per sequence (generate, ppo: prompt tokens) (default: min(512, positions)).")
  Integer maxLength;

  @Option(
      names = "--max-new-tokens",
      defaultValue = "300",
      description = "New tokens of generate and ppo (default: ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(
      names = "--recompute",
      arity = "0..1",
      fallbackValue = "all",
      defaultValue = "none",
      paramLabel = "all|auto|N|none",
      description =
          "Plan training with blocks recomputed in the backward pass (train-rm --recompute):"
              + " alone or 'all' every block, N the lowest N, 'auto' the fewest that make the plan"
              + " fit in the memory available here. Default: ${DEFAULT-VALUE}.")
  String recomputeOption;

  @Option(
      names = "--compute",
      defaultValue = "float32",
      description =
          "Compute precision of the planned work (train-rm --compute): bfloat16 plans training"
              + " activations in bfloat16 inside the blocks (default: ${DEFAULT-VALUE}).")
  String compute;

  @Option(
      names = "--gpu-memory",
      defaultValue = "80GiB",
      description =
          "Device memory of the GPU table: each kind, scoring and training (default: ${DEFAULT-VALUE}).")
  String gpuMemory;

  @Override
  public Integer call() throws Exception {
    List<Path> adapters = lora == null ? List.of() : lora;
    if (!Files.exists(model)) {
      throw new UserError("--model: " + model + " does not exist");
    }
    int weightBytes =
        switch (weights) {
          case "float32" -> 4;
          case "bfloat16" -> 2;
          default ->
              throw new UserError("--weights must be float32 or bfloat16, got '" + weights + "'");
        };
    MemoryPlan.Mode m = MemoryPlan.Mode.byName(mode);
    dev.rewardensemble.config.Precision precision;
    try {
      precision = dev.rewardensemble.config.Precision.parse(compute);
    } catch (IllegalArgumentException e) {
      throw new UserError("--compute: " + e.getMessage());
    }
    long gpu = AvailableMemory.parseBytes(gpuMemory, "--gpu-memory");
    Optional<ModelShape> found = ModelShape.read(model, adapters);
    boolean planned = ensemble != null;
    ModelShape shape;
    if (found.isPresent()) {
      shape = found.get();
    } else {
      // Not readable from its JSON (e.g. a SavedModel): as today, from the loaded model.
      EnsembleModel em = EnsembleModel.load(model, adapters);
      shape = new ModelShape(em.config(), em.kind(), em.members(), em.lora());
    }
    ModelConfig c = shape.config();
    EnsembleKind kind = planned ? EnsembleKind.byName(ensemble) : shape.kind();
    int members = k != null ? k : planned ? (kind == EnsembleKind.SINGLE ? 1 : 3) : shape.k();
    LoraConfig lc = null;
    if (kind == EnsembleKind.LORA) {
      lc = shape.lora() != null ? shape.lora() : LoraConfig.defaults(c);
      if (loraRank != null) {
        lc = lc.withRank(loraRank, 2.0 * loraRank);
      }
      if (loraTargets != null && !loraTargets.isEmpty()) {
        lc = lc.withTargets(loraTargets);
      }
      if (loraLayers != null) {
        lc = lc.withLoraLayers(loraLayers);
      }
      lc.checkFor(c);
    }
    int length = maxLength != null ? maxLength : Math.min(512, c.maxPositions());
    boolean auto = recomputeOption.trim().equalsIgnoreCase("auto");
    dev.rewardensemble.config.Recomputation recompute =
        auto
            ? dev.rewardensemble.config.Recomputation.NONE
            : dev.rewardensemble.config.Recomputation.parse(recomputeOption);
    MemoryPlan.Request req =
        new MemoryPlan.Request(
            c,
            kind,
            members,
            lc,
            m,
            weightBytes,
            batchSize,
            length,
            maxNewTokens,
            // only a preset trained from scratch is initialised in Java arrays
            m == MemoryPlan.Mode.TRAIN && MemoryCheck.javaCopy(model),
            recompute,
            precision);
    if (m
        == MemoryPlan.Mode.SCORE) { // as rme score would load it: a large embedding's rows on host
      req = req.withHostedEmbedding(MemoryCheck.hostedEmbedding(model, adapters, c, weightBytes));
    }
    if (auto) {
      recompute = MemoryPlan.fewestRecomputed(req, AvailableMemory.measure().bytes());
      if (recompute == null) {
        recompute = dev.rewardensemble.config.Recomputation.ALL; // nothing fits: the plan says so
      }
      req = req.withRecompute(recompute);
    }
    MemoryPlan plan = MemoryPlan.of(req);

    long mm = MemoryPlan.trunkParameters(c);
    long l = c.hiddenSize();
    long a = MemoryPlan.adapterParameters(c, lc);
    long total =
        switch (kind) {
          case SINGLE -> mm + l;
          case INDEPENDENT -> members * (mm + l);
          case LINEAR -> mm + members * l;
          case LORA -> mm + members * l + members * a;
        };
    String formula =
        switch (kind) {
          case SINGLE -> "M+L";
          case INDEPENDENT -> "K(M+L)";
          case LINEAR -> "M+KL";
          case LORA -> "M+KL+KA";
        };
    System.out.printf("model: %s%n", model);
    System.out.printf(
        "kind: %s, K = %d%s%n", kind.id(), members, planned ? " (planned with --ensemble)" : "");
    System.out.printf("architecture: %s%n", c);
    if (lc != null) {
      System.out.printf("lora: %s%n", lc);
    }
    System.out.printf(
        "parameters: M = %d (trunk), L = %d (one head), A = %d (one member's adapters)%n",
        mm, l, a);
    System.out.printf("total in memory: %d  [%s = %d]%n", total, formula, total);
    if (found.isPresent() && !planned && Files.isDirectory(model)) {
      describeAggregation(adapters);
    }
    System.out.printf(
        "%nmemory plan: %s, %s weights, %s compute, batch %d, %d tokens%s%s%n",
        m.id(),
        weights,
        precision.id(),
        batchSize,
        length,
        m == MemoryPlan.Mode.GENERATE || m == MemoryPlan.Mode.PPO
            ? " + " + maxNewTokens + " new"
            : "",
        (m == MemoryPlan.Mode.TRAIN || m == MemoryPlan.Mode.PPO) && recompute.any()
            ? recompute.all()
                ? ", blocks recomputed" + (auto ? " (auto)" : "")
                : ", lowest " + recompute.blocks() + " blocks recomputed" + (auto ? " (auto)" : "")
            : auto ? ", nothing recomputed (auto: fits)" : "");
    System.out.print(plan.table());
    if ((m == MemoryPlan.Mode.TRAIN && length > 0 || m == MemoryPlan.Mode.PPO)
        && !recompute.all()) {
      MemoryPlan with = MemoryPlan.of(req.withRecompute(true));
      System.out.printf(
          "with --recompute: activations %s instead of %s, total %s%n",
          AvailableMemory.gib(with.bytes("activations")),
          AvailableMemory.gib(plan.bytes("activations")),
          AvailableMemory.gib(with.total()));
    }
    AvailableMemory avail = AvailableMemory.measure();
    System.out.printf(
        "available here: %s (%s): %s%n",
        AvailableMemory.gib(avail.bytes()),
        avail.source(),
        plan.total() <= avail.bytes() ? "fits" : "does not fit");
    System.out.print(gpuTable(req, gpu));
    return 0;
  }

  /** Today's aggregation line, from the model's manifest (read only when small enough to load). */
  private void describeAggregation(List<Path> adapters) {
    try {
      MemoryPlan load =
          MemoryPlan.of(
              ModelShape.read(model, adapters)
                  .map(s -> MemoryPlan.Request.score(s.config(), s.kind(), s.k(), s.lora(), 1, 0))
                  .orElseThrow());
      if (load.total() > AvailableMemory.measure().bytes()) {
        System.out.println("aggregation: (not loaded: the model is larger than available memory)");
        return;
      }
      EnsembleModel em = EnsembleModel.load(model, adapters);
      System.out.printf(
          "aggregation: %s%s%n",
          em.aggregation(), em.normalization().isPresent() ? ", per-member normalisation" : "");
    } catch (java.io.IOException e) {
      throw new UserError(model + ": " + e.getMessage());
    }
  }

  /**
   * Device memory of each kind on one GPU, scoring and training, with float32 and bfloat16 frozen
   * weights: the plan without the host's costs (JVM and TensorFlow runtime, loading copies).
   */
  static String gpuTable(MemoryPlan.Request base, long gpu) {
    ModelConfig c = base.config();
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "%nGPU with %s (device memory: weights, optimizer state, gradients, activations;"
                + " host-side runtime and loading copies excluded), batch %d, %d tokens:%n",
            AvailableMemory.gib(gpu),
            base.batchSize(),
            base.length()));
    sb.append(
        String.format(
            Locale.ROOT,
            "  %-16s %-6s %14s %14s  %s%n",
            "kind",
            "work",
            "float32",
            "bfloat16",
            "fits (float32 / bfloat16)"));
    LoraConfig lc = base.lora() != null ? base.lora() : LoraConfig.defaults(c);
    Object[][] kinds = {
      {EnsembleKind.SINGLE, 1},
      {EnsembleKind.INDEPENDENT, 3},
      {EnsembleKind.LINEAR, 3},
      {EnsembleKind.LORA, 3}
    };
    for (Object[] kd : kinds) {
      EnsembleKind kind = (EnsembleKind) kd[0];
      int kk = (Integer) kd[1];
      for (MemoryPlan.Mode mode : List.of(MemoryPlan.Mode.SCORE, MemoryPlan.Mode.TRAIN)) {
        MemoryPlan.Request r =
            base.withKind(kind, kk, kind == EnsembleKind.LORA ? lc : null)
                .withMode(mode)
                .withJavaCopy(false);
        long f32 = device(MemoryPlan.of(r.withWeightBytes(4)));
        long b16 = device(MemoryPlan.of(r.withWeightBytes(2)));
        sb.append(
            String.format(
                Locale.ROOT,
                "  %-16s %-6s %14s %14s  %s / %s%n",
                kind.id() + (kk > 1 ? " K=" + kk : ""),
                mode.id(),
                AvailableMemory.gib(f32),
                AvailableMemory.gib(b16),
                f32 <= gpu ? "yes" : "no",
                b16 <= gpu ? "yes" : "no"));
      }
    }
    return sb.toString();
  }

  /** The plan's bytes on the device: everything but the host runtime's measured cost. */
  static long device(MemoryPlan p) {
    return p.deviceTotal();
  }
}
