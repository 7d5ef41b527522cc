package dev.rewardensemble.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.serving.SavedModels;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The generation workloads: {@code generate-sampled} is one of them (so that {@code rme bench}
 * reports greedy and sampled generation), and the memory probes load their model from a checkpoint
 * on disk (a causal LM as {@code rme generate} does, a reward model as {@code rme score} and {@code
 * rme train-rm} do, like the peer's {@code from_pretrained}) in a fresh process.
 */
class GenerationWorkloadTest {
  @TempDir Path tmp;

  @Test
  void sampledGenerationIsAWorkloadWithTopK50TopP09() {
    assertTrue(Workloads.SINGLE_MODEL.contains(Workloads.GENERATE_SAMPLED));
    assertTrue(BenchRunner.Spec.WORKLOADS.contains(Workloads.GENERATE_SAMPLED));
    var cfg = Workloads.sampled(12, 5);
    assertEquals(12, cfg.maxNewTokens());
    assertTrue(!cfg.greedy() && !cfg.stopAtEos());
    assertEquals(1.0, cfg.temperature());
    assertEquals(50, cfg.topK());
    assertEquals(0.9, cfg.topP());
  }

  @Test
  void theMemoryProbeOfAGenerationWorkloadLoadsTheCheckpoint() throws Exception {
    Path preset = Path.of("tf-graphs/tiny-llama.json");
    ModelConfig c = BenchModels.config(BenchModels.presetJson(preset), preset.toString());
    BenchOptions o = new BenchOptions(2, 12, 2, 0, 1, new ExecConfig(1, 1, false), 7);
    Path causal = tmp.resolve("causal");
    HfCheckpoint.save(
        causal, c, SavedModels.causalLm(c), BenchModels.causalWeights(c, o.seed()), Map.of());
    for (String w : java.util.List.of("generate", Workloads.GENERATE_SAMPLED)) {
      assertTrue(MemoryProbe.run(preset, w, o, causal) > 0, w);
    }
    // A probe over a checkpoint that does not exist fails (so the probe did read it).
    assertThrows(
        IllegalStateException.class,
        () -> MemoryProbe.run(preset, "generate", o, tmp.resolve("missing")));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            Workloads.prepareGeneration("score", c, BenchModels.tokenIds(c, 4, 12, 7), o, causal));
  }

  /**
   * Scoring and training probes load the reward model from a one-head checkpoint on disk, in the
   * storage dtype, as the peer's probes do (not from weights generated in the measured process).
   */
  @Test
  void theMemoryProbeOfARewardWorkloadLoadsTheCheckpoint() throws Exception {
    Path preset = Path.of("tf-graphs/tiny-llama.json");
    ModelConfig c = BenchModels.config(BenchModels.presetJson(preset), preset.toString());
    BenchOptions o =
        new BenchOptions(
            2,
            12,
            2,
            0,
            1,
            new ExecConfig(1, 1, false)
                .withWeights(dev.rewardensemble.config.WeightStorage.BFLOAT16),
            7);
    dev.rewardensemble.config.Precision bf16 = dev.rewardensemble.config.Precision.BFLOAT16;
    Path heads1 = tmp.resolve("heads1");
    HfCheckpoint.save(
        heads1,
        c,
        SavedModels.sequenceClassification(c),
        BenchModels.weights(c, 1, o.seed(), bf16),
        Map.of(),
        bf16);
    for (String w : java.util.List.of("score", "bt-step", "lora-step")) {
      assertTrue(MemoryProbe.run(preset, w, o, heads1) > 0, w);
      assertThrows(
          IllegalStateException.class,
          () -> MemoryProbe.run(preset, w, o, tmp.resolve("missing")),
          w);
    }
  }
}
