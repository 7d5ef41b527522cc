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
 * reports greedy and sampled generation), and the memory probe of a generation workload loads the
 * causal LM from a checkpoint on disk (as {@code rme generate} and the peer's {@code
 * from_pretrained} do) in a fresh process.
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
}
