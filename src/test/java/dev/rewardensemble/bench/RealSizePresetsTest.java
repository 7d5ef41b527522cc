package dev.rewardensemble.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.model.Transformers;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The real-size presets of {@code rme bench} parse to the shapes they name, with the published
 * parameter counts, and {@link Flops} counts grouped-query attention's narrower key/value
 * projections.
 */
class RealSizePresetsTest {
  private static ModelConfig preset(String name) throws Exception {
    Path p = Path.of("tf-graphs", name);
    return BenchModels.config(BenchModels.presetJson(p), p.toString());
  }

  private static long trunkParams(ModelConfig c) {
    return Transformers.parameterShapes(c).values().stream()
        .mapToLong(s -> java.util.Arrays.stream(s).reduce(1, (a, b) -> a * b))
        .sum();
  }

  @Test
  void gpt2PresetIsGpt2Small() throws Exception {
    ModelConfig c = preset("gpt2-124m.json");
    assertEquals(768, c.hiddenSize());
    assertEquals(12, c.numLayers());
    assertEquals(12, c.numHeads());
    assertEquals(50257, c.vocabSize());
    assertEquals(1024, c.maxPositions());
    // GPT-2 small with its embedding tied to the LM head: 124,439,808 (transformers' count)
    assertEquals(124_439_808L, trunkParams(c));
    // matmul weights per block: attention 4*768^2, MLP 2*768*3072
    assertEquals(4L * 768 * 768 + 2L * 768 * 3072, Flops.blockMatmulParams(c));
  }

  @Test
  void llamaPresetIsLlama32OneBShape() throws Exception {
    ModelConfig c = preset("llama-2048-gqa.json");
    assertEquals(2048, c.hiddenSize());
    assertEquals(16, c.numLayers());
    assertEquals(32, c.numHeads());
    assertEquals(8, c.numKeyValueHeads());
    assertEquals(64, c.headDim());
    assertEquals(128256, c.vocabSize());
    // per block: q 2048x2048, k and v 2048x512 (8 kv heads of 64), o 2048x2048, MLP 3x2048x8192,
    // two RMSNorms; 16 blocks + tied embedding 128256x2048 + final norm: 1,235,814,400, the size of
    // Llama-3.2-1B
    long block = 2L * 2048 * 2048 + 2L * 2048 * 512 + 3L * 2048 * 8192;
    assertEquals(block, Flops.blockMatmulParams(c));
    assertEquals(16 * (block + 2 * 2048) + 128256L * 2048 + 2048, trunkParams(c));
    assertEquals(1_235_814_400L, trunkParams(c));
  }

  @Test
  void flopsOfGroupedQueryAttention() throws Exception {
    ModelConfig gqa = preset("llama-2048-gqa.json");
    ModelConfig mha =
        BenchModels.config(
            BenchModels.presetJson(Path.of("tf-graphs", "llama-2048-gqa.json"))
                .put("num_key_value_heads", 32),
            "mha");
    // k and v projections shrink from 2048x2048 to 2048x512 each: 2 * 2048 * 1536 fewer weights
    assertEquals(
        2L * 2048 * (2048 - 512), Flops.blockMatmulParams(mha) - Flops.blockMatmulParams(gqa));
    // attention's QK^T and AV run per QUERY head (the kv heads are shared, not fewer products)
    assertEquals(32L * 64, Flops.attnWidth(gqa));
    assertEquals(Flops.attnWidth(mha), Flops.attnWidth(gqa));
    long b = 4;
    long t = 128;
    double perBlock = 2.0 * Flops.blockMatmulParams(gqa) * b * t + 4.0 * 2048 * b * t * t;
    assertEquals(16 * perBlock + 2.0 * 2048 * b, Flops.forward(gqa, b, t, 1), 1.0);
    // forward of the GQA preset: 2 FLOPs per matmul weight per token plus full T x T attention
    assertEquals(
        16 * (2.0 * 60_817_408L * 512 + 4.0 * 2048 * 4 * 128 * 128) + 2.0 * 2048 * 4,
        Flops.forward(gqa, 4, 128, 1),
        1.0);
  }
}
