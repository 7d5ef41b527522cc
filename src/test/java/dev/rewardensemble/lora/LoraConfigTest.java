package dev.rewardensemble.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.model.Llama;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.testing.Fixtures;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.op.Ops;

class LoraConfigTest {

  static ModelConfig llama() throws Exception {
    return HfCheckpoint.load(Fixtures.dir("llama-seqcls")).config();
  }

  @Test
  void defaultsAndScaling() throws Exception {
    LoraConfig d = LoraConfig.defaults(llama());
    assertEquals(new LoraConfig(8, 16, 0.05, Llama.LORA_TARGETS, 0), d);
    assertEquals(2.0, d.scaling());
    assertEquals(0, d.forkLayer(llama()));
    assertEquals(1, d.withLoraLayers(1).forkLayer(llama()));
    assertEquals(0, d.withLoraLayers(2).forkLayer(llama()));
  }

  @Test
  void badValuesAreNamed() throws Exception {
    assertTrue(
        msg(() -> new LoraConfig(0, 16, 0, Llama.LORA_TARGETS, 0))
            .contains("rank r must be > 0, got 0"));
    assertTrue(msg(() -> new LoraConfig(8, -1, 0, Llama.LORA_TARGETS, 0)).contains("got -1.0"));
    assertTrue(
        msg(() -> new LoraConfig(8, 16, 1.0, Llama.LORA_TARGETS, 0)).contains("lora_dropout"));
    assertTrue(msg(() -> new LoraConfig(8, 16, 0, List.of(), 0)).contains("target_modules"));
    assertTrue(
        msg(() -> new LoraConfig(8, 16, 0, List.of("q_proj", "q_proj"), 0))
            .contains("'q_proj' is listed twice"));
    assertTrue(msg(() -> new LoraConfig(8, 16, 0, Llama.LORA_TARGETS, -1)).contains("got -1"));
    ModelConfig c = llama();
    String m = msg(() -> LoraConfig.llama().withTargets(List.of("q_proj", "c_attn")).checkFor(c));
    assertTrue(
        m.contains("'c_attn'")
            && m.contains("q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"),
        m);
    assertTrue(
        msg(() -> LoraConfig.llama().withLoraLayers(3).checkFor(c))
            .contains("loraLayers 3 exceeds the model's 2 blocks"));
  }

  @Test
  void modulesOnlyAboveTheForkAndPeftInitialisation() throws Exception {
    ModelConfig c = llama();
    LoraConfig lora = new LoraConfig(4, 8, 0, List.of("q_proj", "down_proj"), 1);
    List<StackedLora.Module> modules = StackedLora.modules(c, lora);
    assertEquals(
        List.of("model.layers.1.self_attn.q_proj", "model.layers.1.mlp.down_proj"),
        modules.stream().map(StackedLora.Module::module).toList());
    assertEquals(
        new StackedLora.Module("model.layers.1.mlp.down_proj", "down_proj", 1, 160, 64),
        modules.get(1));
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p2 = new ParameterStore(tf);
      StackedLora two = StackedLora.inference(tf, c, lora, 2, p2);
      assertArrayEquals(new long[] {2, 160, 4}, p2.shape("model.layers.1.mlp.down_proj.lora_A"));
      assertArrayEquals(new long[] {2, 4, 64}, p2.shape("model.layers.1.mlp.down_proj.lora_B"));
      Map<String, FloatTensor> init = two.initialValues(42);
      float[] a = init.get("model.layers.1.mlp.down_proj.lora_A").data();
      double bound = 1 / Math.sqrt(160);
      double maxAbs = 0;
      for (float v : a) {
        assertTrue(Math.abs(v) <= bound, "A outside the kaiming-uniform bound: " + v);
        maxAbs = Math.max(maxAbs, Math.abs(v));
      }
      assertTrue(maxAbs > 0.9 * bound);
      for (float v : init.get("model.layers.1.mlp.down_proj.lora_B").data()) {
        assertEquals(0f, v);
      }
      assertEquals(init, two.initialValues(42), "seeded");
      // Member 0's values do not depend on K.
      ParameterStore p1 = new ParameterStore(tf);
      StackedLora one = StackedLora.inference(tf, c, lora, 1, p1);
      float[] a1 = one.initialValues(42).get("model.layers.1.mlp.down_proj.lora_A").data();
      assertArrayEquals(a1, java.util.Arrays.copyOf(a, a1.length));
    }
  }

  private static String msg(org.junit.jupiter.api.function.Executable e) {
    return assertThrows(IllegalArgumentException.class, e).getMessage();
  }
}
