package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.LmHead;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class LmTrainerTest {
  static final LlamaConfig TINY =
      new LlamaConfig(12, 32, 64, 1, 2, 2, 16, 32, 1e-6, 10000.0, 0, 1, 2, false);

  static final List<int[]> SEQS =
      List.of(
          new int[] {1, 3, 4, 5, 6, 7, 2},
          new int[] {1, 4, 3, 8, 9, 2},
          new int[] {1, 5, 10, 11, 3, 3, 2},
          new int[] {1, 6, 9, 2});
  static final List<Integer> PROMPTS = List.of(3, 3, 2, 2);

  @Test
  void memorisesAFewSequences() {
    for (boolean left : new boolean[] {false, true}) {
      LmTrainConfig tc =
          new LmTrainConfig(4, 150, 1e-2, 0.0, Schedule.Kind.CONSTANT, 0.0, 1.0, left, 1);
      try (LmTrainer t =
          new LmTrainer(TINY, LmTrainer.initialWeights(TINY, 3), tc, ExecConfig.deterministic())) {
        double first = t.trainStep(SEQS, PROMPTS);
        assertEquals(Math.log(12), first, 0.1, "random init starts near log V");
        double last = first;
        for (int i = 1; i < 150; i++) {
          last = t.trainStep(SEQS, PROMPTS);
        }
        assertTrue(last < 0.05 * first, "left=" + left + ": loss " + first + " -> " + last);
        assertEquals(last, t.loss(SEQS, PROMPTS), 0.05);
        assertThrows(IllegalStateException.class, () -> t.trainStep(SEQS, PROMPTS));
      }
    }
  }

  @Test
  void promptTokensAreNotTrained() {
    // Only the prompt differs between the two batches: same loss.
    LmTrainConfig tc = LmTrainConfig.defaults(2);
    try (LmTrainer t =
        new LmTrainer(TINY, LmTrainer.initialWeights(TINY, 3), tc, ExecConfig.deterministic())) {
      double a = t.loss(List.of(new int[] {1, 3, 4, 5, 2}), List.of(3));
      double b = t.loss(List.of(new int[] {1, 3, 4, 5, 2}), List.of(4));
      assertNotEquals(a, b); // different response spans
      double c =
          t.loss(List.of(new int[] {1, 3, 4, 5, 2}, new int[] {1, 3, 4, 5, 2}), List.of(3, 3));
      assertEquals(a, c, 1e-6);
    }
  }

  @Test
  void frozenWeightsStayBitIdentical() {
    Map<String, FloatTensor> init = LmTrainer.initialWeights(TINY, 5);
    LmTrainConfig tc = LmTrainConfig.defaults(3).withLr(1e-2);
    try (LmTrainer t =
        new LmTrainer(TINY, init, tc, ExecConfig.deterministic(), k -> k.equals(LmHead.KEY))) {
      assertEquals(List.of(LmHead.KEY), t.trainableNames());
      for (int i = 0; i < 3; i++) {
        t.trainStep(SEQS, PROMPTS);
      }
      Map<String, FloatTensor> after = t.weights();
      for (String k : init.keySet()) {
        if (k.equals(LmHead.KEY)) {
          assertTrue(!java.util.Arrays.equals(init.get(k).data(), after.get(k).data()), k);
        } else {
          assertArrayEquals(init.get(k).data(), after.get(k).data(), k);
        }
      }
    }
  }
}
