package dev.rewardensemble.bench;

import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.WeightStorage;
import dev.rewardensemble.ensemble.EnsembleModel;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.tensorflow.Graph;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/**
 * Hidden entry point run in a FRESH JVM per ensemble kind or workload, so that each peak RSS
 * belongs to one model: builds the ensemble from seeded random weights, loads it into a session,
 * scores one batch twice, and prints {@code peak_rss_mb=<VmHWM in MiB>}; a workload of {@link
 * Workloads#SINGLE_MODEL} is built and run twice (two scoring batches, two training steps, two
 * generations). Kind {@code baseline} loads TensorFlow and runs a trivial graph, building no model:
 * the JVM + runtime floor that {@link BenchRunner} subtracts.
 *
 * <p>Usage: {@code java -cp CP dev.rewardensemble.bench.MemoryProbe PRESET_JSON KIND K BATCH SEQ
 * INTRA INTER SEED [COMPUTE [WEIGHTS [CHECKPOINT]]]} (COMPUTE: float32, the default, or bfloat16;
 * WEIGHTS: {@code --weights}, auto by default; CHECKPOINT: a workload loads its weights from there,
 * a causal LM for generation, a one-head reward model for scoring and training, as the peer's
 * probes load theirs).
 */
public final class MemoryProbe {
  private MemoryProbe() {}

  public static void main(String[] args) throws Exception {
    Path preset = Path.of(args[0]);
    String kind = args[1];
    int k = Integer.parseInt(args[2]);
    int batch = Integer.parseInt(args[3]);
    int seq = Integer.parseInt(args[4]);
    ExecConfig exec =
        new ExecConfig(Integer.parseInt(args[5]), Integer.parseInt(args[6]), false)
            .withCompute(args.length > 8 ? Precision.parse(args[8]) : Precision.FLOAT32)
            .withWeights(args.length > 9 ? WeightStorage.parse(args[9]) : WeightStorage.AUTO);
    long seed = Long.parseLong(args[7]);
    if (kind.equals("baseline")) {
      try (Graph g = new Graph()) {
        Ops tf = Ops.create(g);
        var sum = tf.math.add(tf.constant(1f), tf.constant(2f));
        try (Session s = exec.newSession(g);
            var r = s.runner().fetch(sum).run()) {
          ((TFloat32) r.get(0)).getFloat();
        }
      }
    } else if (args.length > 10 && kind.startsWith("generate")) { // loaded from a checkpoint
      ModelConfig c = BenchModels.config(BenchModels.presetJson(preset), preset.toString());
      BenchOptions o = new BenchOptions(batch, seq, k, 0, 1, exec, seed);
      try (Workloads.Prepared p =
          Workloads.prepareGeneration(
              kind, c, BenchModels.tokenIds(c, 2 * batch, seq, seed), o, Path.of(args[10]))) {
        p.run();
        p.run();
      }
    } else if (Workloads.SINGLE_MODEL.contains(kind)) {
      ModelConfig c = BenchModels.config(BenchModels.presetJson(preset), preset.toString());
      BenchOptions o = new BenchOptions(batch, seq, k, 0, 1, exec, seed);
      Path heads1 = args.length > 10 ? Path.of(args[10]) : null; // scoring, training: from disk
      try (Workloads.Prepared p =
          Workloads.prepare(kind, c, BenchModels.tokenIds(c, 2 * batch, seq, seed), o, heads1)) {
        p.run();
        p.run();
      }
    } else {
      ModelConfig c = BenchModels.config(BenchModels.presetJson(preset), preset.toString());
      EnsembleModel m = BenchModels.ensemble(kind, c, kind.equals("single") ? 1 : k, seed);
      int[] ids = BenchModels.tokenIds(c, batch, seq, seed);
      int[] mask = Workloads.noPadding(ids.length);
      try (RewardModel rm = RewardModel.of(m, exec)) {
        m = null; // the weights now live in the session; the Java copies may be collected
        rm.run(ids, mask, batch, seq);
        rm.run(ids, mask, batch, seq);
      }
    }
    System.out.printf("peak_rss_mb=%.1f%n", Machine.peakRssMb());
  }

  /** Runs a probe in a fresh JVM with this process's class path; returns its peak RSS in MiB. */
  public static double run(Path preset, String kind, BenchOptions o)
      throws IOException, InterruptedException {
    return run(preset, kind, o, null);
  }

  /**
   * {@link #run(Path, String, BenchOptions)}; a generation workload with a {@code checkpoint} (a
   * causal LM of the preset's config) loads its weights from there, as {@code rme generate} does.
   */
  public static double run(Path preset, String kind, BenchOptions o, Path checkpoint)
      throws IOException, InterruptedException {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> cmd =
        new ArrayList<>(
            List.of(
                java,
                "-Xmx16g",
                "-cp",
                System.getProperty("java.class.path"),
                MemoryProbe.class.getName(),
                preset.toString(),
                kind,
                Integer.toString(o.k()),
                Integer.toString(o.batch()),
                Integer.toString(o.seq()),
                Integer.toString(o.exec().intraOpThreads()),
                Integer.toString(o.exec().interOpThreads()),
                Long.toString(o.seed()),
                o.exec().compute().id(),
                o.exec().weights().id()));
    if (checkpoint != null) {
      cmd.add(checkpoint.toString());
    }
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().put("TF_CPP_MIN_LOG_LEVEL", "2");
    Process p = pb.start();
    StringBuilder out = new StringBuilder();
    double peak = -1;
    try (BufferedReader r =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = r.readLine()) != null) {
        out.append(line).append('\n');
        if (line.startsWith("peak_rss_mb=")) {
          peak = Double.parseDouble(line.substring("peak_rss_mb=".length()));
        }
      }
    }
    int rc = p.waitFor();
    if (rc != 0 || peak < 0) {
      throw new IllegalStateException(
          "memory probe '" + kind + "' failed (exit " + rc + "):\n" + out);
    }
    return peak;
  }
}
