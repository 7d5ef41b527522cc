package dev.rewardensemble.ensemble;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.lora.LoraConfig;
import org.junit.jupiter.api.Test;

/**
 * K = 5 and 8 members (issue #19: more members where they are cheap): the memory plan scales the
 * per-member parts by K and nothing else, for the linear and the LoRA ensemble.
 */
class MoreMembersPlanTest {
  @Test
  void linearAndLoraPlansScaleThePerMemberPartsWithK() throws Exception {
    ModelConfig c = MemoryPlanTest.tiny();
    LoraConfig lora = LoraConfig.defaults(c);
    long previousActivations = 0;
    for (int k : new int[] {3, 5, 8}) {
      MemoryPlan linear =
          MemoryPlan.of(MemoryPlan.Request.score(c, EnsembleKind.LINEAR, k, null, 1, 0));
      assertEquals(MemoryPlanTest.M * 4, linear.bytes("trunk weights (frozen)"), "one trunk");
      assertEquals(k * 64L * 4, linear.bytes("reward heads"));

      MemoryPlan.Request r =
          new MemoryPlan.Request(
              c, EnsembleKind.LORA, k, lora, MemoryPlan.Mode.TRAIN, 2, 1, 8, 0, false);
      MemoryPlan p = MemoryPlan.of(r);
      long trained = k * (2 * MemoryPlanTest.A_BLOCK + 64);
      assertEquals(MemoryPlanTest.M * 2, p.bytes("trunk weights (frozen)"), "one trunk, K = " + k);
      assertEquals(trained * 4, p.bytes("trained weights (float32)"));
      assertEquals(trained * 8, p.bytes("AdamW moments"));
      // The K members run batched above the fork: per-token activations grow with K.
      long block = 16L * 1472 + 3L * 2 * 4 * 64;
      long floats = (2L * k + 1) * block + k * 16L * 2 * (6 * 64 + 160);
      assertEquals(
          (long) (floats * 4 * MemoryPlan.ACTIVATION_CALIBRATION),
          p.bytes("activations"),
          "K = " + k);
      assertTrue(p.bytes("activations") > previousActivations);
      previousActivations = p.bytes("activations");
    }
  }
}
