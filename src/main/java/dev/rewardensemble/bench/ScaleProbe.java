package dev.rewardensemble.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.api.LoraPhase2;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.AvailableMemory;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.config.WeightStorage;
import dev.rewardensemble.data.PreferencePair;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.LoraEnsembleGraph;
import dev.rewardensemble.ensemble.LoraInit;
import dev.rewardensemble.ensemble.MemoryPlan;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.train.RewardTrainer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * One workload of {@code rme bench --workloads scale}, run in a FRESH JVM by {@link ScaleBench} so
 * that its peak RSS (VmHWM) is its own. Prints one line {@code scale_result=<JSON>}: peak RSS in
 * bytes, seconds of the load (building the graph and streaming the checkpoint into it) and of each
 * step, and the rewards.
 *
 * <p>Usage: {@code java -cp CP dev.rewardensemble.bench.ScaleProbe WORKLOAD CHECKPOINT ADAPTERS
 * ROWS SEQ K THREADS WEIGHTS SEED RECOMPUTE COMPUTE} with WORKLOAD one of {@code score} (single
 * model), {@code lora-score} (K PEFT adapters over the checkpoint, ADAPTERS a comma-separated
 * list), {@code lora-train} (two LoRA phase-2 steps of K fresh adapters on one pair: rows 0 and 1),
 * {@code check} (rewards of the single model and of the LoRA ensemble with bf16 and with float32
 * storage: {@code rewards_bfloat16}, {@code rewards_float32}, {@code rewards_lora_...}), and
 * WEIGHTS {@code float32|bfloat16} (the frozen weights' storage).
 */
public final class ScaleProbe {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Workloads a probe runs. */
  public static final List<String> WORKLOADS = List.of("score", "lora-score", "lora-train");

  /** The rewards check of the truncated checkpoint (not a timed workload). */
  public static final String CHECK = "check";

  /** Steps (scoring batches or optimizer steps) each workload times. */
  public static final int STEPS = 2;

  private ScaleProbe() {}

  private static void putRewards(ObjectNode out, String key, float[][] rewards) {
    ArrayNode r = out.putArray(key);
    for (float[] row : rewards) {
      ArrayNode a = r.addArray();
      for (float v : row) {
        a.add(v);
      }
    }
  }

  /**
   * The memory pre-check every command runs ({@link MemoryPlan}, streamed bf16 loading, no Java
   * copy), before anything is allocated: its total is recorded ({@code planned_bytes}); a plan that
   * does not fit is refused (an exception naming the numbers) instead of being killed by the kernel
   * on a machine shared with the peer. The training workload is planned with or without
   * recomputation, as it runs.
   */
  private static dev.rewardensemble.config.Recomputation preCheck(
      ObjectNode out,
      String workload,
      Path ckpt,
      int rows,
      int seq,
      int k,
      String recompute,
      Precision compute)
      throws java.io.IOException {
    ModelConfig c = HfCheckpoint.open(ckpt).config();
    MemoryPlan.Request train =
        new MemoryPlan.Request(
                c,
                EnsembleKind.LORA,
                k,
                BenchModels.lora(c, 0),
                MemoryPlan.Mode.TRAIN,
                2,
                1,
                seq,
                0,
                false)
            .withCompute(compute);
    AvailableMemory available = AvailableMemory.measure();
    dev.rewardensemble.config.Recomputation rc;
    if (recompute.equalsIgnoreCase("auto")) {
      // as train-rm --recompute auto: the fewest lowest blocks that make the plan fit here
      rc = MemoryPlan.fewestRecomputed(train, available.bytes());
      rc = rc == null ? dev.rewardensemble.config.Recomputation.ALL : rc;
    } else {
      rc = dev.rewardensemble.config.Recomputation.parse(recompute);
    }
    out.put("recompute", rc.id());
    LoraConfig lora = BenchModels.lora(c, 0);
    MemoryPlan.Request score =
        new MemoryPlan.Request(
            c, EnsembleKind.SINGLE, 1, null, MemoryPlan.Mode.SCORE, 2, rows, seq, 0, false);
    MemoryPlan plan =
        MemoryPlan.of(
            switch (workload) {
              case "score" -> score;
              case "lora-score" -> score.withKind(EnsembleKind.LORA, k, lora);
              default -> train.withRecompute(rc);
            });
    out.put("planned_bytes", plan.total());
    plan.require(available, "the scale workload '" + workload + "'");
    return rc;
  }

  /** Records the load's seconds and the peak RSS so far (the load's own peak). */
  private static void loaded(ObjectNode out, long t0) {
    out.put("load_seconds", (System.nanoTime() - t0) / 1e9);
    out.put("load_peak_rss_bytes", Math.round(Machine.peakRssMb() * 1024 * 1024));
  }

  public static void main(String[] args) throws Exception {
    String workload = args[0];
    Path ckpt = Path.of(args[1]);
    List<Path> adapters = new ArrayList<>();
    if (!args[2].equals("-")) {
      for (String a : args[2].split(",")) {
        adapters.add(Path.of(a));
      }
    }
    int rows = Integer.parseInt(args[3]);
    int seq = Integer.parseInt(args[4]);
    int k = Integer.parseInt(args[5]);
    int threads = Integer.parseInt(args[6]);
    WeightStorage weights = WeightStorage.parse(args[7]);
    long seed = Long.parseLong(args[8]);
    String recompute = args[9];
    ExecConfig exec =
        new ExecConfig(threads, 1, false)
            .withWeights(weights)
            .withCompute(dev.rewardensemble.config.Precision.parse(args[10]));
    ObjectNode out = JSON.createObjectNode();
    out.put("workload", workload);
    out.put("weights", args[7]);
    double[] steps = new double[STEPS];
    float[][] rewards = null;
    if (!workload.equals(CHECK)) {
      try {
        exec =
            exec.withRecompute(
                preCheck(out, workload, ckpt, rows, seq, k, recompute, exec.compute()));
      } catch (IllegalArgumentException e) {
        out.put("status", "refused by the memory pre-check: " + e.getMessage());
        System.out.println("scale_result=" + JSON.writeValueAsString(out));
        return;
      }
    }
    long t0 = System.nanoTime();
    switch (workload) {
      case "score", "lora-score" -> {
        try (RewardModel rm =
            RewardModel.load(ckpt, workload.equals("score") ? List.of() : adapters, exec)) {
          loaded(out, t0);
          int[] ids = ScaleBench.tokenIds(rm.config(), rows, seq, seed);
          int[] mask = new int[ids.length];
          Arrays.fill(mask, 1);
          for (int s = 0; s < STEPS; s++) {
            long ts = System.nanoTime();
            rewards = rm.run(ids, mask, rows, seq);
            steps[s] = (System.nanoTime() - ts) / 1e9;
          }
        }
      }
      case "lora-train" -> {
        HfCheckpoint.Checkpoint ck = HfCheckpoint.open(ckpt);
        ModelConfig c = ck.config();
        // As train-rm's phase 2: the frozen trunk in the storage --weights asks for (auto: bf16 for
        // a bf16 checkpoint), K fresh adapters (PEFT's init, B = 0) and K heads, streamed in.
        Precision frozen = exec.weights().resolve(LazyWeights.allBf16(ck.weights()));
        LoraConfig lora = BenchModels.lora(c, 0);
        LazyWeights init = new LazyWeights(ck.weights());
        init.put(RewardHeads.KEY, LoraInit.heads(k, c.hiddenSize(), seed, ScaleCheckpoint.STD));
        init.putAll(LoraInit.adapters(c, lora, k, seed));
        Set<String> trainable = Set.copyOf(LoraEnsembleGraph.trainableKeys(c, lora));
        int[] ids = ScaleBench.tokenIds(c, 2, seq, seed);
        List<PreferencePair> pair =
            List.of(
                new PreferencePair(
                    Arrays.copyOfRange(ids, 0, seq), Arrays.copyOfRange(ids, seq, 2 * seq), 0f, 1));
        try (RewardTrainer tr =
            new RewardTrainer(
                LoraPhase2.forward(c, lora, k, trainable, frozen, seed, RewardToken.LAST_NON_PAD),
                init,
                Workloads.trainConfig(new BenchOptions(1, seq, k, 0, 1, exec, seed)),
                exec,
                trainable::contains)) {
          init = null;
          loaded(out, t0);
          out.put("frozen_storage", frozen.id());
          out.put("trainable_parameters", tr.trainableCount());
          double lossSum = 0;
          for (int s = 0; s < STEPS; s++) {
            long ts = System.nanoTime();
            RewardTrainer.BatchStats b = tr.accumulate(pair, c.padTokenId());
            tr.apply(5e-5, s + 1);
            steps[s] = (System.nanoTime() - ts) / 1e9;
            lossSum += b.loss();
            out.put("loss_step" + (s + 1), b.loss());
          }
          if (!Double.isFinite(lossSum)) {
            throw new IllegalStateException("non-finite loss " + lossSum);
          }
        }
      }
      case "check" -> {
        // The truncated checkpoint's rewards with each storage, single and LoRA, in one process
        // (its memory is not measured).
        for (String storage : List.of("bfloat16", "float32")) {
          ExecConfig e = exec.withWeights(WeightStorage.parse(storage));
          for (boolean withLora : List.of(false, true)) {
            try (RewardModel rm = RewardModel.load(ckpt, withLora ? adapters : List.of(), e)) {
              int[] ids = ScaleBench.tokenIds(rm.config(), rows, seq, seed);
              int[] mask = new int[ids.length];
              Arrays.fill(mask, 1);
              putRewards(
                  out,
                  "rewards_" + (withLora ? "lora_" : "") + storage,
                  rm.run(ids, mask, rows, seq));
            }
          }
        }
        out.put("load_seconds", (System.nanoTime() - t0) / 1e9);
        out.put("load_peak_rss_bytes", Math.round(Machine.peakRssMb() * 1024 * 1024));
      }
      default ->
          throw new IllegalArgumentException(
              "unknown scale workload '" + workload + "' (expected " + WORKLOADS + ")");
    }
    ArrayNode st = out.putArray("step_seconds");
    if (!workload.equals("check")) {
      for (double s : steps) {
        st.add(s);
      }
    }
    if (rewards != null) {
      putRewards(out, "rewards", rewards);
    }
    out.put("peak_rss_bytes", Math.round(Machine.peakRssMb() * 1024 * 1024));
    out.put("status", "ok");
    System.out.println("scale_result=" + JSON.writeValueAsString(out));
  }
}
