package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.WeightStorage;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.TensorBytes;
import dev.rewardensemble.model.LmHead;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * PPO's frozen reference stored in bfloat16 ({@code --weights bfloat16}): its variables are
 * bfloat16 while the policy and value model train in float32, and for a policy on the bfloat16 grid
 * (a bf16 checkpoint) the reference gives exactly the float32 reference's log-probs: the first
 * steps' statistics (KL included) are bit for bit those of float32 storage.
 */
class PpoReferenceStorageTest {

  static Map<String, FloatTensor> onBf16Grid(Map<String, FloatTensor> w) {
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    w.forEach(
        (k, t) -> {
          float[] v = t.data().clone();
          for (int i = 0; i < v.length; i++) {
            v[i] = TensorBytes.fromBfloat16(TensorBytes.toBfloat16(v[i]));
          }
          out.put(k, new FloatTensor(t.shape(), v));
        });
    return out;
  }

  static List<PpoTrainer.Stats> steps(WeightStorage storage, int n) {
    LlamaConfig c = PpoTrainerTest.config();
    Map<String, FloatTensor> w = onBf16Grid(PpoTrainerTest.policy(c));
    Map<String, FloatTensor> trunk = new LinkedHashMap<>(w);
    trunk.remove(LmHead.KEY);
    PpoConfig cfg =
        PpoConfig.builder()
            .rolloutBatch(8)
            .stepBatch(8)
            .lr(3e-3)
            .warmupSteps(1)
            .klCoef(0.2)
            .maxNewTokens(6)
            .seed(7)
            .build();
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      prompts.add(new int[] {1, 3 + i % 10, 4 + i % 7});
    }
    ExecConfig exec = ExecConfig.deterministic().withWeights(storage);
    try (PpoTrainer t = new PpoTrainer(c, w, c, trunk, PpoTrainerTest.toyReward(), cfg, exec)) {
      Precision want = storage == WeightStorage.BFLOAT16 ? Precision.BFLOAT16 : Precision.FLOAT32;
      int reference = 0;
      for (String name : t.params().names()) {
        boolean ref = name.startsWith(PpoTrainer.REFERENCE);
        assertEquals(ref ? want : Precision.FLOAT32, t.params().storage(name), name);
        reference += ref ? 1 : 0;
      }
      assertNotEquals(0, reference);
      // The graph itself: every reference variable op holds bfloat16 (with --weights bfloat16),
      // every policy and value variable float32.
      int walked = 0;
      for (var it = t.graph().operations(); it.hasNext(); ) {
        var op = (org.tensorflow.GraphOperation) it.next();
        if (op.type().startsWith("Variable") && t.params().contains(op.name())) {
          String dtype = op.output(0).dataType().name().replace("_REF", "");
          boolean ref = op.name().startsWith(PpoTrainer.REFERENCE);
          String expected = ref && want == Precision.BFLOAT16 ? "DT_BFLOAT16" : "DT_FLOAT";
          assertEquals(expected, dtype, op.name());
          walked++;
        }
      }
      assertEquals(t.params().names().size(), walked, "every variable is an op of the graph");
      List<PpoTrainer.Stats> out = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        out.add(t.step(prompts));
      }
      return out;
    }
  }

  @Test
  void bfloat16ReferenceOfABf16PolicyIsExact() {
    List<PpoTrainer.Stats> f32 = steps(WeightStorage.FLOAT32, 2);
    List<PpoTrainer.Stats> bf16 = steps(WeightStorage.BFLOAT16, 2);
    for (int i = 0; i < f32.size(); i++) {
      assertEquals(f32.get(i).kl(), bf16.get(i).kl(), 0.0, "step " + i);
      assertEquals(f32.get(i).meanScore(), bf16.get(i).meanScore(), 0.0, "step " + i);
      assertEquals(f32.get(i).policyLoss(), bf16.get(i).policyLoss(), 0.0, "step " + i);
    }
    assertNotEquals(0.0, f32.get(1).kl(), "the policy moved away from the reference");
  }
}
