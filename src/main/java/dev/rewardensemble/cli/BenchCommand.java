package dev.rewardensemble.cli;

import dev.rewardensemble.bench.BenchOptions;
import dev.rewardensemble.bench.BenchRunner;
import dev.rewardensemble.bench.ServeBench;
import dev.rewardensemble.config.ExecConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code rme bench}: throughput, MFU and memory of the project's graphs, optionally side by side
 * with PyTorch.
 */
@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    description = {
      "Benchmark throughput, MFU and memory (optionally against PyTorch + transformers).",
      "On random seeded weights of the bench presets: (a) scoring, sequences/s;",
      "(b) one Bradley-Terry step (B pairs = 2B sequences, forward+backward+AdamW), tokens/s; (c) one LoRA",
      "phase-2 step (K=1, r=8, trunk frozen), tokens/s; (e) scoring with each ensemble kind at K members,",
      "sequences/s, and its peak memory (fresh process per kind, on a scaled copy of the first preset).",
      "MFU is against the peak float32 matmul FLOP/s measured in the same process.",
      "--peer runs the same workloads in PyTorch + transformers on the same weights and ids (scripts/bench-peer.sh).",
      "--workloads scale (on its own): the paper's scale on this machine. A random bf16 checkpoint of",
      "--preset (default llama-7b) written as transformers' save_pretrained writes it, then, each in a",
      "fresh JVM: load + score --rows x --seq with the single model and with a --k LoRA ensemble (r 8,",
      "every projection), two LoRA phase-2 steps on one pair, and the rewards of its first",
      "--check-layers blocks against float32; --peer: the same in PyTorch + transformers + peft in",
      "bfloat16 (scripts/bench-scale-peer.sh). Prints peak RSS, seconds and the issue #15 targets."
    })
public final class BenchCommand implements Callable<Integer> {
  @Option(
      names = "--preset",
      split = ",",
      description =
          "Preset files (default tf-graphs/bench-llama.json,tf-graphs/bench-gpt2.json under --root).")
  List<Path> presets;

  @Option(
      names = "--batch",
      defaultValue = "16",
      description =
          "Sequences per scoring batch; pairs per training step (default: ${DEFAULT-VALUE}).")
  int batch;

  @Option(
      names = "--seq",
      defaultValue = "128",
      description = "Tokens per sequence (default: ${DEFAULT-VALUE}).")
  int seq;

  @Option(
      names = "--k",
      defaultValue = "3",
      description = "Ensemble members (default: ${DEFAULT-VALUE}).")
  int k;

  @Option(
      names = "--warmup",
      defaultValue = "3",
      description = "Unmeasured runs per workload (default: ${DEFAULT-VALUE}).")
  int warmup;

  @Option(
      names = "--reps",
      defaultValue = "10",
      description =
          "Measured runs per workload; the median is reported (default: ${DEFAULT-VALUE}).")
  int reps;

  @Option(
      names = "--intra-threads",
      defaultValue = "2",
      description = "Intra-op threads (default: ${DEFAULT-VALUE}; the peer uses the same).")
  int intra;

  @Option(
      names = "--inter-threads",
      defaultValue = "1",
      description = "Inter-op threads (default: ${DEFAULT-VALUE}).")
  int inter;

  @Option(
      names = "--xla",
      arity = "0..1",
      defaultValue = "${sys:rme.xla:-off}",
      fallbackValue = "on",
      paramLabel = "off|auto|on",
      description =
          "XLA's JIT as for every command: off, auto (scoring and training compiled, generation"
              + " not) or on (--xla alone: every graph) (default: ${DEFAULT-VALUE}).")
  String xla;

  @Option(
      names = "--compute",
      defaultValue = "float32",
      description =
          "Precision of the matrix products, float32 or bfloat16 (the peer then runs under torch.autocast bfloat16) (default: ${DEFAULT-VALUE}).")
  String compute;

  @Option(
      names = "--weights",
      defaultValue = "float32",
      description =
          "How the random weights are stored: float32, or bfloat16 (as a bf16 checkpoint: values"
              + " rounded to bfloat16, the frozen weights held in bfloat16; the peer loads them as"
              + " bfloat16 under --compute bfloat16, else as float32) (default: ${DEFAULT-VALUE}).")
  String weights;

  @Option(
      names = "--kinds",
      split = ",",
      defaultValue = "single,linear,independent,lora,lora-top1,single-x-k",
      description =
          "Ensemble kinds of the ensembles workload (loaded together), any of single, linear,"
              + " independent, lora, lora-top1, single-x-k (default: all).")
  List<String> kinds;

  @Option(
      names = "--memory-budget",
      description =
          "Most memory a workload may plan for, e.g. 6GiB (default: what is available). A workload"
              + " whose plan (rme info's) exceeds it or the available memory is skipped, with the"
              + " reason printed and written to the JSON.")
  String memoryBudget;

  @Option(
      names = "--recompute",
      arity = "0..1",
      fallbackValue = "all",
      defaultValue = "none",
      paramLabel = "all|auto|N|none",
      description =
          "Training workloads recompute their blocks in the backward pass (train-rm --recompute):"
              + " alone or 'all' every block, N the lowest N; 'auto' (scale workload only) the"
              + " fewest that make the memory plan fit. Default: ${DEFAULT-VALUE}.")
  String recompute;

  @Option(
      names = "--seed",
      defaultValue = "42",
      description = "Seed of weights and token ids (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(
      names = "--peer",
      description =
          "Also run scripts/bench-peer.sh (PyTorch + transformers) and print project vs peer.")
  boolean peer;

  @Option(names = "--json", description = "Write the results as JSON to this file.")
  Path json;

  @Option(names = "--no-memory", description = "Skip the per-kind peak-memory probes.")
  boolean noMemory;

  @Option(
      names = "--profile",
      description =
          "Trace the project's runs of each workload and print the op types that take its time"
              + " (TensorFlow's FULL_TRACE step stats; traced runs are slower, so use the shares,"
              + " not the timings).")
  boolean profile;

  @Option(
      names = "--memory-hidden",
      defaultValue = "1024",
      description = "Hidden size of the memory model (default: ${DEFAULT-VALUE}).")
  int memHidden;

  @Option(
      names = "--memory-layers",
      defaultValue = "8",
      description = "Blocks of the memory model (default: ${DEFAULT-VALUE}).")
  int memLayers;

  @Option(
      names = "--matmul-n",
      defaultValue = "2048",
      description = "Size of the peak-matmul probe (default: ${DEFAULT-VALUE}).")
  int matmulN;

  @Option(
      names = "--workloads",
      split = ",",
      defaultValue = "score,bt-step,lora-step,generate,generate-sampled,ensembles",
      description =
          "Workloads to run, any of score, bt-step, lora-step, generate (greedy),"
              + " generate-sampled (temperature 1, top-k 50, top-p 0.9), ensembles (default: all"
              + " of these), and serve (rme serve over loopback HTTP against in-process scoring;"
              + " only when named); or scale on its own.")
  List<String> workloads;

  @Option(
      names = "--serve-requests",
      defaultValue = "192",
      description =
          "Single-row requests per setting of the serve workload (default: ${DEFAULT-VALUE}).")
  int serveRequests;

  @Option(
      names = "--scale-dir",
      description =
          "scale: where the checkpoints are written and reused from on later runs (default: a"
              + " temporary directory, deleted at the end). llama-7b needs ~14 GB of disk.")
  Path scaleDir;

  @Option(
      names = "--rows",
      defaultValue = "2",
      description = "scale: sequences of the scoring batch (default: ${DEFAULT-VALUE}).")
  int rows;

  @Option(
      names = "--max-shard-size",
      defaultValue = "5GB",
      description =
          "scale: save_pretrained's max_shard_size for the checkpoint, e.g. 5GB (transformers 4's"
              + " default, how published 7B checkpoints are sharded) or 50GB (transformers 5's)"
              + " (default: ${DEFAULT-VALUE}).")
  String maxShardSize;

  @Option(
      names = "--check-layers",
      defaultValue = "2",
      description =
          "scale: blocks of the truncated checkpoint whose rewards are checked against float32"
              + " (default: ${DEFAULT-VALUE}).")
  int checkLayers;

  @Option(
      names = "--child-heap",
      defaultValue = "3g",
      description =
          "scale: -Xmx of the workloads' JVMs; the weights live outside the heap (default:"
              + " ${DEFAULT-VALUE}).")
  String childHeap;

  @Option(
      names = "--root",
      defaultValue = ".",
      description = "Project root (presets, scripts/) (default: the working directory).")
  Path root;

  @Option(
      names = "--work-dir",
      description =
          "Where exports and peer files go (default: a new temporary directory, deleted when the"
              + " bench ends; a given directory is kept).")
  Path workDir;

  /**
   * Deletes the bench's work directory when the bench made it (no {@code --work-dir}): the exported
   * checkpoints in it are the size of the models (9 GB for the 1.2B preset with the peer's copy).
   */
  private void deleteOwnWorkDir(Path work) {
    if (workDir == null) {
      try {
        dev.rewardensemble.io.AtomicDirs.deleteRecursively(work);
      } catch (java.io.IOException e) {
        System.err.println("rme: warning: could not delete " + work + ": " + e.getMessage());
      }
    }
  }

  /** Writes {@code value} to {@code file} as indented JSON, through {@link Outputs#writeLines}. */
  private static void writeJson(Path file, Object value) throws java.io.IOException {
    Outputs.writeLines(
        file,
        List.of(
            new com.fasterxml.jackson.databind.ObjectMapper()
                .writerWithDefaultPrettyPrinter()
                .writeValueAsString(value)));
  }

  /** {@code --recompute} as a number of blocks; {@code auto} only for the scale workload. */
  private dev.rewardensemble.config.Recomputation recomputation() {
    if (recompute.trim().equalsIgnoreCase("auto")) {
      if (!workloads.contains("scale")) {
        throw new UserError("--recompute auto: only for --workloads scale (give all or N)");
      }
      return dev.rewardensemble.config.Recomputation.NONE; // resolved by each scale probe
    }
    return dev.rewardensemble.config.Recomputation.parse(recompute);
  }

  @Override
  public Integer call() throws Exception {
    if (workloads.contains(SCALE)) {
      return scale();
    }
    List<Path> ps = new ArrayList<>();
    if (presets == null || presets.isEmpty()) {
      ps.add(root.resolve("tf-graphs/bench-llama.json"));
      ps.add(root.resolve("tf-graphs/bench-gpt2.json"));
    } else {
      presets.forEach(p -> ps.add(resolvePreset(p)));
    }
    Outputs.paths().inputFiles("--preset", ps).outputFile("--json", json).check();
    for (Path p : ps) {
      if (!Files.isRegularFile(p)) {
        throw new UserError(
            "preset not found: " + p + " (run from the project root or pass --root/--preset)");
      }
    }
    boolean serve = workloads.contains("serve");
    List<String> runner = workloads.stream().filter(w -> !w.equals("serve")).toList();
    if (serve && serveRequests < 1) {
      throw new UserError("--serve-requests must be >= 1, got " + serveRequests);
    }
    for (String w : runner) {
      if (!BenchRunner.Spec.WORKLOADS.contains(w)) {
        throw new UserError(
            "--workloads: unknown workload '"
                + w
                + "' (expected some of "
                + String.join(", ", BenchRunner.Spec.WORKLOADS)
                + ", serve)");
      }
    }
    dev.rewardensemble.config.WeightStorage storage = ExecOptions.storage(weights);
    if (storage == dev.rewardensemble.config.WeightStorage.AUTO) {
      throw new UserError("--weights: the bench's weights are float32 or bfloat16, got auto");
    }
    for (String kind : kinds) {
      if (!dev.rewardensemble.bench.Workloads.ALL_KINDS.contains(kind)) {
        throw new UserError(
            "--kinds: unknown ensemble kind '"
                + kind
                + "' (expected some of "
                + String.join(", ", dev.rewardensemble.bench.Workloads.ALL_KINDS)
                + ")");
      }
    }
    BenchOptions o =
        new BenchOptions(
            batch,
            seq,
            k,
            warmup,
            reps,
            new ExecConfig(intra, inter, ExecOptions.xlaMode(xla))
                .withCompute(ExecOptions.precision(compute))
                .withWeights(storage)
                .withRecompute(recomputation()),
            seed);
    java.util.Map<String, String> skipped = new java.util.LinkedHashMap<>();
    if (!runner.isEmpty()) {
      skipped = skipUnfit(ps, runner, storage);
    } else {
      for (Path p : ps) {
        MemoryCheck.bench(p, List.of("score"), batch, seq, k)
            .ifPresent(plan -> MemoryCheck.require(plan, "rme bench on " + p));
      }
    }
    java.util.function.Consumer<String> log =
        line -> {
          System.err.println(line);
          System.err.flush();
        };
    com.fasterxml.jackson.databind.node.ObjectNode out = null;
    if (!runner.isEmpty()) {
      Path work = workDir != null ? workDir : Files.createTempDirectory("rme-bench");
      try {
        BenchRunner.Report r =
            BenchRunner.run(
                new BenchRunner.Spec(
                    ps,
                    o,
                    peer,
                    root,
                    !noMemory,
                    memHidden,
                    memLayers,
                    matmulN,
                    work,
                    new java.util.HashSet<>(runner),
                    kinds,
                    skipped,
                    profile),
                log);
        BenchRunner.print(r, System.out);
        out = BenchRunner.toJson(r, o);
      } finally {
        deleteOwnWorkDir(work);
      }
    }
    if (serve) {
      List<ServeBench.Result> results = new ArrayList<>();
      for (Path p : ps) {
        results.addAll(ServeBench.run(p, o, serveRequests, log));
      }
      ServeBench.print(results, System.out);
      if (out == null) {
        out = new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode();
      }
      out.set("serve", ServeBench.toJson(results));
    }
    if (json != null) {
      writeJson(json, out);
      System.out.println("\nwrote " + json);
    }
    return 0;
  }

  /**
   * The workloads of {@code runner} whose memory plan does not fit the budget ({@code
   * --memory-budget}, and at most what is available), by {@code <preset name>/<workload>}, each
   * with the plan's one-line reason, printed as it is decided; when nothing would be left to run,
   * the first reason is the error.
   */
  private java.util.Map<String, String> skipUnfit(
      List<Path> ps, List<String> runner, dev.rewardensemble.config.WeightStorage storage) {
    dev.rewardensemble.config.AvailableMemory avail =
        dev.rewardensemble.config.AvailableMemory.measure();
    if (memoryBudget != null) {
      long b =
          dev.rewardensemble.config.AvailableMemory.parseBytes(memoryBudget, "--memory-budget");
      if (b < avail.bytes()) {
        avail = new dev.rewardensemble.config.AvailableMemory(b, "--memory-budget " + memoryBudget);
      }
    }
    int weightBytes = storage == dev.rewardensemble.config.WeightStorage.BFLOAT16 ? 2 : 4;
    java.util.Map<String, String> skipped = new java.util.LinkedHashMap<>();
    String first = null;
    for (Path p : ps) {
      String name = p.getFileName().toString().replaceFirst("\\.json$", "");
      for (String w : runner) {
        var plan = MemoryCheck.benchWorkload(p, w, batch, seq, k, kinds, weightBytes);
        if (plan.isEmpty()) {
          continue;
        }
        try {
          plan.get().require(avail, "rme bench on " + p);
        } catch (IllegalArgumentException e) {
          skipped.put(name + "/" + w, e.getMessage());
          first = first == null ? e.getMessage() : first;
          System.err.println("rme: bench: skipping " + name + "/" + w + ": " + e.getMessage());
        }
      }
    }
    if (skipped.size() == ps.size() * runner.size()) {
      throw new UserError(first);
    }
    return skipped;
  }

  /** The workload of issue #15's measurement, run on its own. */
  static final String SCALE = "scale";

  /** A preset file, or a name of one in {@code tf-graphs/} ({@code llama-7b}). */
  private Path resolvePreset(Path p) {
    if (!Files.exists(p) && p.getNameCount() == 1 && !p.toString().endsWith(".json")) {
      Path named = root.resolve("tf-graphs").resolve(p + ".json");
      if (Files.isRegularFile(named)) {
        return named;
      }
    }
    return p;
  }

  /** {@code "5GB"} as huggingface_hub's {@code parse_size_to_int} reads it (decimal units). */
  static long parseSize(String s) {
    String t = s.strip();
    String unit =
        t.length() < 2 ? "" : t.substring(t.length() - 2).toUpperCase(java.util.Locale.ROOT);
    long mult =
        switch (unit) {
          case "TB" -> 1_000_000_000_000L;
          case "GB" -> 1_000_000_000L;
          case "MB" -> 1_000_000L;
          case "KB" -> 1_000L;
          default ->
              throw new UserError(
                  "--max-shard-size: '" + s + "' needs a unit of TB, GB, MB or KB (e.g. 5GB)");
        };
    double v;
    try {
      v = Double.parseDouble(t.substring(0, t.length() - 2).strip());
    } catch (NumberFormatException e) {
      throw new UserError("--max-shard-size: '" + s + "' is not a size (e.g. 5GB)");
    }
    if (!(v > 0) || Double.isInfinite(v)) {
      throw new UserError("--max-shard-size: '" + s + "' must be positive");
    }
    return (long) (v * mult);
  }

  private Integer scale() throws Exception {
    if (workloads.size() != 1) {
      throw new UserError(
          "--workloads: scale runs on its own (got " + String.join(",", workloads) + ")");
    }
    if (presets != null && presets.size() > 1) {
      throw new UserError("--preset: scale takes one preset, got " + presets.size());
    }
    Path preset =
        resolvePreset(presets == null || presets.isEmpty() ? Path.of("llama-7b") : presets.get(0));
    if (!Files.isRegularFile(preset)) {
      throw new UserError(
          "preset not found: "
              + preset
              + " (a file, or a name in "
              + root.resolve("tf-graphs")
              + ")");
    }
    long maxShard = parseSize(maxShardSize);
    if (rows < 2) {
      throw new UserError("--rows: scale needs at least 2 rows (one training pair), got " + rows);
    }
    if (k < 1 || seq < 1 || intra < 1 || checkLayers < 1) {
      throw new UserError("--k, --seq, --intra-threads and --check-layers must be >= 1 for scale");
    }
    if (!childHeap.matches("[0-9]+[kKmMgG]?")) {
      throw new UserError("--child-heap: '" + childHeap + "' is not a heap size such as 3g");
    }
    Path md =
        json == null || json.toString().equals("-")
            ? null
            : json.resolveSibling(
                json.getFileName().toString().replaceFirst("\\.json$", "") + ".md");
    Outputs.paths()
        .inputFiles("--preset", List.of(preset))
        .outputFile("--json", json)
        .outputFile("--json (markdown beside it)", md)
        .check();
    com.fasterxml.jackson.databind.node.ObjectNode pj =
        dev.rewardensemble.bench.BenchModels.presetJson(preset);
    dev.rewardensemble.bench.ScaleCheckpoint.Plan plan =
        dev.rewardensemble.bench.ScaleCheckpoint.plan(pj, maxShard);
    if (checkLayers > plan.config().path("num_hidden_layers").asInt()) {
      throw new UserError(
          "--check-layers "
              + checkLayers
              + " exceeds the preset's "
              + plan.config().path("num_hidden_layers").asInt()
              + " blocks");
    }
    Path work = workDir != null ? workDir : Files.createTempDirectory("rme-bench");
    try {
      Path target = scaleDir != null ? scaleDir : work;
      Files.createDirectories(target);
      long need = plan.totalBytes() * 11 / 10 + (1L << 30);
      long free = Files.getFileStore(target).getUsableSpace();
      if (free < need) {
        System.err.printf(
            "rme: warning: %s has %.1f GiB free; writing the checkpoint needs up to %.1f GiB"
                + " (less if it is already there)%n",
            target, free / 1073741824.0, need / 1073741824.0);
      }
      dev.rewardensemble.bench.ScaleBench.Spec spec =
          new dev.rewardensemble.bench.ScaleBench.Spec(
              preset,
              scaleDir,
              rows,
              seq,
              k,
              intra,
              seed,
              maxShard,
              checkLayers,
              peer,
              root,
              work,
              recompute.trim().equalsIgnoreCase("auto") ? "auto" : recomputation().id(),
              childHeap,
              ExecOptions.precision(compute));
      dev.rewardensemble.bench.ScaleBench.Report r =
          dev.rewardensemble.bench.ScaleBench.run(
              spec,
              line -> {
                System.err.println(line);
                System.err.flush();
              });
      dev.rewardensemble.bench.ScaleBench.print(r, System.out);
      if (json != null) {
        writeJson(json, dev.rewardensemble.bench.ScaleBench.toJson(r, spec));
        if (md != null) {
          Outputs.writeLines(md, List.of(dev.rewardensemble.bench.ScaleBench.markdown(r)));
          System.out.println("\nwrote " + json + " and " + md);
        }
      }
      return 0;
    } finally {
      deleteOwnWorkDir(work);
    }
  }
}
