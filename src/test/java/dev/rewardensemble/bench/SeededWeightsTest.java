package dev.rewardensemble.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.TensorBytes;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.model.Transformers;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The benchmark's seeded weights are generated when streamed (a 1.2B-parameter preset costs no
 * heap), give the same values on every read, and as bfloat16 behave as a bf16 checkpoint.
 */
class SeededWeightsTest {
  private static ModelConfig preset(String name) throws Exception {
    Path p = Path.of("tf-graphs", name);
    return BenchModels.config(BenchModels.presetJson(p), p.toString());
  }

  @Test
  void aBillionParameterPresetIsHeldWithoutItsValues() throws Exception {
    ModelConfig c = preset("llama-2048-gqa.json");
    // 1.2B float32 values would be 5 GB: far above a test JVM's heap, so nothing may be generated
    LazyWeights w = BenchModels.weights(c, 3, 42, Precision.FLOAT32);
    for (String key : Transformers.parameterShapes(c).keySet()) {
      assertTrue(w.isLazy(key), key);
    }
    assertArrayEquals(new long[] {128256, 2048}, w.shape("model.embed_tokens.weight"));
    assertArrayEquals(new long[] {3, 2048}, w.shape(RewardHeads.KEY));
    LazyWeights causal = BenchModels.causalWeights(c, 42, Precision.BFLOAT16);
    assertTrue(LazyWeights.allBf16(causal), "tied: no lm_head, every tensor BF16");
    assertFalse(causal.containsKey("lm_head.weight"));
  }

  @Test
  void everyReadGivesTheSameValuesAndTensorsDiffer() throws Exception {
    ModelConfig c = preset("tiny-llama.json");
    LazyWeights a = BenchModels.weights(c, 1, 7, Precision.FLOAT32);
    LazyWeights b = BenchModels.weights(c, 1, 7, Precision.FLOAT32);
    String q = "model.layers.0.self_attn.q_proj.weight";
    FloatTensor first = a.get(q);
    assertArrayEquals(first.data(), a.get(q).data(), 0f);
    assertArrayEquals(first.data(), b.get(q).data(), 0f);
    FloatTensor k = a.get("model.layers.0.self_attn.k_proj.weight");
    assertFalse(first.data()[0] == k.data()[0] && first.data()[1] == k.data()[1]);
    // N(0, 0.02): the sample's standard deviation
    double ss = 0;
    for (float v : first.data()) {
      ss += v * v;
    }
    assertEquals(0.02, Math.sqrt(ss / first.data().length), 0.002);
    assertArrayEquals(
        new float[] {1f, 1f}, java.util.Arrays.copyOf(a.get("model.norm.weight").data(), 2), 0f);
    // another seed, other values
    assertFalse(
        first.data()[0] == BenchModels.weights(c, 1, 8, Precision.FLOAT32).get(q).data()[0]);
  }

  @Test
  void bfloat16IsTheFloat32ValuesRoundedAndStoredAsBf16() throws Exception {
    ModelConfig c = preset("tiny-gpt2.json");
    LazyWeights f32 = BenchModels.weights(c, 2, 3, Precision.FLOAT32);
    LazyWeights bf16 = BenchModels.weights(c, 2, 3, Precision.BFLOAT16);
    for (String key : Transformers.parameterShapes(c).keySet()) {
      assertEquals("BF16", bf16.storedDtype(key), key);
      float[] x = f32.get(key).data();
      float[] y = bf16.get(key).data();
      for (int i = 0; i < x.length; i++) {
        assertEquals(TensorBytes.fromBfloat16(TensorBytes.toBfloat16(x[i])), y[i], 0f, key);
      }
    }
    float[] h = bf16.get(RewardHeads.KEY).data();
    for (float v : h) {
      assertEquals(TensorBytes.fromBfloat16(TensorBytes.toBfloat16(v)), v, 0f);
    }
    // streamed as BF16 bytes: two per value, the rounded value's bits
    String key = "transformer.h.0.attn.c_attn.weight";
    long n = FloatTensor.numElements(bf16.shape(key));
    java.nio.ByteBuffer all = java.nio.ByteBuffer.allocate((int) n * 2);
    try (LazyWeights.Reader r = bf16.open()) {
      r.stream(
          key,
          Precision.BFLOAT16,
          (chunk, offset) -> all.put((int) offset, chunk, chunk.position(), chunk.remaining()));
    }
    all.order(java.nio.ByteOrder.LITTLE_ENDIAN);
    float[] want = f32.get(key).data();
    for (int i = 0; i < n; i++) {
      assertEquals(TensorBytes.toBfloat16(want[i]), all.getShort(2 * i));
    }
  }
}
