package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.LmHead;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * PPO on a toy task with a known reward: the number of times token 5 appears in the response, minus
 * 0.1 per token. The reward must rise while the KL to the reference stays bounded; without the KL
 * penalty the KL grows faster.
 */
class PpoTrainerTest {
  static final int GOOD = 5;

  static LlamaConfig config() {
    return new LlamaConfig(16, 32, 64, 2, 4, 2, 8, 64, 1e-6, 10000, 0, 1, 2, false);
  }

  static Map<String, FloatTensor> policy(LlamaConfig c) {
    Map<String, FloatTensor> w = new LinkedHashMap<>(Init.trunk(c, 3));
    w.put(
        LmHead.KEY,
        Init.normal(new long[] {c.vocabSize(), c.hiddenSize()}, 0.02, new SplittableRandom(4)));
    return w;
  }

  static SequenceScorer toyReward() {
    return SequenceScorer.function(
        (p, r) -> {
          double s = 0;
          for (int t : r) {
            s += t == GOOD ? 1 : 0;
          }
          return s - 0.1 * r.length;
        });
  }

  /** 16 three-token prompts. */
  static List<int[]> prompts() {
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < 16; i++) {
      prompts.add(new int[] {1, 3 + i % 10, 4 + i % 7});
    }
    return prompts;
  }

  record Run(double firstScore, double lastScore, double lastKl) {}

  static Run run(double klCoef, int iterations) {
    LlamaConfig c = config();
    Map<String, FloatTensor> w = policy(c);
    Map<String, FloatTensor> trunk = new LinkedHashMap<>(w);
    trunk.remove(LmHead.KEY);
    PpoConfig cfg =
        PpoConfig.builder()
            .rolloutBatch(16)
            .stepBatch(8)
            .lr(3e-3)
            .warmupSteps(2)
            .klCoef(klCoef)
            .temperature(1.0)
            .topP(1.0)
            .maxNewTokens(8)
            .seed(7)
            .build();
    List<int[]> prompts = prompts();
    try (PpoTrainer t =
        new PpoTrainer(c, w, c, trunk, toyReward(), cfg, ExecConfig.deterministic())) {
      List<Double> scores = new ArrayList<>();
      double kl = 0;
      for (int i = 0; i < iterations; i++) {
        PpoTrainer.Stats s = t.step(prompts);
        scores.add(s.meanScore());
        kl = s.kl();
      }
      double first = (scores.get(0) + scores.get(1)) / 2;
      double last = (scores.get(iterations - 1) + scores.get(iterations - 2)) / 2;
      return new Run(first, last, kl);
    }
  }

  /**
   * Rollouts over a vocabulary larger than {@link Sampling#CANDIDATES} with top-p: the decode loop
   * in the trainer's graph draws nuclei among candidates (a spread head) and drops rows that ended
   * (an end-of-sequence row three times as long) from its head; the iterations train as usual.
   */
  @Test
  void rolloutsOverALargeVocabularyWithEndedRowsTrain() {
    LlamaConfig c = new LlamaConfig(2048, 32, 64, 2, 4, 2, 8, 64, 1e-6, 10000, 0, 1, 2, false);
    Map<String, FloatTensor> w = new LinkedHashMap<>(Init.trunk(c, 3));
    FloatTensor head =
        Init.normal(new long[] {c.vocabSize(), c.hiddenSize()}, 1.0, new SplittableRandom(4));
    for (int j = 0; j < c.hiddenSize(); j++) {
      head.data()[2 * c.hiddenSize() + j] *= 3; // the end-of-sequence token
    }
    w.put(LmHead.KEY, head);
    Map<String, FloatTensor> trunk = new LinkedHashMap<>(w);
    trunk.remove(LmHead.KEY);
    PpoConfig cfg =
        PpoConfig.builder()
            .rolloutBatch(16)
            .stepBatch(8)
            .lr(1e-3)
            .klCoef(0.1)
            .temperature(1.0)
            .topP(0.9)
            .maxNewTokens(12)
            .seed(7)
            .build();
    List<int[]> prompts = prompts();
    try (PpoTrainer t =
        new PpoTrainer(c, w, c, trunk, toyReward(), cfg, ExecConfig.deterministic())) {
      for (int i = 0; i < 3; i++) {
        PpoTrainer.Stats s = t.step(prompts);
        assertTrue(
            Double.isFinite(s.policyLoss()) && Double.isFinite(s.kl()) && s.entropy() > 0,
            s.toString());
        assertTrue(s.eosFraction() > 0 && s.eosFraction() < 1, "some rows ended: " + s);
      }
    }
  }

  @Test
  void ppoRaisesTheRewardWithBoundedKlAndTheKlPenaltyRestrainsIt() {
    Run withKl = run(0.2, 25);
    Run noKl = run(0.0, 25);
    assertTrue(
        withKl.lastScore() > withKl.firstScore() + 1.0, "reward should rise clearly: " + withKl);
    assertTrue(
        noKl.lastKl() > withKl.lastKl(),
        "without the KL penalty the KL should grow faster: " + noKl + " vs " + withKl);
    assertTrue(
        Double.isFinite(withKl.lastKl()) && withKl.lastKl() < noKl.lastKl(), withKl.toString());
  }
}
