package dev.rewardensemble.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.serving.SavedModels;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Runs {@code rme bench}: peak matmul, workloads (a) scoring, (b) Bradley-Terry step, (c) LoRA
 * phase-2 step, (e) ensemble kinds; memory per kind in fresh processes; optionally the peer ({@code
 * scripts/bench-peer.sh}) on the same exported weights and token ids.
 */
public final class BenchRunner {
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /**
   * @param presets {@code tf-graphs/*.json} files
   * @param peer run {@code scripts/bench-peer.sh} from {@code root}
   * @param memory measure peak RSS per ensemble kind on a scaled copy of the first preset
   * @param memHidden hidden size of that copy
   * @param memLayers blocks of that copy
   * @param matmulN size of the peak-matmul probe
   */
  public record Spec(
      List<Path> presets,
      BenchOptions options,
      boolean peer,
      Path root,
      boolean memory,
      int memHidden,
      int memLayers,
      int matmulN,
      Path workDir,
      Set<String> workloads) {
    /** Workload groups of {@code --workloads}, in the order they run. */
    public static final List<String> WORKLOADS =
        List.of(
            "score", "bt-step", "lora-step", "generate", Workloads.GENERATE_SAMPLED, "ensembles");

    public Spec {
      workloads = Set.copyOf(workloads);
      for (String w : workloads) {
        if (!WORKLOADS.contains(w)) {
          throw new IllegalArgumentException(
              "unknown workload '" + w + "' (expected some of " + WORKLOADS + ")");
        }
      }
      if (workloads.isEmpty()) {
        throw new IllegalArgumentException(
            "no workload selected (expected some of " + WORKLOADS + ")");
      }
    }
  }

  /** Everything measured. */
  public record Report(
      Map<String, Object> machine,
      double peakMatmulFlops,
      Double peerPeakMatmulFlops,
      List<WorkloadResult> workloads,
      ObjectNode memory,
      JsonNode peerInfo) {}

  private BenchRunner() {}

  public static Report run(Spec s, Consumer<String> log) throws Exception {
    BenchOptions o = s.options();
    Map<String, Object> machine = Machine.describe();
    log.accept("machine: " + machine);
    // a peak: the best median of three rounds (other processes on the machine only ever lower it)
    double peak = 0;
    for (int i = 0; i < 3; i++) {
      peak = Math.max(peak, Workloads.peakMatmulFlops(o.exec(), s.matmulN(), 5));
    }
    log.accept(
        String.format(
            "peak float32 matmul (%dx%d, TF, %d intra threads): %.1f GFLOP/s",
            s.matmulN(), s.matmulN(), o.exec().intraOpThreads(), peak / 1e9));

    Path work = s.workDir();
    Files.createDirectories(work);
    ObjectNode peerSpec = JSON.createObjectNode();
    peerSpec.put("threads", Math.max(1, o.exec().intraOpThreads()));
    peerSpec.put("warmup", o.warmup());
    peerSpec.put("reps", o.reps());
    peerSpec.put("batch", o.batch());
    peerSpec.put("seq", o.seq());
    peerSpec.put("k", o.k());
    peerSpec.put("matmul_n", s.matmulN());
    peerSpec.put("compute", o.exec().compute().id());
    ArrayNode peerWorkloads = peerSpec.putArray("workloads");
    Spec.WORKLOADS.stream().filter(s.workloads()::contains).forEach(peerWorkloads::add);
    ArrayNode peerPresets = peerSpec.putArray("presets");

    List<WorkloadResult> rows = new ArrayList<>();
    java.util.Optional<XlaCompilations> compilations = XlaCompilations.start();
    log.accept(
        "XLA: "
            + o.exec().xlaMode().id()
            + compilations
                .map(x -> "; compilations counted as executables written to " + x.directory())
                .orElse(
                    "; compilations not counted (TF_XLA_FLAGS names no"
                        + " --tf_xla_persistent_cache_directory; ./rme sets one)"));
    for (Path preset : s.presets()) {
      int compiledBefore = compilations.map(XlaCompilations::count).orElse(0);
      String name = preset.getFileName().toString().replaceFirst("\\.json$", "");
      ModelConfig c = BenchModels.config(BenchModels.presetJson(preset), preset.toString());
      int[] ids = BenchModels.tokenIds(c, 2 * o.batch(), o.seq(), o.seed());
      log.accept(
          String.format(
              "%s: %s, %.2fM trunk matmul params",
              name, c, Flops.blockMatmulParams(c) * c.numLayers() / 1e6));
      if (s.peer()) {
        peerPresets.add(exportForPeer(work.resolve(name), name, c, ids, o));
      }
      if (s.workloads().contains("score")) {
        rows.add(logged(Workloads.score(name, c, ids, o, peak), log));
      }
      if (s.workloads().contains("bt-step")) {
        rows.add(logged(Workloads.btStep(name, c, ids, o, peak), log));
      }
      if (s.workloads().contains("lora-step")) {
        rows.add(logged(Workloads.loraStep(name, c, ids, o, peak), log));
      }
      if (s.workloads().contains("generate")) {
        rows.add(logged(Workloads.generate(name, c, ids, o, peak), log));
      }
      if (s.workloads().contains(Workloads.GENERATE_SAMPLED)) {
        rows.add(
            logged(Workloads.generate(Workloads.GENERATE_SAMPLED, name, c, ids, o, peak), log));
      }
      if (s.workloads().contains("ensembles")) {
        rows.addAll(Workloads.ensembles(name, c, ids, o, peak, log));
      }
      compilations.ifPresent(
          x ->
              log.accept(
                  String.format(
                      "%s: XLA compilations %d (compiled clusters x input shapes)",
                      name, x.count() - compiledBefore)));
    }

    ObjectNode memory = null;
    if (s.memory()) {
      Path first = s.presets().get(0);
      String base = first.getFileName().toString().replaceFirst("\\.json$", "");
      ObjectNode scaled =
          BenchModels.scaled(BenchModels.presetJson(first), s.memHidden(), s.memLayers());
      String memName = base + "-h" + s.memHidden() + "-l" + s.memLayers();
      Path memPreset = work.resolve(memName + ".json");
      JSON.writeValue(memPreset.toFile(), scaled);
      ModelConfig mc = BenchModels.config(scaled, memName);
      memory = JSON.createObjectNode();
      memory.put("model", memName);
      memory.put("config", mc.toString());
      memory.put("trunk_matmul_params", Flops.blockMatmulParams(mc) * mc.numLayers());
      memory.put(
          "what",
          "peak RSS (VmHWM) of a fresh process that builds the ensemble, loads it and scores one batch of "
              + o.batch()
              + " x "
              + o.seq()
              + " twice (a workload: builds it and runs it twice: two scoring batches, two"
              + " training steps, two generations), minus the peak RSS of a baseline process that loaded the runtime and"
              + " built nothing; MiB");
      double baseline = MemoryProbe.run(memPreset, "baseline", o);
      memory.put("baseline_mb", baseline);
      log.accept(String.format("memory (%s): baseline process %.0f MiB", memName, baseline));
      ObjectNode kinds = memory.putObject("project");
      Path memCausal = null; // generation loads its checkpoint from disk, as the peer does
      for (String kind : memoryProbes(s)) {
        if (kind.startsWith("generate") && memCausal == null) {
          memCausal = work.resolve(memName + "-causal");
          HfCheckpoint.save(
              memCausal,
              mc,
              SavedModels.causalLm(mc),
              BenchModels.causalWeights(mc, o.seed()),
              Map.of());
        }
        double p =
            MemoryProbe.run(memPreset, kind, o, kind.startsWith("generate") ? memCausal : null)
                - baseline;
        kinds.put(kind, p);
        log.accept(String.format("  %-12s +%.0f MiB", kind, p));
      }
      for (int i = 0; i < rows.size(); i++) {
        WorkloadResult r = rows.get(i);
        String kind = probeOf(r.name(), base);
        if (kind != null && kinds.has(kind)) {
          rows.set(
              i,
              r.withPeakRss(
                  kinds.path(kind).asDouble(), r.note() + "; peak_rss_mb measured on " + memName));
        }
      }
      if (s.peer()) {
        ObjectNode mp =
            exportForPeer(
                work.resolve(memName),
                memName,
                mc,
                BenchModels.tokenIds(mc, 2 * o.batch(), o.seq(), o.seed()),
                o);
        ArrayNode probes = mp.putArray("probes");
        memoryProbes(s).forEach(probes::add);
        peerSpec.set("memory", mp);
      }
    }

    Double peerPeak = null;
    JsonNode peerInfo = null;
    if (s.peer()) {
      Path specFile = work.resolve("peer-spec.json");
      JSON.writeValue(specFile.toFile(), peerSpec);
      log.accept("running the peer: scripts/bench-peer.sh " + specFile);
      JsonNode pr = runPeer(s.root(), specFile, work.resolve("peer-out.json"), log);
      peerInfo = pr.path("info");
      peerPeak =
          pr.path("peak_matmul_flops").isNumber() ? pr.get("peak_matmul_flops").asDouble() : null;
      JsonNode pw = pr.path("workloads");
      for (int i = 0; i < rows.size(); i++) {
        WorkloadResult r = rows.get(i);
        JsonNode w = pw.get(r.name());
        if (w != null && w.has("seconds")) {
          double sec = w.get("seconds").asDouble();
          double value =
              r.project()
                  * r.seconds()
                  / sec; // the same work per run (sequences or tokens), peer's time
          rows.set(i, r.withPeer(value, r.flops() / sec / peak, null));
        }
      }
      if (memory != null && pr.has("memory")) {
        JsonNode pm = pr.get("memory");
        memory.put("peer_baseline_mb", pm.path("baseline_mb").asDouble());
        ObjectNode peerKinds = memory.putObject("peer");
        String base = s.presets().get(0).getFileName().toString().replaceFirst("\\.json$", "");
        for (String kind : memoryProbes(s)) {
          if (pm.path("kinds").has(kind)) {
            double v = pm.path("kinds").get(kind).asDouble();
            peerKinds.put(kind, v);
            for (int i = 0; i < rows.size(); i++) {
              WorkloadResult r = rows.get(i);
              if (kind.equals(probeOf(r.name(), base))) {
                rows.set(i, r.withPeer(r.peer(), r.peerMfu(), v));
              }
            }
          }
        }
      }
    }
    return new Report(machine, peak, peerPeak, rows, memory, peerInfo);
  }

  /** The memory probes of a run: the selected single-model workloads, then every ensemble kind. */
  static List<String> memoryProbes(Spec s) {
    List<String> out = new ArrayList<>();
    Workloads.SINGLE_MODEL.stream().filter(s.workloads()::contains).forEach(out::add);
    if (s.workloads().contains("ensembles")) {
      out.addAll(BenchModels.KINDS);
    }
    return out;
  }

  /**
   * The memory probe of a workload row of preset {@code base} ({@code base/score}, {@code
   * base/ensemble-lora}), or null.
   */
  static String probeOf(String row, String base) {
    if (!row.startsWith(base + "/")) {
      return null;
    }
    String rest = row.substring(base.length() + 1);
    if (rest.startsWith("ensemble-")) {
      String kind = rest.substring("ensemble-".length());
      return BenchModels.KINDS.contains(kind) ? kind : null;
    }
    return Workloads.SINGLE_MODEL.contains(rest) ? rest : null;
  }

  private static WorkloadResult logged(WorkloadResult r, Consumer<String> log) {
    log.accept(
        String.format(
            "  %-28s %10.1f %s (%.3f s/run, MFU %.1f%%)",
            r.name(), r.project(), r.unit(), r.seconds(), 100 * r.mfu()));
    return r;
  }

  /** Exports heads-1 and heads-K checkpoints and the token ids the peer reads. */
  private static ObjectNode exportForPeer(
      Path dir, String name, ModelConfig c, int[] ids, BenchOptions o) throws IOException {
    Files.createDirectories(dir);
    Path h1 = dir.resolve("heads1");
    Path hk = dir.resolve("heads" + o.k());
    SavedModels.exportHf(h1, c, BenchModels.weights(c, 1, o.seed()), 1);
    SavedModels.exportHf(hk, c, BenchModels.weights(c, o.k(), o.seed()), o.k());
    ObjectNode idsJson = JSON.createObjectNode();
    idsJson.put("rows", 2 * o.batch());
    idsJson.put("seq", o.seq());
    ArrayNode a = idsJson.putArray("ids");
    for (int i = 0; i < 2 * o.batch(); i++) {
      ArrayNode row = a.addArray();
      for (int j = 0; j < o.seq(); j++) {
        row.add(ids[i * o.seq() + j]);
      }
    }
    Path idsFile = dir.resolve("ids.json");
    new ObjectMapper().writeValue(idsFile.toFile(), idsJson);
    ObjectNode p = JSON.createObjectNode();
    p.put("name", name);
    p.put("heads1", h1.toString());
    p.put("headsk", hk.toString());
    Path causal = dir.resolve("causal");
    HfCheckpoint.save(
        causal, c, SavedModels.causalLm(c), BenchModels.causalWeights(c, o.seed()), Map.of());
    p.put("causal", causal.toString());
    p.put("prompt_tokens", BenchModels.PROMPT_TOKENS);
    p.put("ids", idsFile.toString());
    p.put("num_layers", c.numLayers());
    ArrayNode t = p.putArray("lora_targets");
    BenchModels.lora(c, 0).targetModules().forEach(t::add);
    return p;
  }

  private static JsonNode runPeer(Path root, Path spec, Path out, Consumer<String> log)
      throws IOException, InterruptedException {
    Path script = root.resolve("scripts/bench-peer.sh");
    if (!Files.isRegularFile(script)) {
      throw new IllegalArgumentException(
          "peer script not found: " + script + " (run from the project root or pass --root)");
    }
    ProcessBuilder pb =
        new ProcessBuilder("bash", script.toString(), spec.toString(), out.toString())
            .redirectErrorStream(true);
    Process p = pb.start();
    try (BufferedReader r =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = r.readLine()) != null) {
        log.accept("  [peer] " + line);
      }
    }
    int rc = p.waitFor();
    if (rc != 0 || !Files.isRegularFile(out)) {
      throw new IllegalStateException(
          "the peer failed (exit " + rc + "); see the [peer] lines above");
    }
    return JSON.readTree(out.toFile());
  }

  /** The {@code --json} document. */
  public static ObjectNode toJson(Report r, BenchOptions o) {
    ObjectNode root = JSON.createObjectNode();
    root.set("machine", JSON.valueToTree(r.machine()));
    ObjectNode settings = root.putObject("settings");
    settings.put("batch", o.batch());
    settings.put("seq", o.seq());
    settings.put("k", o.k());
    settings.put("warmup", o.warmup());
    settings.put("reps", o.reps());
    settings.put("intra_op_threads", o.exec().intraOpThreads());
    settings.put("inter_op_threads", o.exec().interOpThreads());
    settings.put("xla", o.exec().xlaMode().id());
    settings.put("seed", o.seed());
    settings.put(
        "flops",
        "2*matmul params*tokens + attention 4*B*T^2*(heads*head_dim) per block, counted in full "
            + "(not halved for the causal mask); training 3x forward; LoRA phase 2 2x trunk forward + 3x adapters");
    root.put("peak_matmul_flops", r.peakMatmulFlops());
    if (r.peerPeakMatmulFlops() != null) {
      root.put("peer_peak_matmul_flops", r.peerPeakMatmulFlops());
    }
    root.put(
        "tf_allocator_bytes",
        "not exposed by TensorFlow Java 1.1.0 (no allocator stats in the public API); peak RSS is reported instead");
    ArrayNode ws = root.putArray("workloads");
    for (WorkloadResult w : r.workloads()) {
      ObjectNode n = ws.addObject();
      n.put("name", w.name());
      n.put("unit", w.unit());
      n.put("project", w.project());
      putOrNull(n, "peer", w.peer());
      putOrNull(n, "ratio", w.ratio());
      n.put("mfu", w.mfu());
      putOrNull(n, "peer_mfu", w.peerMfu());
      putOrNull(n, "peak_rss_mb", w.peakRssMb());
      putOrNull(n, "peer_peak_rss_mb", w.peerPeakRssMb());
      n.put("seconds_median", w.seconds());
      n.put("flops_per_run", w.flops());
      n.put("note", w.note());
    }
    if (r.memory() != null) {
      root.set("memory", r.memory());
    }
    if (r.peerInfo() != null) {
      root.set("peer_info", r.peerInfo());
    }
    return root;
  }

  private static void putOrNull(ObjectNode n, String key, Double v) {
    if (v == null) {
      n.putNull(key);
    } else {
      n.put(key, v);
    }
  }

  public static void writeJson(Report r, BenchOptions o, Path file) throws IOException {
    JSON.writeValue(file.toFile(), toJson(r, o));
  }

  /** The human-readable tables. */
  public static void print(Report r, PrintStream out) {
    out.printf(
        "%nPeak float32 matmul: TF %.1f GFLOP/s%s%n",
        r.peakMatmulFlops() / 1e9,
        r.peerPeakMatmulFlops() == null
            ? ""
            : String.format(", torch %.1f GFLOP/s", r.peerPeakMatmulFlops() / 1e9));
    out.printf(
        "%n%-34s %-12s %10s %10s %7s %7s %7s %8s %8s%n",
        "workload", "unit", "project", "peer", "ratio", "MFU", "peerMFU", "rss MiB", "peer rss");
    for (WorkloadResult w : r.workloads()) {
      out.printf(
          "%-34s %-12s %10.1f %10s %7s %6.1f%% %7s %8s %8s%n",
          w.name(),
          w.unit(),
          w.project(),
          w.peer() == null ? "-" : String.format("%.1f", w.peer()),
          w.ratio() == null ? "-" : String.format("%.2f", w.ratio()),
          100 * w.mfu(),
          w.peerMfu() == null ? "-" : String.format("%.1f%%", 100 * w.peerMfu()),
          w.peakRssMb() == null ? "-" : String.format("%.0f", w.peakRssMb()),
          w.peerPeakRssMb() == null ? "-" : String.format("%.0f", w.peerPeakRssMb()));
    }
    // ensemble kinds relative to single, per preset
    Map<String, List<WorkloadResult>> byPreset = new LinkedHashMap<>();
    for (WorkloadResult w : r.workloads()) {
      int i = w.name().indexOf("/ensemble-");
      if (i > 0) {
        byPreset.computeIfAbsent(w.name().substring(0, i), x -> new ArrayList<>()).add(w);
      }
    }
    for (Map.Entry<String, List<WorkloadResult>> e : byPreset.entrySet()) {
      WorkloadResult single =
          e.getValue().stream().filter(w -> w.name().endsWith("-single")).findFirst().orElse(null);
      if (single == null) {
        continue;
      }
      out.printf(
          "%n%s: ensemble kinds, throughput relative to single in the same run%n", e.getKey());
      out.printf(
          "%-14s %10s %9s %10s %9s %11s %9s %11s %9s%n",
          "kind",
          "project",
          "vs single",
          "peer",
          "vs single",
          "rss MiB",
          "vs single",
          "peer rss",
          "vs single");
      for (WorkloadResult w : e.getValue()) {
        String kind = w.name().substring(w.name().indexOf("/ensemble-") + "/ensemble-".length());
        out.printf(
            "%-14s %10.1f %9.2f %10s %9s %11s %9s %11s %9s%n",
            kind,
            w.project(),
            w.project() / single.project(),
            w.peer() == null ? "-" : String.format("%.1f", w.peer()),
            w.peer() == null || single.peer() == null
                ? "-"
                : String.format("%.2f", w.peer() / single.peer()),
            w.peakRssMb() == null ? "-" : String.format("%.0f", w.peakRssMb()),
            w.peakRssMb() == null || single.peakRssMb() == null
                ? "-"
                : String.format("%.2f", w.peakRssMb() / single.peakRssMb()),
            w.peerPeakRssMb() == null ? "-" : String.format("%.0f", w.peerPeakRssMb()),
            w.peerPeakRssMb() == null || single.peerPeakRssMb() == null
                ? "-"
                : String.format("%.2f", w.peerPeakRssMb() / single.peerPeakRssMb()));
      }
    }
    if (r.memory() != null) {
      out.printf(
          "%nmemory model: %s (%s)%n",
          r.memory().path("model").asText(), r.memory().path("what").asText());
    }
  }

  static Comparator<WorkloadResult> byName() {
    return Comparator.comparing(WorkloadResult::name);
  }
}
