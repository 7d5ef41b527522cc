package dev.rewardensemble.rl;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.AtomicDirs;
import dev.rewardensemble.io.DirLock;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.RunDirs;
import dev.rewardensemble.train.Checkpoints;
import dev.rewardensemble.train.TrainListener;
import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * A PPO run in a run directory: iterations over a deterministic prompt order (a pure function of
 * the seed and the iteration), per-iteration metrics in {@code metrics.jsonl}, checkpoints every N
 * iterations (policy and value weights, AdamW moments, iteration, KL coefficient), resume, and the
 * final policy in the Hugging Face layout ({@code RUN_DIR/policy/}).
 */
public final class PpoRun {
  private static final ObjectMapper JSON = new ObjectMapper();

  private PpoRun() {}

  /** Run settings besides the PPO hyperparameters. */
  public record Options(
      Path runDir, int iterations, int saveEvery, int keepCheckpoints, boolean resume) {
    public Options {
      if (iterations < 1) {
        throw new IllegalArgumentException("iterations must be >= 1, got " + iterations);
      }
      if (saveEvery < 0 || keepCheckpoints < 1) {
        throw new IllegalArgumentException("save-every must be >= 0 and keep-checkpoints >= 1");
      }
    }
  }

  /**
   * Runs (or resumes) PPO; {@code onStats} sees every iteration's metrics. Returns the policy
   * directory.
   */
  public static Path run(
      PpoTrainer trainer,
      ModelConfig policyConfig,
      Optional<Path> tokenizer,
      List<int[]> prompts,
      PpoConfig cfg,
      Options opt,
      ObjectNode provenance,
      Consumer<PpoTrainer.Stats> onStats,
      TrainListener listener)
      throws IOException {
    if (prompts.isEmpty()) {
      throw new IllegalArgumentException("no prompts");
    }
    try (DirLock lock = DirLock.runDir(opt.runDir())) {
      return runLocked(
          trainer, policyConfig, tokenizer, prompts, cfg, opt, provenance, onStats, listener);
    }
  }

  private static Path runLocked(
      PpoTrainer trainer,
      ModelConfig policyConfig,
      Optional<Path> tokenizer,
      List<int[]> prompts,
      PpoConfig cfg,
      Options opt,
      ObjectNode provenance,
      Consumer<PpoTrainer.Stats> onStats,
      TrainListener listener)
      throws IOException {
    Path dir = opt.runDir();
    Files.createDirectories(dir);
    RunDirs.cleanLeftovers(dir);
    Path policyDir = dir.resolve("policy");
    Optional<Checkpoints.Loaded> ck = Checkpoints.latest(dir);
    if (opt.resume()) {
      if (Files.exists(policyDir)) { // written complete or not at all (see the end of the run)
        throw new IllegalArgumentException(dir + " holds a completed PPO run; nothing to resume");
      }
      if (ck.isPresent()) {
        var s = ck.get().state();
        trainer.restore(
            ck.get().weights(),
            ck.get().optimizer(),
            new PpoTrainer.State(
                s.get("iteration").asInt(),
                s.get("optimizer_steps").asInt(),
                s.get("kl_coef").asDouble()),
            ck.get().dir().toString());
        listener.onMessage(
            "resuming from " + ck.get().dir() + " (iteration " + trainer.iteration() + ")");
      }
    } else if (ck.isPresent() || Files.exists(policyDir)) {
      throw new IllegalArgumentException(
          dir + " already holds a PPO run; pass --resume or choose another --out");
    }
    Path metrics = dir.resolve("metrics.jsonl");
    keepRowsUpTo(metrics, trainer.iteration());
    ObjectNode run = JSON.createObjectNode();
    run.put("format", "rme-ppo/1");
    run.set("ppo", JSON.valueToTree(cfg));
    run.put("iterations", opt.iterations());
    run.set("provenance", provenance);
    run.put("complete", false);
    RunDirs.writeRunJson(dir, run);

    long t0 = System.nanoTime();
    int start = trainer.iteration();
    for (int it = start; it < opt.iterations(); it++) {
      PpoTrainer.Stats s = trainer.step(batch(prompts, cfg.rolloutBatch(), cfg.seed(), it));
      ObjectNode row = JSON.valueToTree(s);
      row.put("seconds_total", (System.nanoTime() - t0) / 1e9);
      try (Writer w =
          Files.newBufferedWriter(
              metrics,
              StandardCharsets.UTF_8,
              StandardOpenOption.CREATE,
              StandardOpenOption.APPEND)) {
        w.write(JSON.writeValueAsString(row));
        w.write('\n');
      }
      onStats.accept(s);
      listener.onStep(
          it + 1,
          opt.iterations(),
          s.meanScore(),
          s.kl(),
          cfg.lr(),
          s.policyLoss(),
          (System.nanoTime() - t0) / 1e9);
      if (opt.saveEvery() > 0 && (it + 1) % opt.saveEvery() == 0 && it + 1 < opt.iterations()) {
        PpoTrainer.State st = trainer.state();
        ObjectNode state = JSON.createObjectNode();
        state.put("step", st.iteration());
        state.put("iteration", st.iteration());
        state.put("optimizer_steps", st.optimizerSteps());
        state.put("kl_coef", st.klCoef());
        state.put("seed", cfg.seed());
        state.put("rng", "prompt order and sampling streams are functions of (seed, iteration)");
        Path saved =
            Checkpoints.save(
                dir,
                st.iteration(),
                trainer.trainableWeightsDeferred(), // streamed variable by variable
                trainer.optimizerStateDeferred(),
                state,
                opt.keepCheckpoints());
        listener.onMessage("checkpoint " + saved);
      }
    }
    Map<String, FloatTensor> policy = trainer.policyWeightsDeferred(); // streamed when written
    String arch = dev.rewardensemble.serving.SavedModels.causalLm(policyConfig);
    // The policy directory is assembled under a temporary name (weights, config, tokenizer) and
    // renamed whole, so RUN_DIR/policy is complete or absent; run.json says "complete" after it.
    Path staging = dir.resolve(".policy.staging");
    AtomicDirs.deleteRecursively(staging);
    HfCheckpoint.save(staging, policyConfig, arch, policy, Map.of("format", "pt"));
    if (tokenizer.isPresent()) {
      // with its chat template, so the policy generates from chat prompts as the original did
      dev.rewardensemble.data.ChatTemplate.copyTokenizerFiles(tokenizer.get(), staging);
    }
    AtomicDirs.replace(staging, policyDir);
    run.put("complete", true);
    RunDirs.writeRunJson(dir, run);
    return policyDir;
  }

  /**
   * The prompts of iteration {@code it}: consecutive slices of per-epoch permutations of the prompt
   * list.
   */
  static List<int[]> batch(List<int[]> prompts, int size, long seed, int it) {
    List<int[]> out = new ArrayList<>(size);
    int n = prompts.size();
    for (int k = 0; k < size; k++) {
      long global = (long) it * size + k;
      int epoch = (int) (global / n);
      int[] perm = dev.rewardensemble.data.Splits.permutation(n, seed, epoch);
      out.add(prompts.get(perm[(int) (global % n)]));
    }
    return out;
  }

  private static void keepRowsUpTo(Path metrics, int iteration) throws IOException {
    if (!Files.exists(metrics)) {
      return;
    }
    List<String> keep = new ArrayList<>();
    for (String line : Files.readAllLines(metrics)) {
      try {
        if (!line.isBlank()
            && JSON.readTree(line).path("iteration").asInt(Integer.MAX_VALUE) <= iteration) {
          keep.add(line);
        }
      } catch (IOException e) {
        // the torn last line of a killed run: dropped
      }
    }
    // Through a temporary file: a kill while rewriting never loses the rows kept.
    Path tmp = metrics.resolveSibling(".metrics.jsonl.tmp");
    Files.write(tmp, keep);
    Files.move(
        tmp,
        metrics,
        java.nio.file.StandardCopyOption.REPLACE_EXISTING,
        java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }
}
