package dev.rewardensemble.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.data.PreferencePair;
import dev.rewardensemble.data.Splits;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.Fixtures;
import dev.rewardensemble.train.Checkpoints;
import dev.rewardensemble.train.DivergenceGuard;
import dev.rewardensemble.train.RewardTrainer;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainConfig;
import dev.rewardensemble.train.TrainListener;
import dev.rewardensemble.train.TrainingRun;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Items 9 and 10 of issue #13: a short last accumulation window follows the gradient of the mean
 * loss over its real pairs, and divergence beyond NaN (exploding weights or loss, a vanished
 * gradient) stops with exit 3.
 */
class TrainingGuardTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path PRESET = Path.of("tf-graphs/tiny-llama.json");

  @TempDir Path tmp;

  // ---- item 9: the last, shorter window of an epoch ----

  /**
   * {@code n} pairs, batch 2, grad-accum 2: step 1 takes 4 pairs, step 2 the rest (5 pairs: one
   * micro-batch of 1; 7 pairs: micro-batches of 2 and 1). Step 2's accumulated gradient must be
   * that of the mean loss over its real pairs, and its update the one AdamW makes from that
   * gradient: the reference puts exactly those pairs in one micro-batch (grad-accum 1) on the
   * weights and AdamW moments of step 1's checkpoint. The old code divided by grad-accum whatever
   * the window held: half the gradient for 5 pairs, {@code (g_2 + g_1) / 2} instead of {@code (2
   * g_2 + g_1) / 3} for 7.
   */
  @ParameterizedTest
  @ValueSource(ints = {5, 7})
  void shortLastWindowFollowsTheGradientOfTheMeanLossOverItsRealPairs(int n) throws Exception {
    ModelConfig c = ModelConfigs.read(PRESET);
    List<PreferencePair> pairs = SyntheticPreferences.counting(n, 64, 8, 16, 3, 21);
    Map<String, FloatTensor> init = new LinkedHashMap<>(Init.trunk(c, 5));
    init.put(RewardHeads.KEY, Init.heads(1, c.hiddenSize(), 5));
    // No clipping (so the norm is the raw gradient's), constant lr, checkpoint after step 1.
    TrainConfig tc =
        TrainConfig.builder()
            .batchSize(2)
            .lr(1e-3)
            .schedule(Schedule.Kind.CONSTANT)
            .warmupRatio(0.0)
            .maxGradNorm(0.0)
            .evalFraction(0.0)
            .seed(9)
            .saveEvery(1)
            .keepCheckpoints(5)
            .build();
    List<Double> norms = new ArrayList<>();
    TrainListener listener =
        new TrainListener() {
          @Override
          public void onStep(
              int step,
              int total,
              double loss,
              double accuracy,
              double lr,
              double gradNorm,
              double s) {
            norms.add(gradNorm);
          }
        };
    Path runDir = tmp.resolve("run-" + n);
    TrainingRun.Outcome out =
        TrainingRun.run(
            TrainingRun.Spec.plain(
                c,
                "LlamaForSequenceClassification",
                1,
                dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
                init,
                tc,
                ExecConfig.defaults(),
                runDir,
                false,
                JSON.createObjectNode(),
                dev.rewardensemble.train.MemberLevers.none()),
            pairs,
            List.of(),
            listener);
    assertEquals(2, out.steps());

    int[] perm = Splits.permutation(n, tc.seed(), 0);
    List<PreferencePair> last = new ArrayList<>();
    for (int i = 4; i < n; i++) {
      last.add(pairs.get(perm[i]));
    }
    Checkpoints.Loaded step1 = Checkpoints.latest(runDir).orElseThrow();
    assertEquals(1, step1.step());
    TrainConfig oneBatch =
        TrainConfig.builder()
            .batchSize(last.size())
            .gradAccum(1)
            .lr(1e-3)
            .schedule(Schedule.Kind.CONSTANT)
            .warmupRatio(0.0)
            .maxGradNorm(0.0)
            .evalFraction(0.0)
            .seed(9)
            .keepCheckpoints(5)
            .build();
    try (RewardTrainer ref =
        new RewardTrainer(
            c,
            1,
            dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
            init,
            oneBatch,
            ExecConfig.defaults(),
            k -> true)) {
      ref.restore(step1.weights(), step1.optimizer(), "step 1");
      ref.accumulate(last, c.padTokenId());
      double want = ref.gradientCheck()[0];
      assertEquals(
          want,
          norms.get(1),
          1e-4 * want,
          "step 2's gradient norm ("
              + last.size()
              + " real pairs) against the mean-loss gradient's");
      ref.apply(1e-3, 2);
      Map<String, FloatTensor> w = ref.weights();
      for (String key : w.keySet()) {
        Fixtures.assertClose(w.get(key).data(), out.weights().get(key).data(), 1e-4, 1e-7, key);
      }
    }
  }

  @Test
  void microBatchScaleOfFullWindowsIsExactlyTheOldConstant() {
    // Full windows keep their old arithmetic bit for bit: pairs / stepPairs == 1f / gradAccum.
    for (int accum = 1; accum <= 16; accum++) {
      for (int batch = 1; batch <= 64; batch++) {
        assertEquals(
            Float.floatToRawIntBits(1f / accum),
            Float.floatToRawIntBits(RewardTrainer.microBatchScale(batch, batch * accum)),
            batch + " x " + accum);
      }
    }
    assertEquals(1f / 3f, RewardTrainer.microBatchScale(1, 3));
  }

  // ---- item 10: divergence beyond NaN ----

  private Path data() throws Exception {
    Path p = tmp.resolve("syn.jsonl");
    Files.write(
        p, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(200, 64, 8, 16, 3, 3)));
    return p;
  }

  private static void assertDiverged(Cli.Run t, Path run, String what) throws Exception {
    assertEquals(3, t.code(), t.err());
    assertTrue(
        t.err().contains("rme: error: training diverged") && t.err().contains(what), t.err());
    assertTrue(
        t.err().contains("lower --lr")
            && t.err().contains("--max-grad-norm")
            && t.err().contains("--warmup-ratio"),
        "advice: " + t.err());
    assertFalse(
        Files.exists(run.resolve("model.safetensors")), "a diverged run must not look complete");
  }

  @Test
  void learningRateOneMillionExitsThreeWithAdviceNamingTheLastGoodCheckpoint() throws Exception {
    Path run = tmp.resolve("run");
    // The default warmup makes step 1's lr 0 (a good step, checkpointed); step 2 throws the weights
    // to ~1e6,
    // which the old code trained on to the end and wrote as a model with accuracy 0 and exit 0.
    Cli.Run t =
        Cli.rme(
            "train-rm",
            "--model",
            PRESET.toString(),
            "--data",
            data().toString(),
            "--out",
            run.toString(),
            "--steps",
            "20",
            "--batch-size",
            "4",
            "--grad-accum",
            "1",
            "--lr",
            "1e6",
            "--save-every",
            "1",
            "--eval-fraction",
            "0.1");
    assertDiverged(t, run, "the weights exploded");
    assertTrue(t.err().contains("at step 2 of 20"), t.err());
    assertTrue(
        t.err()
            .contains(
                "Last good checkpoint: " + run.resolve("checkpoints").resolve("step-00000001")),
        t.err());
    // The exploded update reached no checkpoint.
    try (var s = Files.list(run.resolve("checkpoints"))) {
      assertEquals(List.of("step-00000001"), s.map(p -> p.getFileName().toString()).toList());
    }
  }

  @Test
  void collapsedModelWithVanishedGradientExitsThree() throws Exception {
    // lr 3e3 without warmup: after one step every reward is the same (loss log 2) and no gradient
    // is left.
    Path run = tmp.resolve("run");
    Cli.Run t =
        Cli.rme(
            "train-rm",
            "--model",
            PRESET.toString(),
            "--data",
            data().toString(),
            "--out",
            run.toString(),
            "--steps",
            "20",
            "--batch-size",
            "4",
            "--grad-accum",
            "1",
            "--lr",
            "3e3",
            "--warmup-ratio",
            "0",
            "--eval-fraction",
            "0.1");
    assertDiverged(t, run, "the gradient vanished");
    assertTrue(t.err().contains("none (the run diverged before the first checkpoint)"), t.err());
  }

  @Test
  void explodingLossExitsThree() throws Exception {
    Path run = tmp.resolve("run");
    Cli.Run t =
        Cli.rme(
            "train-rm",
            "--model",
            PRESET.toString(),
            "--data",
            data().toString(),
            "--out",
            run.toString(),
            "--steps",
            "20",
            "--batch-size",
            "4",
            "--grad-accum",
            "1",
            "--lr",
            "1e2",
            "--eval-fraction",
            "0.1");
    assertDiverged(t, run, "the loss exploded");
  }

  @Test
  void healthyRunStillExitsZero() throws Exception {
    Path run = tmp.resolve("run");
    Cli.Run t =
        Cli.rme(
            "train-rm",
            "--model",
            PRESET.toString(),
            "--data",
            data().toString(),
            "--out",
            run.toString(),
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--grad-accum",
            "2",
            "--lr",
            "1e-3",
            "--eval-fraction",
            "0.1");
    assertEquals(0, t.code(), t.err());
    assertTrue(Files.exists(run.resolve("model.safetensors")));
    JsonNode fin = JSON.readTree(run.resolve("run.json").toFile()).get("final_eval");
    assertTrue(fin.get("accuracy").asDouble() > 0.6, fin.toString());
  }

  @Test
  void causalLmTrainingStopsWhenItsWeightsExplode() {
    // The SFT trainer shares the step shape: lr 1e6 without warmup throws its weights to ~1e6 in
    // one step.
    dev.rewardensemble.config.LlamaConfig c =
        new dev.rewardensemble.config.LlamaConfig(
            12, 16, 32, 2, 2, 2, 8, 32, 1e-6, 10000, 0, 1, 2, false);
    List<int[]> seqs = List.of(new int[] {1, 4, 5, 6, 7, 2}, new int[] {1, 8, 9, 2});
    List<Integer> prompts = List.of(2, 2);
    dev.rewardensemble.train.LmTrainConfig tc =
        new dev.rewardensemble.train.LmTrainConfig(
            2, 10, 1e6, 0.0, Schedule.Kind.CONSTANT, 0.0, 0.0, false, 1);
    try (dev.rewardensemble.train.LmTrainer t =
        new dev.rewardensemble.train.LmTrainer(
            c,
            dev.rewardensemble.train.LmTrainer.initialWeights(c, 3),
            tc,
            ExecConfig.deterministic())) {
      dev.rewardensemble.train.TrainingDivergedException e =
          org.junit.jupiter.api.Assertions.assertThrows(
              dev.rewardensemble.train.TrainingDivergedException.class,
              () -> {
                for (int i = 0; i < 10; i++) {
                  t.trainStep(seqs, prompts);
                }
              });
      assertTrue(
          e.getMessage().contains("at step 1")
              && e.getMessage().contains("the weights exploded")
              && e.getMessage().contains("lower the learning rate"),
          e.getMessage());
    }
    // and a sane learning rate trains through.
    dev.rewardensemble.train.LmTrainConfig ok =
        new dev.rewardensemble.train.LmTrainConfig(
            2, 10, 3e-3, 0.0, Schedule.Kind.CONSTANT, 0.0, 1.0, false, 1);
    try (dev.rewardensemble.train.LmTrainer t =
        new dev.rewardensemble.train.LmTrainer(
            c,
            dev.rewardensemble.train.LmTrainer.initialWeights(c, 3),
            ok,
            ExecConfig.deterministic())) {
      for (int i = 0; i < 10; i++) {
        t.trainStep(seqs, prompts);
      }
    }
  }

  @Test
  void ppoStopsWhenItsWeightsExplode() throws Exception {
    ResumeExactnessTest helper = new ResumeExactnessTest();
    dev.rewardensemble.train.TrainingDivergedException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            dev.rewardensemble.train.TrainingDivergedException.class,
            () -> helper.ppo(tmp.resolve("ppo"), false, TrainListener.NONE, 1e6));
    assertTrue(
        e.getMessage().contains("PPO diverged at iteration 1")
            && e.getMessage().contains("exploded")
            && e.getMessage().contains("lower --lr"),
        e.getMessage());
    assertFalse(Files.exists(tmp.resolve("ppo").resolve("policy")));
  }

  @Test
  void guardRules() {
    DivergenceGuard g = new DivergenceGuard(0.5);
    assertEquals(1e4, g.weightLimit());
    assertNull(
        g.checkGradients(0.69, 0.0, true),
        "a zero gradient at the first step has no healthy one before it");
    assertNull(g.checkGradients(0.69, 5.0, true));
    assertNull(g.checkGradients(1e-30, 0.0, true), "fitted pairs (loss ~0) are not a collapse");
    assertNull(
        g.checkGradients(0.0, 0.0, true), "a bootstrap step that drew no pair is not a collapse");
    assertNull(g.checkGradients(0.7, 3.0, true));
    assertNotNull(
        g.checkGradients(0.6931, 0.0, true), "zero gradient on a live loss after a non-zero one");
    assertNull(g.checkGradients(689, 3.0, true), "below 1e3 x max(1, first loss 0.69)");
    assertNotNull(g.checkGradients(1001, 3.0, true));
    assertNotNull(g.checkGradients(Double.NaN, 3.0, true));
    assertNotNull(g.checkGradients(0.7, 3.0, false));
    assertNull(g.checkWeights(new double[] {9e3, 1e6}));
    assertNotNull(g.checkWeights(new double[] {2e4, 1e6}));
    assertNotNull(g.checkWeights(new double[] {1.0, Double.POSITIVE_INFINITY}));
    assertNotNull(g.checkWeights(new double[] {Double.NaN, 1.0}));
    assertEquals(5e4, new DivergenceGuard(5).weightLimit());
  }
}
