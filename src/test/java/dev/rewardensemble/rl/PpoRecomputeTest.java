package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.LmHead;
import dev.rewardensemble.model.Recompute;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.tensorflow.GraphOperation;

/**
 * PPO with activation recomputation ({@code --recompute}): the policy's and value model's blocks
 * are rebuilt in the backward pass, and every gradient of a PPO update (clipped policy loss + value
 * loss, every trained weight of policy and value model) equals the plain {@code tf.gradients} one
 * at 1e-6 of the gradient's largest entry.
 */
class PpoRecomputeTest {

  record Run(List<Map<String, FloatTensor>> grads, boolean rebuiltBlocks) {}

  static Run run(boolean recompute, boolean tied) {
    LlamaConfig c =
        tied
            ? new LlamaConfig(16, 32, 64, 2, 4, 2, 8, 64, 1e-6, 10000, 0, 1, 2, true)
            : PpoTrainerTest.config();
    Map<String, FloatTensor> w = PpoTrainerTest.policy(c);
    Map<String, FloatTensor> trunk = new LinkedHashMap<>(w);
    trunk.remove(LmHead.KEY);
    if (tied) {
      w.remove(LmHead.KEY); // the LM head reads the embeddings
    }
    PpoConfig cfg =
        PpoConfig.builder()
            .rolloutBatch(8)
            .stepBatch(4)
            .epochsPerRollout(1)
            .lr(3e-3)
            .warmupSteps(1)
            .klCoef(0.1)
            .temperature(1.0)
            .topP(1.0)
            .maxNewTokens(6)
            .seed(11)
            .build();
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      prompts.add(i % 2 == 0 ? new int[] {1, 3 + i, 4 + i % 5} : new int[] {1, 7 + i});
    }
    try (PpoTrainer t =
        new PpoTrainer(
            c,
            w,
            c,
            trunk,
            PpoTrainerTest.toyReward(),
            cfg,
            ExecConfig.deterministic().withRecompute(recompute))) {
      List<Map<String, FloatTensor>> grads = new ArrayList<>();
      t.captureGradients(grads);
      t.step(prompts);
      boolean rebuilt = false;
      for (Iterator<GraphOperation> it = t.graph().operations(); it.hasNext(); ) {
        String name = it.next().name();
        rebuilt |= name.startsWith(Recompute.SCOPE) && name.contains("/block");
      }
      return new Run(grads, rebuilt);
    }
  }

  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void recomputedPpoGradientsEqualThePlainOnes(boolean tiedEmbeddings) {
    Run plain = run(false, tiedEmbeddings);
    Run rec = run(true, tiedEmbeddings);
    assertFalse(plain.rebuiltBlocks(), "without --recompute no block is rebuilt");
    assertTrue(rec.rebuiltBlocks(), "with --recompute the blocks are rebuilt in the backward pass");
    // The first update: both runs sampled the same rollout with the same weights.
    Map<String, FloatTensor> a = plain.grads().get(0);
    Map<String, FloatTensor> b = rec.grads().get(0);
    assertEquals(a.keySet(), b.keySet());
    assertTrue(a.keySet().stream().anyMatch(k -> k.startsWith(PpoTrainer.POLICY)));
    assertTrue(a.keySet().stream().anyMatch(k -> k.startsWith(PpoTrainer.VALUE)));
    for (String k : a.keySet()) {
      float[] x = a.get(k).data();
      float[] y = b.get(k).data();
      double max = 0;
      for (float v : x) {
        max = Math.max(max, Math.abs(v));
      }
      assertTrue(max > 0, k + ": zero gradient, nothing compared");
      for (int i = 0; i < x.length; i++) {
        assertEquals(x[i], y[i], 1e-6 * max, k + "[" + i + "]");
      }
    }
  }
}
