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
      "--peer runs the same workloads in PyTorch + transformers on the same weights and ids (scripts/bench-peer.sh)."
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
      description = "Compile with XLA's global JIT (CPU auto-clustering is enabled in-process).")
  boolean xla;

  @Option(
      names = "--compute",
      defaultValue = "float32",
      description =
          "Precision of the matrix products, float32 or bfloat16 (the peer then runs under torch.autocast bfloat16) (default: ${DEFAULT-VALUE}).")
  String compute;

  @Option(
      names = "--recompute",
      description =
          "Training workloads recompute their blocks in the backward pass (train-rm --recompute).")
  boolean recompute;

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
      defaultValue = "score,bt-step,lora-step,generate,ensembles",
      description =
          "Workloads to run, any of score, bt-step, lora-step, generate, ensembles (default: all"
              + " of these), and serve (rme serve over loopback HTTP against in-process scoring;"
              + " only when named).")
  List<String> workloads;

  @Option(
      names = "--serve-requests",
      defaultValue = "192",
      description =
          "Single-row requests per setting of the serve workload (default: ${DEFAULT-VALUE}).")
  int serveRequests;

  @Option(
      names = "--root",
      defaultValue = ".",
      description = "Project root (presets, scripts/) (default: the working directory).")
  Path root;

  @Option(
      names = "--work-dir",
      description = "Where exports and peer files go (default: a new temporary directory).")
  Path workDir;

  @Override
  public Integer call() throws Exception {
    List<Path> ps = new ArrayList<>();
    if (presets == null || presets.isEmpty()) {
      ps.add(root.resolve("tf-graphs/bench-llama.json"));
      ps.add(root.resolve("tf-graphs/bench-gpt2.json"));
    } else {
      ps.addAll(presets);
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
    BenchOptions o =
        new BenchOptions(
            batch,
            seq,
            k,
            warmup,
            reps,
            new ExecConfig(intra, inter, xla)
                .withCompute(ExecOptions.precision(compute))
                .withRecompute(recompute),
            seed);
    for (Path p : ps) {
      MemoryCheck.bench(p, runner.isEmpty() ? List.of("score") : runner, batch, seq, k)
          .ifPresent(plan -> MemoryCheck.require(plan, "rme bench on " + p));
    }
    java.util.function.Consumer<String> log =
        line -> {
          System.err.println(line);
          System.err.flush();
        };
    com.fasterxml.jackson.databind.node.ObjectNode out = null;
    if (!runner.isEmpty()) {
      Path work = workDir != null ? workDir : Files.createTempDirectory("rme-bench");
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
                  new java.util.HashSet<>(runner)),
              log);
      BenchRunner.print(r, System.out);
      out = BenchRunner.toJson(r, o);
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
      Outputs.writeLines(
          json,
          List.of(
              new com.fasterxml.jackson.databind.ObjectMapper()
                  .writerWithDefaultPrettyPrinter()
                  .writeValueAsString(out)));
      System.out.println("\nwrote " + json);
    }
    return 0;
  }
}
