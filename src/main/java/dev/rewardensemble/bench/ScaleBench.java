package dev.rewardensemble.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.ensemble.LoraInit;
import dev.rewardensemble.io.AtomicDirs;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.PeftAdapters;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * {@code rme bench --workloads scale}: the paper's claim measured at the paper's scale (issue #15
 * item 5). A random bf16 checkpoint of a preset ({@code llama-7b}) written as transformers saves it
 * ({@link ScaleCheckpoint}), then each workload in a fresh JVM ({@link ScaleProbe}) for its own
 * peak RSS: (a) load + score a batch with the single model, (b) the same with a K-member LoRA
 * ensemble (r 8, every projection; PEFT adapter directories), (c) two LoRA phase-2 training steps
 * of the K-member ensemble on one pair; (d) the rewards of a truncation of the same checkpoint (its
 * first blocks and the head) with bf16 and float32 storage, against PyTorch in float32. The same
 * work in PyTorch + transformers + peft in bfloat16 ({@code scripts/bench-scale-peer.sh}), one
 * fresh process per workload, and the targets.
 */
public final class ScaleBench {
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private static final double GIB = 1024.0 * 1024 * 1024;

  /** The targets. */
  public static final double LORA_SCORE_RSS_RATIO = 1.15;

  public static final double TRAIN_RSS_GIB = 22;
  public static final double LOAD_RATIO = 1.1;
  public static final double LOAD_SLACK_GIB = 1;
  public static final double TIME_RATIO = 1.2;

  private ScaleBench() {}

  /**
   * @param preset a Llama preset ({@code tf-graphs/llama-7b.json})
   * @param scaleDir where the checkpoints go and are reused from (null: a directory under {@code
   *     workDir}, deleted at the end)
   * @param rows sequences of a scoring batch
   * @param seq tokens per sequence (and per response of the training pair)
   * @param k LoRA members
   * @param threads intra-op threads on both sides
   * @param maxShardBytes {@code save_pretrained}'s {@code max_shard_size} in bytes
   * @param checkLayers blocks of the truncated checkpoint of workload (d)
   * @param peer run the PyTorch peer ({@code scripts/bench-scale-peer.sh} under {@code root})
   * @param recompute activation recomputation in the training workload (issue #15 item 4): {@code
   *     none}, {@code all}, a number of lowest blocks or {@code auto} (each probe resolves it from
   *     the memory plan and the memory available to it)
   * @param compute precision of the project's weight products ({@code --compute}); float32 widens
   *     the bf16 weights (exact), bfloat16 multiplies them as stored, as the peer does
   * @param childHeap {@code -Xmx} of the child JVMs (the weights live outside the heap)
   */
  public record Spec(
      Path preset,
      Path scaleDir,
      int rows,
      int seq,
      int k,
      int threads,
      long seed,
      long maxShardBytes,
      int checkLayers,
      boolean peer,
      Path root,
      Path workDir,
      String recompute,
      String childHeap,
      dev.rewardensemble.config.Precision compute) {
    public Spec {
      if (rows < 2 || seq < 1 || k < 1 || threads < 1 || checkLayers < 1) {
        throw new IllegalArgumentException(
            "scale: rows must be >= 2 (a training pair), seq, k, threads and check layers >= 1");
      }
    }
  }

  /** One workload's measurements on one side (null fields: not run or failed). */
  public record Side(
      Double peakRssBytes,
      Double loadPeakRssBytes,
      Double loadSeconds,
      Double stepSeconds,
      String status,
      JsonNode raw) {
    static Side failed(String status) {
      return new Side(null, null, null, null, status, null);
    }

    boolean ok() {
      return "ok".equals(status);
    }
  }

  /** A row of the table. */
  public record Row(String workload, String what, long checkpointBytes, Side project, Side peer) {}

  /** A target of the issue, evaluated. */
  public record Target(String name, String measured, Boolean pass) {}

  /** Everything measured. */
  public record Report(
      Map<String, Object> machine,
      String preset,
      long parameters,
      long checkpointBytes,
      int shards,
      List<Row> rows,
      ObjectNode check,
      List<Target> targets,
      JsonNode peerInfo) {}

  /** The workloads' token ids: {@link BenchModels#tokenIds} (ids in {@code [3, vocab)}). */
  public static int[] tokenIds(ModelConfig c, int rows, int seq, long seed) {
    return BenchModels.tokenIds(c, rows, seq, seed);
  }

  public static Report run(Spec s, Consumer<String> log) throws Exception {
    ObjectNode presetJson = BenchModels.presetJson(s.preset());
    String name = s.preset().getFileName().toString().replaceFirst("\\.json$", "");
    Files.createDirectories(s.workDir());
    boolean own = s.scaleDir() == null;
    Path scale = own ? s.workDir().resolve("scale-checkpoints") : s.scaleDir();
    Files.createDirectories(scale);
    try {
      return measure(s, presetJson, name, scale, log);
    } finally {
      if (own) {
        AtomicDirs.deleteRecursively(scale);
      }
    }
  }

  private static Report measure(
      Spec s, ObjectNode presetJson, String name, Path scale, Consumer<String> log)
      throws Exception {
    ScaleCheckpoint.Plan plan = ScaleCheckpoint.plan(presetJson, s.maxShardBytes());
    String tag = name + "-seed" + s.seed() + "-shard" + s.maxShardBytes();
    Path ckpt = scale.resolve(tag);
    log.accept(
        String.format(
            Locale.ROOT,
            "scale: %s, %,d parameters, %.2f GiB of bf16 in %d file(s) -> %s",
            name,
            plan.totalParameters(),
            plan.totalBytes() / GIB,
            plan.shards().size(),
            ckpt));
    long t0 = System.nanoTime();
    boolean wrote = ScaleCheckpoint.ensure(ckpt, plan, s.seed());
    log.accept(
        wrote
            ? String.format(Locale.ROOT, "  written in %.1f s", (System.nanoTime() - t0) / 1e9)
            : "  reusing the complete checkpoint there");
    ObjectNode cutPreset = ScaleCheckpoint.truncated(presetJson, s.checkLayers());
    ScaleCheckpoint.Plan cutPlan = ScaleCheckpoint.plan(cutPreset, s.maxShardBytes());
    Path cut = scale.resolve(tag + "-layers" + s.checkLayers());
    ScaleCheckpoint.ensure(cut, cutPlan, s.seed());
    ModelConfig c = ModelConfigs.parse(plan.config(), ckpt.resolve("config.json").toString());
    ModelConfig cc = ModelConfigs.parse(cutPlan.config(), cut.resolve("config.json").toString());

    Path run = Files.createDirectories(s.workDir().resolve("scale-run"));
    List<Path> adapters = writeAdapters(run.resolve("adapters"), c, s.k(), s.seed(), "full");
    List<Path> cutAdapters = writeAdapters(run.resolve("adapters-cut"), cc, s.k(), s.seed(), "cut");
    log.accept("  " + s.k() + " PEFT adapters (r 8, every projection) in " + run);
    long ckptBytes = directoryBytes(ckpt);

    // The project, one fresh JVM per workload.
    Map<String, Side> project = new LinkedHashMap<>();
    project.put("score", probe(s, "score", ckpt, List.of(), "auto", log));
    project.put("lora-score", probe(s, "lora-score", ckpt, adapters, "auto", log));
    project.put("lora-train", probe(s, "lora-train", ckpt, List.of(), "auto", log));
    Side check = probe(s, ScaleProbe.CHECK, cut, cutAdapters, "auto", log);

    // The peer, one fresh Python process per workload.
    Map<String, Side> peer = new LinkedHashMap<>();
    Map<String, Side> peerCheck = new LinkedHashMap<>();
    JsonNode peerInfo = null;
    if (s.peer()) {
      Path spec = run.resolve("peer-spec.json");
      ObjectNode ps = JSON.createObjectNode();
      ps.put("checkpoint", ckpt.toString());
      ps.put("checkpoint_cut", cut.toString());
      ArrayNode a = ps.putArray("adapters");
      adapters.forEach(p -> a.add(p.toString()));
      ArrayNode ac = ps.putArray("adapters_cut");
      cutAdapters.forEach(p -> ac.add(p.toString()));
      ps.put("threads", s.threads());
      ps.put("steps", ScaleProbe.STEPS);
      ps.put("k", s.k());
      ArrayNode t = ps.putArray("lora_targets");
      BenchModels.lora(c, 0).targetModules().forEach(t::add);
      ps.set("ids", ids(c, s));
      JSON.writeValue(spec.toFile(), ps);
      for (String w : ScaleProbe.WORKLOADS) {
        peer.put(w, peerRun(s, spec, w, "bfloat16", run, log));
      }
      peerCheck.put("f32", peerRun(s, spec, "check", "float32", run, log));
      peerCheck.put("bf16", peerRun(s, spec, "check", "bfloat16", run, log));
      peerCheck.put("lora-f32", peerRun(s, spec, "lora-check", "float32", run, log));
      Side info = peer.values().stream().filter(Side::ok).findFirst().orElse(null);
      if (info != null) {
        peerInfo = info.raw().path("info");
      }
    }

    List<Row> rows = new ArrayList<>();
    rows.add(
        new Row(
            "score",
            "load + score " + s.rows() + " x " + s.seq() + ", single model",
            ckptBytes,
            project.get("score"),
            peer.get("score")));
    rows.add(
        new Row(
            "lora-score",
            "load + score " + s.rows() + " x " + s.seq() + ", LoRA K=" + s.k() + " (r 8)",
            ckptBytes,
            project.get("lora-score"),
            peer.get("lora-score")));
    rows.add(
        new Row(
            "lora-train",
            "LoRA K=" + s.k() + " phase-2 step, 1 pair x " + s.seq(),
            ckptBytes,
            project.get("lora-train"),
            peer.get("lora-train")));

    ObjectNode checkJson = checkReport(s, check, peerCheck);
    List<Target> targets = targets(s, project, peer, ckptBytes);
    return new Report(
        Machine.describe(),
        name,
        plan.totalParameters(),
        ckptBytes,
        plan.shards().size(),
        rows,
        checkJson,
        targets,
        peerInfo);
  }

  /**
   * K PEFT adapter directories over {@code c}: PEFT's A (kaiming-uniform) and, so that members
   * differ, a small random B (N(0, 0.01); train-rm starts from B = 0, which costs the same), heads
   * N(0, 0.02). Values depend on the seed, member and module key only, so the truncated model's
   * adapters equal the full one's in the blocks they share.
   */
  static List<Path> writeAdapters(Path dir, ModelConfig c, int k, long seed, String base)
      throws IOException {
    if (Files.exists(dir)) {
      AtomicDirs.deleteRecursively(dir);
    }
    LoraConfig lora = BenchModels.lora(c, 0);
    Map<String, FloatTensor> w = LoraInit.values(c, lora, k, seed, ScaleCheckpoint.STD);
    w.replaceAll(
        (key, v) -> {
          if (!key.endsWith(".lora_B")) {
            return v;
          }
          SplittableRandom rnd = new SplittableRandom(seed * 7919L + key.hashCode());
          float[] d = new float[v.data().length];
          for (int i = 0; i < d.length; i++) {
            d[i] = (float) (rnd.nextGaussian() * 0.01);
          }
          return new FloatTensor(v.shape(), d);
        });
    PeftAdapters.Stacked stacked = new PeftAdapters.Stacked(c, lora, k, w);
    List<Path> out = new ArrayList<>();
    for (int m = 0; m < k; m++) {
      Path d = dir.resolve("member-" + m);
      PeftAdapters.export(d, stacked, m, base);
      out.add(d);
    }
    return out;
  }

  private static ObjectNode ids(ModelConfig c, Spec s) {
    int[] ids = tokenIds(c, s.rows(), s.seq(), s.seed());
    ObjectNode n = JSON.createObjectNode();
    n.put("rows", s.rows());
    n.put("seq", s.seq());
    ArrayNode a = n.putArray("ids");
    for (int i = 0; i < s.rows(); i++) {
      ArrayNode row = a.addArray();
      for (int j = 0; j < s.seq(); j++) {
        row.add(ids[i * s.seq() + j]);
      }
    }
    return n;
  }

  static long directoryBytes(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      long sum = 0;
      for (Path f : (Iterable<Path>) files::iterator) {
        sum += Files.size(f);
      }
      return sum;
    }
  }

  /** Runs one workload in a fresh JVM with this process's class path. */
  private static Side probe(
      Spec s, String workload, Path ckpt, List<Path> adapters, String weights, Consumer<String> log)
      throws IOException, InterruptedException {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> cmd =
        List.of(
            java,
            "-Xmx" + s.childHeap(),
            // Weights live outside the heap: JavaCPP's default cap on the process's RSS (4 x -Xmx)
            // would stop a 7B model; the probe's memory pre-check guards physical memory instead.
            "-Dorg.bytedeco.javacpp.maxPhysicalBytes=0",
            "-cp",
            System.getProperty("java.class.path"),
            ScaleProbe.class.getName(),
            workload,
            ckpt.toString(),
            adapters.isEmpty()
                ? "-"
                : String.join(",", adapters.stream().map(Path::toString).toList()),
            Integer.toString(s.rows()),
            Integer.toString(s.seq()),
            Integer.toString(s.k()),
            Integer.toString(s.threads()),
            weights,
            Long.toString(s.seed()),
            s.recompute(),
            s.compute().id());
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().put("TF_CPP_MIN_LOG_LEVEL", "2");
    return collect(pb, "java " + workload + " (" + weights + ", " + ckpt.getFileName() + ")", log);
  }

  /** Runs the peer's workload in a fresh Python process. */
  private static Side peerRun(
      Spec s, Path spec, String workload, String dtype, Path run, Consumer<String> log)
      throws IOException, InterruptedException {
    Path script = s.root().resolve("scripts/bench-scale-peer.sh");
    if (!Files.isRegularFile(script)) {
      throw new IllegalArgumentException(
          "peer script not found: " + script + " (run from the project root or pass --root)");
    }
    ProcessBuilder pb =
        new ProcessBuilder("bash", script.toString(), spec.toString(), workload, dtype)
            .redirectErrorStream(true);
    return collect(pb, "peer " + workload + " (" + dtype + ")", log);
  }

  /** Reads a child's {@code scale_result=} line; a child that dies is reported, not thrown. */
  private static Side collect(ProcessBuilder pb, String label, Consumer<String> log)
      throws IOException, InterruptedException {
    long t0 = System.nanoTime();
    Process p = pb.start();
    JsonNode result = null;
    List<String> tail = new ArrayList<>();
    try (BufferedReader r =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = r.readLine()) != null) {
        if (line.startsWith("scale_result=")) {
          result = JSON.readTree(line.substring("scale_result=".length()));
        } else {
          tail.add(line);
          if (tail.size() > 20) {
            tail.remove(0);
          }
        }
      }
    }
    int rc = p.waitFor();
    double wall = (System.nanoTime() - t0) / 1e9;
    if (rc != 0 || result == null) {
      String all = String.join("\n", tail);
      String status =
          rc == 137 || rc == 9 || all.contains("MemoryError") || all.contains("OutOfMemory")
              ? "out of memory (exit " + rc + ")"
              : "failed (exit " + rc + ")";
      log.accept(String.format(Locale.ROOT, "  %-40s %s after %.0f s", label, status, wall));
      tail.forEach(l -> log.accept("    | " + l));
      return Side.failed(status);
    }
    if (!result.path("status").asText("ok").equals("ok")) {
      String status = result.get("status").asText();
      log.accept(String.format(Locale.ROOT, "  %-40s %s", label, status));
      return Side.failed(status);
    }
    double[] steps = new double[result.path("step_seconds").size()];
    for (int i = 0; i < steps.length; i++) {
      steps[i] = result.get("step_seconds").get(i).asDouble();
    }
    Side side =
        new Side(
            result.path("peak_rss_bytes").asDouble(),
            result.path("load_peak_rss_bytes").asDouble(),
            result.path("load_seconds").asDouble(),
            steps.length == 0 ? null : steps[steps.length - 1],
            "ok",
            result);
    log.accept(
        String.format(
            Locale.ROOT,
            "  %-40s peak %.2f GiB (load %.2f GiB), load %.1f s, step %s s (wall %.0f s)%s",
            label,
            side.peakRssBytes() / GIB,
            side.loadPeakRssBytes() / GIB,
            side.loadSeconds(),
            sec(side.stepSeconds()),
            wall,
            result.has("recompute") && result.has("trainable_parameters")
                ? ", --recompute " + result.get("recompute").asText()
                : ""));
    return side;
  }

  private static double[] rewards(Side s) {
    return rewards(s, "rewards");
  }

  /** Max over entries of {@code |a - b| / max(|b|, 1e-6)}; null when either is missing. */
  static Double maxRelDiff(double[] a, double[] b) {
    if (a == null || b == null || a.length != b.length) {
      return null;
    }
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), 1e-6));
    }
    return m;
  }

  private static double[] rewards(Side s, String key) {
    if (s == null || !s.ok() || !s.raw().has(key)) {
      return null;
    }
    List<Double> v = new ArrayList<>();
    s.raw().get(key).forEach(row -> row.forEach(x -> v.add(x.asDouble())));
    return v.stream().mapToDouble(Double::doubleValue).toArray();
  }

  private static ObjectNode checkReport(Spec s, Side java, Map<String, Side> peer) {
    ObjectNode n = JSON.createObjectNode();
    n.put(
        "what",
        "rewards of the first "
            + s.checkLayers()
            + " blocks + norm + head of the same checkpoint (same values), "
            + s.rows()
            + " x "
            + s.seq()
            + " tokens; max relative difference |a - b| / |b|");
    double[] bf16 = rewards(java, "rewards_bfloat16");
    double[] f32 = rewards(java, "rewards_float32");
    double[] loraBf16 = rewards(java, "rewards_lora_bfloat16");
    n.put("java", java.status());
    putDiff(n, "java_bf16_vs_java_f32", bf16, f32);
    putDiff(n, "java_lora_bf16_vs_java_lora_f32", loraBf16, rewards(java, "rewards_lora_float32"));
    putDiff(n, "java_bf16_vs_torch_f32", bf16, rewards(peer.get("f32")));
    putDiff(n, "java_f32_vs_torch_f32", f32, rewards(peer.get("f32")));
    putDiff(n, "java_lora_bf16_vs_torch_peft_f32", loraBf16, rewards(peer.get("lora-f32")));
    putDiff(n, "torch_bf16_vs_torch_f32", rewards(peer.get("bf16")), rewards(peer.get("f32")));
    return n;
  }

  private static void putDiff(ObjectNode n, String key, double[] a, double[] b) {
    Double d = maxRelDiff(a, b);
    if (d != null) {
      n.put(key, d);
    }
  }

  private static List<Target> targets(
      Spec s, Map<String, Side> java, Map<String, Side> peer, long ckptBytes) {
    List<Target> out = new ArrayList<>();
    Side single = java.get("score");
    Side lora = java.get("lora-score");
    Side train = java.get("lora-train");
    if (single.ok() && lora.ok()) {
      double r = lora.peakRssBytes() / single.peakRssBytes();
      out.add(
          new Target(
              "K=" + s.k() + " LoRA scoring peak RSS <= " + LORA_SCORE_RSS_RATIO + "x single",
              String.format(Locale.ROOT, "%.3fx", r),
              r <= LORA_SCORE_RSS_RATIO));
    } else {
      out.add(new Target("K=" + s.k() + " LoRA scoring peak RSS", "not measured", false));
    }
    out.add(
        new Target(
            "K=" + s.k() + " LoRA phase-2 step completes within " + TRAIN_RSS_GIB + " GiB",
            train.ok()
                ? String.format(Locale.ROOT, "%.2f GiB", train.peakRssBytes() / GIB)
                : train.status(),
            train.ok() && train.peakRssBytes() <= TRAIN_RSS_GIB * GIB));
    if (single.ok()) {
      double limit = LOAD_RATIO * ckptBytes + LOAD_SLACK_GIB * GIB;
      out.add(
          new Target(
              "loading peak RSS <= "
                  + LOAD_RATIO
                  + "x checkpoint bytes + "
                  + LOAD_SLACK_GIB
                  + " GiB",
              String.format(
                  Locale.ROOT,
                  "%.2f GiB (limit %.2f GiB)",
                  single.loadPeakRssBytes() / GIB,
                  limit / GIB),
              single.loadPeakRssBytes() <= limit));
    }
    for (String w : ScaleProbe.WORKLOADS) {
      Side j = java.get(w);
      Side p = peer.get(w);
      if (!s.peer()) {
        out.add(new Target(w + " time per step <= " + TIME_RATIO + "x PyTorch", "no peer", null));
      } else if (j.ok() && p != null && p.ok()) {
        double r = j.stepSeconds() / p.stepSeconds();
        out.add(
            new Target(
                w + " time per step <= " + TIME_RATIO + "x PyTorch",
                String.format(Locale.ROOT, "%.2fx", r),
                r <= TIME_RATIO));
      } else {
        out.add(
            new Target(
                w + " time per step <= " + TIME_RATIO + "x PyTorch",
                "project " + j.status() + ", peer " + (p == null ? "not run" : p.status()),
                // no PyTorch time to compare with when the peer did not finish (e.g. out of memory)
                j.ok() && p != null && !p.ok() ? null : Boolean.FALSE));
      }
    }
    return out;
  }

  private static String gib(Double bytes) {
    return bytes == null ? "-" : String.format(Locale.ROOT, "%.2f", bytes / GIB);
  }

  private static String sec(Double s) {
    return s == null ? "-" : String.format(Locale.ROOT, "%.2f", s);
  }

  private static String ratio(Double a, Double b) {
    return a == null || b == null || b == 0 ? "-" : String.format(Locale.ROOT, "%.2f", a / b);
  }

  /** The table as markdown (printed, and written beside the JSON). */
  public static String markdown(Report r) {
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "Scale: %s, %,d parameters, checkpoint %.2f GiB (%d bytes, %d file(s)), bf16%n%n",
            r.preset(),
            r.parameters(),
            r.checkpointBytes() / GIB,
            r.checkpointBytes(),
            r.shards()));
    sb.append(
        "| workload | peak RSS GiB | load peak GiB | checkpoint GiB | load s | s/step |"
            + " peer RSS GiB | peer s/step | RSS ratio | time ratio |\n");
    sb.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (Row row : r.rows()) {
      Side j = row.project();
      Side p = row.peer();
      sb.append(
          String.format(
              Locale.ROOT,
              "| %s (%s) | %s | %s | %.2f | %s | %s | %s | %s | %s | %s |%n",
              row.workload(),
              row.what(),
              j.ok() ? gib(j.peakRssBytes()) : j.status(),
              j.ok() ? gib(j.loadPeakRssBytes()) : "-",
              row.checkpointBytes() / GIB,
              sec(j.loadSeconds()),
              sec(j.stepSeconds()),
              p == null ? "not run" : p.ok() ? gib(p.peakRssBytes()) : p.status(),
              p == null || !p.ok() ? "-" : sec(p.stepSeconds()),
              p == null || !p.ok() || !j.ok() ? "-" : ratio(j.peakRssBytes(), p.peakRssBytes()),
              p == null || !p.ok() || !j.ok() ? "-" : ratio(j.stepSeconds(), p.stepSeconds())));
    }
    sb.append("\nRewards check (").append(r.check().path("what").asText()).append("):\n\n");
    r.check()
        .fields()
        .forEachRemaining(
            e -> {
              if (e.getValue().isNumber()) {
                sb.append(
                    String.format(
                        Locale.ROOT, "- %s: %.3g%n", e.getKey(), e.getValue().asDouble()));
              }
            });
    sb.append("\nTargets (issue #15):\n\n| target | measured | result |\n| --- | --- | --- |\n");
    for (Target t : r.targets()) {
      sb.append(
          String.format(
              "| %s | %s | %s |%n",
              t.name(), t.measured(), t.pass() == null ? "n/a" : t.pass() ? "PASS" : "FAIL"));
    }
    return sb.toString();
  }

  public static void print(Report r, PrintStream out) {
    out.println();
    out.print(markdown(r));
  }

  /** The {@code --json} document. */
  public static ObjectNode toJson(Report r, Spec s) {
    ObjectNode root = JSON.createObjectNode();
    root.set("machine", JSON.valueToTree(r.machine()));
    ObjectNode set = root.putObject("settings");
    set.put("preset", r.preset());
    set.put("rows", s.rows());
    set.put("seq", s.seq());
    set.put("k", s.k());
    set.put("threads", s.threads());
    set.put("seed", s.seed());
    set.put("max_shard_bytes", s.maxShardBytes());
    set.put("check_layers", s.checkLayers());
    set.put("recompute", s.recompute());
    set.put("compute", s.compute().id());
    set.put("steps", ScaleProbe.STEPS);
    set.put(
        "method",
        "each workload in a fresh process; peak RSS = VmHWM of that process; load peak = VmHWM"
            + " right after loading; s/step = the last of "
            + ScaleProbe.STEPS
            + " steps");
    root.put("parameters", r.parameters());
    root.put("checkpoint_bytes", r.checkpointBytes());
    root.put("shards", r.shards());
    ArrayNode rows = root.putArray("workloads");
    for (Row row : r.rows()) {
      ObjectNode n = rows.addObject();
      n.put("name", row.workload());
      n.put("what", row.what());
      n.set("project", side(row.project()));
      n.set("peer", row.peer() == null ? null : side(row.peer()));
    }
    root.set("rewards_check", r.check());
    ArrayNode t = root.putArray("targets");
    for (Target x : r.targets()) {
      ObjectNode n = t.addObject();
      n.put("target", x.name());
      n.put("measured", x.measured());
      if (x.pass() == null) {
        n.putNull("pass");
      } else {
        n.put("pass", x.pass());
      }
    }
    if (r.peerInfo() != null) {
      root.set("peer_info", r.peerInfo());
    }
    return root;
  }

  private static ObjectNode side(Side s) {
    ObjectNode n = JSON.createObjectNode();
    n.put("status", s.status());
    if (s.ok()) {
      n.put("peak_rss_bytes", s.peakRssBytes());
      n.put("load_peak_rss_bytes", s.loadPeakRssBytes());
      n.put("load_seconds", s.loadSeconds());
      if (s.stepSeconds() != null) {
        n.put("seconds_per_step", s.stepSeconds());
      }
      n.set("step_seconds", s.raw().path("step_seconds"));
      if (s.raw().has("planned_bytes")) {
        n.put("planned_bytes", s.raw().get("planned_bytes").asLong());
      }
      if (s.raw().has("recompute") && s.raw().has("trainable_parameters")) {
        // the depth the training probe ran with (auto resolved)
        n.put("recompute", s.raw().get("recompute").asText());
      }
    }
    return n;
  }
}
