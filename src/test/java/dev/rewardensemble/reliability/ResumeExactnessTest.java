package dev.rewardensemble.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.EnsembleOptions;
import dev.rewardensemble.api.RewardTraining;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.data.PreferenceFormat;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.LmHead;
import dev.rewardensemble.rl.KlPenalty;
import dev.rewardensemble.rl.PpoConfig;
import dev.rewardensemble.rl.PpoRun;
import dev.rewardensemble.rl.PpoTrainer;
import dev.rewardensemble.rl.SequenceScorer;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainConfig;
import dev.rewardensemble.train.TrainListener;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kill-and-resume for every kind ends with the same bytes as an uninterrupted run: independent (K =
 * 2), linear with bootstrapped heads, LoRA with dropout (phase 2 interrupted) and PPO.
 *
 * <p>The interruption is deterministic: the run's listener throws right after the checkpoint it is
 * told about has been written (the last thing a process killed at that moment would have done), so
 * nothing after that checkpoint exists; then the same request is run again with resume. Final
 * tensors are compared bit for bit.
 */
class ResumeExactnessTest {
  private static final Path PRESET = Path.of("tf-graphs/tiny-llama.json");

  @TempDir Path tmp;

  /** Thrown by the listener to stop a run right after a checkpoint, as a kill would. */
  static final class Killed extends RuntimeException {
    Killed(String where) {
      super("simulated kill after " + where);
    }
  }

  /** Throws after the first checkpoint whose path matches {@code where}. */
  static TrainListener killAfterCheckpoint(Predicate<String> where) {
    return new TrainListener() {
      @Override
      public void onMessage(String message) {
        if (message.startsWith("checkpoint ") && where.test(message)) {
          throw new Killed(message);
        }
      }
    };
  }

  private Path data(int n, long seed) throws Exception {
    Path p = tmp.resolve("syn-" + n + "-" + seed + ".jsonl");
    Files.write(
        p, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(n, 64, 8, 16, 3, seed)));
    return p;
  }

  /**
   * 2 epochs of 27 training pairs with 2 x 2 pairs per step: 7 steps per epoch, whose last has 3
   * pairs (a short window), checkpoints every 3 steps.
   */
  private static TrainConfig train(long seed) {
    return TrainConfig.builder()
        .epochs(2)
        .batchSize(2)
        .lr(2e-3)
        .weightDecay(0.01)
        .warmupRatio(0.1)
        .seed(seed)
        .evalEvery(5)
        .saveEvery(3)
        .build();
  }

  private RewardTraining.TrainRequest request(
      Path data, Path out, EnsembleOptions ens, boolean resume) {
    return request(data, out, ens, train(11), resume);
  }

  /** A tiny-llama run of {@code ens} on raw pre-tokenized rows with the given settings. */
  static RewardTraining.TrainRequest request(
      Path data, Path out, EnsembleOptions ens, TrainConfig tc, boolean resume) {
    return new RewardTraining.TrainRequest(
        PRESET,
        data,
        out,
        tc,
        ExecConfig.defaults(),
        ens,
        null,
        PromptTemplate.RAW,
        PreferenceFormat.AUTO,
        0,
        false,
        resume,
        dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
  }

  /**
   * Trains {@code ens} once through and once killed after a checkpoint matching {@code killAt},
   * then resumed.
   */
  private void uninterruptedAndResumed(
      EnsembleOptions ens, Predicate<String> killAt, List<String> outputs) throws Exception {
    Path data = data(30, 7);
    Path full = tmp.resolve("full");
    RewardTraining.train(request(data, full, ens, false), TrainListener.NONE);

    Path killed = tmp.resolve("killed");
    Killed k =
        assertThrows(
            Killed.class,
            () ->
                RewardTraining.train(
                    request(data, killed, ens, false), killAfterCheckpoint(killAt)));
    // The interrupted part's output (listed last) and the manifest (written last of all) do not
    // exist yet.
    for (String o : List.of(outputs.get(outputs.size() - 1), "ensemble.json")) {
      assertFalse(
          Files.exists(killed.resolve(o)), o + " exists after the kill (" + k.getMessage() + ")");
    }
    RewardTraining.train(request(data, killed, ens, true), TrainListener.NONE);
    for (String o : outputs) {
      assertSameTensors(full.resolve(o), killed.resolve(o));
    }
  }

  /** Every tensor of the two safetensors files has the same name, shape and float bits. */
  static void assertSameTensors(Path expected, Path actual) throws Exception {
    Map<String, FloatTensor> a;
    Map<String, FloatTensor> b;
    try (Safetensors s = Safetensors.open(expected)) {
      a = s.readAll();
    }
    try (Safetensors s = Safetensors.open(actual)) {
      b = s.readAll();
    }
    assertEquals(a.keySet(), b.keySet(), actual.toString());
    for (String key : a.keySet()) {
      assertTrue(java.util.Arrays.equals(a.get(key).shape(), b.get(key).shape()), key);
      float[] x = a.get(key).data();
      float[] y = b.get(key).data();
      int differing = 0;
      double maxDiff = 0;
      for (int i = 0; i < x.length; i++) {
        if (Float.floatToRawIntBits(x[i]) != Float.floatToRawIntBits(y[i])) {
          differing++;
          maxDiff = Math.max(maxDiff, Math.abs((double) x[i] - y[i]));
        }
      }
      assertEquals(
          0,
          differing,
          actual
              + ": "
              + key
              + " differs in "
              + differing
              + " of "
              + x.length
              + " values (max |diff| "
              + maxDiff
              + ") between the uninterrupted and the resumed run");
    }
  }

  @Test
  void independentEnsembleResumesToIdenticalBytes() throws Exception {
    // Killed inside the second member: the first is complete and skipped, the second resumes.
    uninterruptedAndResumed(
        EnsembleOptions.of(EnsembleKind.INDEPENDENT, 2),
        m -> m.contains("member-1") && m.contains("step-00000006"),
        List.of("member-0/model.safetensors", "member-1/model.safetensors"));
  }

  @Test
  void linearEnsembleWithBootstrapResumesToIdenticalBytes() throws Exception {
    uninterruptedAndResumed(
        new EnsembleOptions(
            EnsembleKind.LINEAR,
            2,
            true,
            null,
            0.5,
            null,
            5e-5,
            Schedule.Kind.CONSTANT,
            AggregationConfig.mean(),
            true,
            2048),
        m -> m.contains("step-00000006"),
        List.of("model.safetensors"));
  }

  @Test
  void loraEnsembleWithDropoutResumesPhaseTwoToIdenticalBytes() throws Exception {
    // Dropout 0.05 is the default; its masks must not depend on the process that draws them.
    LoraConfig lora = LoraConfig.defaults(tinyLlama()).withRank(4, 8);
    assertEquals(0.05, lora.dropout());
    uninterruptedAndResumed(
        new EnsembleOptions(
            EnsembleKind.LORA,
            2,
            false,
            lora,
            0.5,
            null,
            2e-3,
            Schedule.Kind.CONSTANT,
            AggregationConfig.mean(),
            true,
            2048),
        m -> m.contains("phase2") && m.contains("step-00000003"),
        List.of(
            "phase1/model.safetensors",
            "adapters/member-0/adapter_model.safetensors",
            "adapters/member-1/adapter_model.safetensors"));
  }

  private static dev.rewardensemble.config.ModelConfig tinyLlama() throws Exception {
    return dev.rewardensemble.config.ModelConfigs.read(PRESET);
  }

  // PPO: a tiny causal LM against a reward that likes one token, with the default (multi-threaded)
  // execution.

  private static final int GOOD = 5;

  private Path ppo(Path dir, boolean resume, TrainListener listener) throws Exception {
    return ppo(dir, resume, listener, 3e-3);
  }

  Path ppo(Path dir, boolean resume, TrainListener listener, double lr) throws Exception {
    LlamaConfig c = new LlamaConfig(16, 32, 64, 2, 4, 2, 8, 64, 1e-6, 10000, 0, 1, 2, false);
    Map<String, FloatTensor> w = new LinkedHashMap<>(Init.trunk(c, 3));
    w.put(
        LmHead.KEY,
        Init.normal(new long[] {c.vocabSize(), c.hiddenSize()}, 0.02, new SplittableRandom(4)));
    Map<String, FloatTensor> trunk = new LinkedHashMap<>(w);
    trunk.remove(LmHead.KEY);
    SequenceScorer reward =
        SequenceScorer.function(
            (p, r) -> {
              double s = 0;
              for (int t : r) {
                s += t == GOOD ? 1 : 0;
              }
              return s - 0.1 * r.length;
            });
    // Adaptive KL (its coefficient is checkpointed state), sampling at temperature 1 with top-p.
    PpoConfig cfg =
        PpoConfig.builder()
            .rolloutBatch(8)
            .stepBatch(4)
            .lr(lr)
            .warmupSteps(2)
            .klCoef(0.1)
            .klEstimator(KlPenalty.Estimator.K3)
            .adaptiveKl(new PpoConfig.AdaptiveKl(2.0, 100))
            .missingEosPenalty(0.5)
            .temperature(1.0)
            .maxNewTokens(6)
            .seed(9)
            .build();
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      prompts.add(new int[] {1, 3 + i});
    }
    try (PpoTrainer t = new PpoTrainer(c, w, c, trunk, reward, cfg, ExecConfig.defaults())) {
      return PpoRun.run(
          t,
          c,
          Optional.empty(),
          prompts,
          cfg,
          new PpoRun.Options(dir, 5, 2, 2, resume),
          new ObjectMapper().createObjectNode(),
          s -> {},
          listener);
    }
  }

  @Test
  void ppoResumesToIdenticalBytes() throws Exception {
    Path full = ppo(tmp.resolve("ppo-full"), false, TrainListener.NONE);
    Path dir = tmp.resolve("ppo-killed");
    assertThrows(
        Killed.class, () -> ppo(dir, false, killAfterCheckpoint(m -> m.contains("step-00000002"))));
    assertFalse(Files.exists(dir.resolve("policy")));
    Path resumed = ppo(dir, true, TrainListener.NONE);
    assertSameTensors(full.resolve("model.safetensors"), resumed.resolve("model.safetensors"));
  }
}
