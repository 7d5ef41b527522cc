package dev.rewardensemble.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.model.RunProfile;
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
   * @param kinds the ensemble kinds of workload {@code ensembles} ({@link BenchModels#KINDS} and
   *     {@link Workloads#FLOOR}), in the order they are listed
   * @param skipped workloads left out, as {@code <preset name>/<workload>}, with the reason (e.g. a
   *     memory plan larger than the budget): printed and written to the JSON, never silent
   * @param profile trace the project's runs of each workload ({@link RunProfile}) and print where
   *     their op time goes, by op type ({@code --profile}; the traced timings are slower)
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
      Set<String> workloads,
      List<String> kinds,
      Map<String, String> skipped,
      boolean profile) {
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
      kinds = List.copyOf(kinds);
      for (String k : kinds) {
        if (!Workloads.ALL_KINDS.contains(k)) {
          throw new IllegalArgumentException(
              "unknown ensemble kind '" + k + "' (expected some of " + Workloads.ALL_KINDS + ")");
        }
      }
      if (kinds.isEmpty()) {
        throw new IllegalArgumentException(
            "no ensemble kind selected (expected some of " + Workloads.ALL_KINDS + ")");
      }
      skipped = Map.copyOf(skipped);
    }

    /** A shorter form: every ensemble kind, nothing skipped. */
    public Spec(
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
      this(
          presets,
          options,
          peer,
          root,
          memory,
          memHidden,
          memLayers,
          matmulN,
          workDir,
          workloads,
          Workloads.ALL_KINDS,
          Map.of(),
          false);
    }

    /** Whether {@code workload} runs on the preset named {@code preset}. */
    public boolean runs(String preset, String workload) {
      return workloads.contains(workload) && !skipped.containsKey(preset + "/" + workload);
    }
  }

  /** Everything measured. */
  public record Report(
      Map<String, Object> machine,
      double peakMatmulFlops,
      Double peerPeakMatmulFlops,
      List<WorkloadResult> workloads,
      ObjectNode memory,
      JsonNode peerInfo,
      Map<String, String> skipped,
      List<String> loadAverages) {}

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
    ArrayNode kindsOfPeer = peerSpec.putArray("kinds");
    s.kinds().stream().filter(BenchModels.KINDS::contains).forEach(kindsOfPeer::add);
    peerSpec.put("weights", BenchModels.stored(o.exec()).id());
    ArrayNode peerPresets = peerSpec.putArray("presets");
    List<String> loads = new ArrayList<>();
    ObjectNode peerAll = JSON.createObjectNode();
    int turn = 0;
    loads.add("project start: " + loadAverage());
    s.skipped().forEach((w, why) -> log.accept("skipped " + w + ": " + why));

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
        List<String> runs = Spec.WORKLOADS.stream().filter(w -> s.runs(name, w)).toList();
        ObjectNode pp =
            exportForPeer(
                work.resolve(name),
                name,
                c,
                ids,
                o,
                !runs.stream().allMatch(w -> w.startsWith("generate")),
                runs.contains("ensembles") && s.kinds().contains("linear"),
                runs.stream().anyMatch(w -> w.startsWith("generate")));
        ArrayNode ra = pp.putArray("workloads");
        runs.forEach(ra::add);
        peerPresets.add(pp);
      }
      // Each workload is measured on both sides back to back, the side that goes first
      // alternating, so that a busy spell of the shared machine does not fall on one side's whole
      // run (the peer is a fresh process per workload; its load time is not measured).
      for (String w : Spec.WORKLOADS) {
        if (!s.runs(name, w)) {
          continue;
        }
        boolean peerFirst = s.peer() && turn++ % 2 == 1;
        if (peerFirst) {
          peerAll.setAll(
              peerWorkload(s, peerSpec, peerPresets.get(peerPresets.size() - 1), w, log));
        }
        if (s.profile()) {
          RunProfile.start();
        }
        rows.addAll(measure(name, w, c, ids, o, peak, s.kinds(), log));
        if (s.profile()) {
          RunProfile.stop();
          logProfile(name + "/" + w, log);
        }
        if (s.peer() && !peerFirst) {
          peerAll.setAll(
              peerWorkload(s, peerSpec, peerPresets.get(peerPresets.size() - 1), w, log));
        }
      }
      compilations.ifPresent(
          x ->
              log.accept(
                  String.format(
                      "%s: XLA compilations %d (compiled clusters x input shapes)",
                      name, x.count() - compiledBefore)));
    }
    loads.add("project end: " + loadAverage());
    // the peak again after the workloads, the best of both (a busy spell of the shared machine at
    // the start must not inflate every MFU)
    double peakEnd = 0;
    for (int i = 0; i < 3; i++) {
      peakEnd = Math.max(peakEnd, Workloads.peakMatmulFlops(o.exec(), s.matmulN(), 5));
    }
    log.accept(
        String.format(
            "peak float32 matmul after the workloads: %.1f GFLOP/s (before: %.1f)",
            peakEnd / 1e9, peak / 1e9));
    if (peakEnd > peak) {
      double best = peakEnd;
      rows.replaceAll(r -> r.withMfu(r.flops() / r.seconds() / best));
      peak = best;
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
      // The workloads load their weights from the checkpoints written for the peer (in the storage
      // dtype: bf16 files for --weights bfloat16), the same files the peer's probes load: weights
      // generated in the measured process left the generator's garbage in its peak.
      List<String> probeKinds = memoryProbes(s);
      boolean generates = probeKinds.stream().anyMatch(BenchRunner::generation);
      boolean rewards = probeKinds.stream().anyMatch(BenchRunner::rewardWorkload);
      ObjectNode mp =
          exportForPeer(
              work.resolve(memName),
              memName,
              mc,
              BenchModels.tokenIds(mc, 2 * o.batch(), o.seq(), o.seed()),
              o,
              s.peer() || rewards,
              s.peer(),
              s.peer() || generates);
      Path memHeads1 = Path.of(mp.get("heads1").asText());
      Path memCausal = Path.of(mp.get("causal").asText());
      for (String kind : probeKinds) {
        Path checkpoint = generation(kind) ? memCausal : rewardWorkload(kind) ? memHeads1 : null;
        double p = MemoryProbe.run(memPreset, kind, o, checkpoint) - baseline;
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
        ArrayNode probes = mp.putArray("probes");
        probeKinds.forEach(probes::add);
        peerSpec.set("memory", mp);
      }
    }

    Double peerPeak = null;
    JsonNode peerInfo = null;
    if (s.peer()) {
      // the peer's peak (and memory probes): its workloads ran beside the project's above
      Path specFile = work.resolve("peer-spec.json");
      ObjectNode last = peerSpec.deepCopy();
      last.putArray("presets");
      JSON.writeValue(specFile.toFile(), last);
      log.accept("running the peer: scripts/bench-peer.sh " + specFile);
      loads.add("peer peak/memory start: " + loadAverage());
      ObjectNode pr = (ObjectNode) runPeer(s.root(), specFile, work.resolve("peer-out.json"), log);
      loads.add("peer peak/memory end: " + loadAverage());
      pr.set("workloads", peerAll);
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
    return new Report(machine, peak, peerPeak, rows, memory, peerInfo, s.skipped(), loads);
  }

  /** The project's rows of workload {@code w} on a preset. */
  private static List<WorkloadResult> measure(
      String name,
      String w,
      ModelConfig c,
      int[] ids,
      BenchOptions o,
      double peak,
      List<String> kinds,
      Consumer<String> log)
      throws Exception {
    return switch (w) {
      case "score" -> List.of(logged(Workloads.score(name, c, ids, o, peak), log));
      case "bt-step" -> List.of(logged(Workloads.btStep(name, c, ids, o, peak), log));
      case "lora-step" -> List.of(logged(Workloads.loraStep(name, c, ids, o, peak), log));
      case "generate" -> List.of(logged(Workloads.generate(name, c, ids, o, peak), log));
      case Workloads.GENERATE_SAMPLED ->
          List.of(
              logged(Workloads.generate(Workloads.GENERATE_SAMPLED, name, c, ids, o, peak), log));
      case "ensembles" -> Workloads.ensembles(name, c, ids, o, peak, kinds, log);
      default -> throw new IllegalArgumentException(w);
    };
  }

  /** Runs the peer on workload {@code w} of one preset alone; its {@code workloads} object. */
  private static ObjectNode peerWorkload(
      Spec s, ObjectNode peerSpec, JsonNode preset, String w, Consumer<String> log)
      throws IOException, InterruptedException {
    ObjectNode one = peerSpec.deepCopy();
    one.put("peak", false);
    ObjectNode p = ((ObjectNode) preset).deepCopy();
    p.putArray("workloads").add(w);
    one.putArray("presets").add(p);
    String tag = p.path("name").asText() + "-" + w;
    Path spec = s.workDir().resolve("peer-spec-" + tag + ".json");
    JSON.writeValue(spec.toFile(), one);
    log.accept(
        "peer: " + p.path("name").asText() + "/" + w + " (load average " + loadAverage() + ")");
    JsonNode out = runPeer(s.root(), spec, s.workDir().resolve("peer-out-" + tag + ".json"), log);
    return out.path("workloads").isObject()
        ? (ObjectNode) out.get("workloads")
        : JSON.createObjectNode();
  }

  /** {@code /proc/loadavg}'s first three fields (1, 5, 15 minutes), or "unknown". */
  static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException | RuntimeException e) {
      return "unknown";
    }
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

  /** A generation workload, whose memory probe loads the causal LM. */
  private static boolean generation(String kind) {
    return kind.startsWith("generate");
  }

  /** A scoring or training workload, whose memory probe loads the one-head reward model. */
  private static boolean rewardWorkload(String kind) {
    return Workloads.SINGLE_MODEL.contains(kind) && !generation(kind);
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

  /** Op types printed per profiled workload. */
  static final int PROFILE_LINES = 15;

  /** The op types that took most of a profiled workload's op time. */
  private static void logProfile(String workload, Consumer<String> log) {
    log.accept(
        String.format(
            "  profile %s (%d traced runs; op time by op type, summed over threads):",
            workload, RunProfile.runs()));
    for (RunProfile.OpTime t : RunProfile.top(PROFILE_LINES)) {
      log.accept(
          String.format(
              "    %-28s %5.1f%% %10.1f ms %8d nodes",
              t.op(), 100 * t.share(), t.micros() / 1e3, t.nodes()));
    }
  }

  private static WorkloadResult logged(WorkloadResult r, Consumer<String> log) {
    log.accept(
        String.format(
            "  %-28s %10.1f %s (%.3f s/run, MFU %.1f%%)",
            r.name(), r.project(), r.unit(), r.seconds(), 100 * r.mfu()));
    return r;
  }

  /**
   * Exports the heads-1, heads-K and causal-LM checkpoints the peer's workloads need (each only
   * when asked: at 1B parameters each is 5 GB of float32), streamed tensor by tensor from the
   * seeded generator, in the bench's storage dtype ({@code BF16} tensors for {@code --weights
   * bfloat16}), and the token ids the peer reads.
   */
  private static ObjectNode exportForPeer(
      Path dir,
      String name,
      ModelConfig c,
      int[] ids,
      BenchOptions o,
      boolean heads1,
      boolean headsK,
      boolean causalLm)
      throws IOException {
    Files.createDirectories(dir);
    Path h1 = dir.resolve("heads1");
    Path hk = dir.resolve("heads" + o.k());
    Precision stored = BenchModels.stored(o.exec());
    String seqCls = SavedModels.sequenceClassification(c);
    if (heads1) {
      HfCheckpoint.save(
          h1, c, seqCls, BenchModels.weights(c, 1, o.seed(), stored), Map.of(), stored);
    }
    if (headsK) {
      HfCheckpoint.save(
          hk, c, seqCls, BenchModels.weights(c, o.k(), o.seed(), stored), Map.of(), stored);
    }
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
    if (causalLm) {
      HfCheckpoint.save(
          causal,
          c,
          SavedModels.causalLm(c),
          BenchModels.causalWeights(c, o.seed(), stored),
          Map.of(),
          stored);
    }
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
    settings.put("compute", o.exec().compute().id());
    settings.put("weights", BenchModels.stored(o.exec()).id());
    settings.put("seed", o.seed());
    settings.put(
        "flops",
        "2*matmul params*tokens + attention 4*B*T^2*(heads*head_dim) per block, counted in full "
            + "(not halved for the causal mask); training 3x forward; LoRA phase 2 2x trunk forward + 3x adapters");
    root.put("peak_matmul_flops", r.peakMatmulFlops());
    if (r.peerPeakMatmulFlops() != null) {
      root.put("peer_peak_matmul_flops", r.peerPeakMatmulFlops());
    }
    ArrayNode loads = root.putArray("load_average");
    r.loadAverages().forEach(loads::add);
    ObjectNode skipped = root.putObject("skipped");
    r.skipped().forEach(skipped::put);
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
      putOrNull(
          n,
          "peer_mfu_own_peak",
          w.peerMfu() == null || r.peerPeakMatmulFlops() == null
              ? null
              : w.peerMfu() * r.peakMatmulFlops() / r.peerPeakMatmulFlops());
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
        "%n%-34s %-12s %10s %10s %7s %7s %7s %7s %8s %8s%n",
        "workload",
        "unit",
        "project",
        "peer",
        "ratio",
        "MFU",
        "peerMFU",
        "peerOwn",
        "rss MiB",
        "peer rss");
    for (WorkloadResult w : r.workloads()) {
      out.printf(
          "%-34s %-12s %10.1f %10s %7s %6.1f%% %7s %7s %8s %8s%n",
          w.name(),
          w.unit(),
          w.project(),
          w.peer() == null ? "-" : String.format("%.1f", w.peer()),
          w.ratio() == null ? "-" : String.format("%.2f", w.ratio()),
          100 * w.mfu(),
          w.peerMfu() == null ? "-" : String.format("%.1f%%", 100 * w.peerMfu()),
          w.peerMfu() == null || r.peerPeakMatmulFlops() == null
              ? "-"
              : String.format(
                  "%.1f%%", 100 * w.peerMfu() * r.peakMatmulFlops() / r.peerPeakMatmulFlops()),
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
    if (!r.skipped().isEmpty()) {
      out.printf("%nskipped (not measured):%n");
      r.skipped().forEach((w, why) -> out.printf("  %s: %s%n", w, why));
    }
    if (!r.loadAverages().isEmpty()) {
      out.printf("%nload average (1/5/15 min): %s%n", String.join("; ", r.loadAverages()));
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
