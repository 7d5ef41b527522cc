package dev.rewardensemble.ensemble;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.Recomputation;
import dev.rewardensemble.lora.LoraConfig;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Training activations under {@code --compute bfloat16}, against hand-computed ones. */
class MemoryPlanBfloat16Test {
  static final long BLOCK = MemoryPlanRecomputeTest.BLOCK;
  static final double F = MemoryPlan.BFLOAT16_ACTIVATION_FACTOR;

  static long bytes(double floats) {
    return (long) (floats * 4 * MemoryPlan.ACTIVATION_CALIBRATION);
  }

  @Test
  void blockInsidesShrinkAndBlockInputsStayFloat32() throws Exception {
    MemoryPlan.Request r =
        new MemoryPlan.Request(
            MemoryPlanRecomputeTest.llama(2),
            EnsembleKind.SINGLE,
            1,
            null,
            MemoryPlan.Mode.TRAIN,
            4,
            1,
            8,
            0,
            false);
    assertEquals(Precision.FLOAT32, r.compute()); // the default
    MemoryPlan.Request b = r.withCompute(Precision.BFLOAT16);
    // Without recomputation: 2 blocks kept + the block being computed, all inside the blocks.
    assertEquals(bytes(3 * BLOCK), MemoryPlan.of(r).bytes("activations"));
    assertEquals(bytes(3 * BLOCK * F), MemoryPlan.of(b).bytes("activations"));
    // With: the 2 block inputs [16, 64] stay float32, the recomputed block shrinks.
    MemoryPlan p = MemoryPlan.of(b.withRecompute(true));
    assertEquals(bytes(2 * 16 * 64 + 2 * BLOCK * F), p.bytes("activations"));
    assertTrue(p.table().contains("bfloat16 compute"), p.table());
    // Everything else is the same; scoring is planned as before.
    assertEquals(
        MemoryPlan.of(r).total() - MemoryPlan.of(r).bytes("activations"),
        MemoryPlan.of(b).total() - MemoryPlan.of(b).bytes("activations"));
    MemoryPlan.Request score = r.withMode(MemoryPlan.Mode.SCORE);
    assertEquals(
        MemoryPlan.of(score).total(), MemoryPlan.of(score.withCompute(Precision.BFLOAT16)).total());
  }

  /**
   * The paper-scale step of README "Paper scale": a 7B K = 3 LoRA phase 2 (r 8, every projection)
   * on 1 pair of 128 tokens over a bf16 checkpoint (streamed, no Java copy), bfloat16 compute.
   * Without recomputation the step was killed by the kernel on the 24 GiB machine (measured), so
   * its plan must not fit in 22 GiB; with every block recomputed it peaked at 16.16 GiB, with the
   * lowest 16 recomputed at 19.62 GiB (bench.ScaleProbe, session 9), and the plans say so; {@code
   * --recompute auto} picks the fewest lowest blocks that fit, and one block fewer does not.
   */
  @Test
  void theSevenBillionLoraStepRecomputesOnlyWhatItMust() throws Exception {
    ModelConfig c = ModelConfigs.read(Path.of("tf-graphs/llama-7b.json"));
    LoraConfig lora = dev.rewardensemble.bench.BenchModels.lora(c, 0); // as ScaleBench trains
    MemoryPlan.Request r =
        new MemoryPlan.Request(
                c, EnsembleKind.LORA, 3, lora, MemoryPlan.Mode.TRAIN, 2, 1, 128, 0, false)
            .withCompute(Precision.BFLOAT16);
    double gib = 1L << 30;
    long budget = 22L << 30;
    double none = MemoryPlan.of(r).total() / gib;
    double all = MemoryPlan.of(r.withRecompute(true)).total() / gib;
    double lowest16 = MemoryPlan.of(r.withRecompute(Recomputation.lowest(16))).total() / gib;
    System.out.printf(
        "7B LoRA K=3 phase 2 plan (bf16): none %.2f GiB, lowest 16 %.2f GiB, all %.2f GiB%n",
        none, lowest16, all);
    assertTrue(none > 22, "no recomputation " + none);
    assertTrue(all > 15.5 && all < 17, "every block recomputed " + all + " (measured 16.16)");
    assertTrue(
        lowest16 > 18.9 && lowest16 < 20.5,
        "lowest 16 recomputed " + lowest16 + " (measured 19.62)");
    // auto plans into 90% of what is available
    Recomputation auto = MemoryPlan.fewestRecomputed(r, budget);
    assertTrue(auto.any() && !auto.all() && auto.blocks() < c.numLayers(), auto.id());
    long share = (long) (budget * MemoryPlan.AUTO_RECOMPUTE_SHARE);
    assertTrue(MemoryPlan.of(r.withRecompute(auto)).total() <= share);
    assertTrue(
        MemoryPlan.of(r.withRecompute(Recomputation.lowest(auto.blocks() - 1))).total() > share);
    // fits as it is: nothing recomputed; nothing fits: null
    assertEquals(Recomputation.NONE, MemoryPlan.fewestRecomputed(r, 64L << 30));
    assertNull(MemoryPlan.fewestRecomputed(r, 8L << 30));
  }

  /**
   * Each block recomputed trades its activations for its input: the plan falls block by block, down
   * to every block but the top one recomputed (the top block's activations hold its input anyway,
   * so recomputing it too saves nothing: within its members' inputs).
   */
  @Test
  void selectiveRecomputationPlansBetweenNoneAndAll() throws Exception {
    ModelConfig c = ModelConfigs.read(Path.of("tf-graphs/llama-7b.json"));
    LoraConfig lora = dev.rewardensemble.bench.BenchModels.lora(c, 0);
    MemoryPlan.Request r =
        new MemoryPlan.Request(
                c, EnsembleKind.LORA, 3, lora, MemoryPlan.Mode.TRAIN, 2, 1, 128, 0, false)
            .withCompute(Precision.BFLOAT16);
    long prev = MemoryPlan.of(r).bytes("activations");
    for (int n = 1; n < c.numLayers(); n++) {
      long a = MemoryPlan.of(r.withRecompute(Recomputation.lowest(n))).bytes("activations");
      assertTrue(a < prev, n + ": " + a + " >= " + prev);
      prev = a;
    }
    long all = MemoryPlan.of(r.withRecompute(true)).bytes("activations");
    assertTrue(Math.abs(all - prev) <= 3L * 2 * 128 * c.hiddenSize() * 4, all + " vs " + prev);
  }
}
