package dev.rewardensemble.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.testing.Fixtures;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.tensorflow.proto.ConfigProto;

class ExecConfigTest {
  @Test
  void validatesAndNamesTheBadValue() {
    var e =
        assertThrows(
            IllegalArgumentException.class,
            () -> new ExecConfig(0, 0, false, "tpu:0", true, "", false));
    assertTrue(e.getMessage().contains("tpu:0"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> new ExecConfig(-1, 0, false));
    assertTrue(e.getMessage().contains("-1"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> new ExecConfig(0, 0, false, "", true, "0;1", false));
    assertTrue(e.getMessage().contains("0;1"), e.getMessage());
  }

  @Test
  void protoCarriesEveryOption() {
    ConfigProto p = new ExecConfig(2, 1, true, "gpu:1", false, "0,1", true).toProto();
    assertEquals(2, p.getIntraOpParallelismThreads());
    assertEquals(1, p.getInterOpParallelismThreads());
    assertTrue(p.getAllowSoftPlacement());
    assertTrue(p.getLogDevicePlacement());
    assertFalse(p.getGpuOptions().getAllowGrowth());
    assertEquals("0,1", p.getGpuOptions().getVisibleDeviceList());
    assertTrue(p.getGraphOptions().getOptimizerOptions().getGlobalJitLevelValue() > 0);
    assertTrue(ExecConfig.defaults().toProto().getGpuOptions().getAllowGrowth());
  }

  @Test
  void anExplicitInterOpCountGetsAPoolOfItsOwn() {
    // TensorFlow sizes its process-wide inter-op pool from the first session: sessions meant to run
    // side by side with one inter-op thread each (the demo's jobs) would share that one thread.
    assertTrue(new ExecConfig(1, 1, false).sessionProto(false).getUsePerSessionThreads());
    assertFalse(new ExecConfig(1, 0, false).sessionProto(false).getUsePerSessionThreads());
    assertTrue(new ExecConfig(1, 0, false).sessionProto(true).getUsePerSessionThreads());
  }

  @Test
  void aGraphPinnedToAMissingGpuFallsBackToTheCpu() throws Exception {
    float[] want = Fixtures.floats(Fixtures.expected("llama-seqcls").get("rewards"));
    try (RewardModel rm =
            RewardModel.load(
                Fixtures.dir("llama-seqcls"),
                new ExecConfig(0, 0, false, "gpu:0", true, "", false));
        RewardModel cpu =
            RewardModel.load(
                Fixtures.dir("llama-seqcls"),
                new ExecConfig(0, 0, false, "cpu", true, "", false))) {
      float[] a = rm.score(List.of(new int[] {5, 6, 7, 8}), 1)[0];
      float[] b = cpu.score(List.of(new int[] {5, 6, 7, 8}), 1)[0];
      Fixtures.assertClose(b, a, 1e-5, 1e-6, "gpu placement with soft fallback");
    }
    assertEquals(3, want.length);
  }

  /**
   * XLA's JIT on the CPU (enabled in-process, no environment variable) gives the fixture's rewards,
   * for a plain reward model and for a LoRA ensemble of three PEFT adapters.
   */
  @Test
  void xlaOnTheCpuGivesTheFixtureRewards() throws Exception {
    ExecConfig xla = new ExecConfig(2, 1, true);
    var seqcls = Fixtures.expected("llama-seqcls");
    float[] want = Fixtures.floats(seqcls.get("rewards"));
    try (RewardModel rm = RewardModel.load(Fixtures.dir("llama-seqcls"), xla)) {
      for (int run = 0;
          run < 3;
          run++) { // XLA compiles lazily: the later runs execute the compiled cluster
        float[][] got = runPadded(rm, seqcls);
        float[] flat = new float[got.length];
        for (int i = 0; i < got.length; i++) {
          flat[i] = got[i][0];
        }
        Fixtures.assertClose(want, flat, 1e-4, 1e-5, "llama-seqcls under XLA, run " + run);
      }
    }
    var lora = Fixtures.expected("llama-lora");
    List<java.nio.file.Path> adapters =
        List.of(0, 1, 2).stream()
            .map(m -> Fixtures.dir("llama-lora").resolve("member" + m))
            .toList();
    try (RewardModel rm = RewardModel.load(Fixtures.dir("llama-seqcls"), adapters, xla)) {
      for (int run = 0; run < 3; run++) {
        float[][] got = runPadded(rm, lora);
        for (int i = 0; i < got.length; i++) {
          Fixtures.assertClose(
              Fixtures.floats(lora.get("member_rewards").get(i)),
              got[i],
              1e-4,
              1e-5,
              "LoRA row " + i + " under XLA, run " + run);
        }
      }
    }
  }

  /** {@code --xla off|auto|on}: parsed by name; auto compiles the fixed-shape graphs only. */
  @Test
  void xlaModesResolvePerGraph() {
    assertEquals(ExecConfig.XlaMode.AUTO, ExecConfig.XlaMode.parse(" Auto "));
    assertEquals(ExecConfig.XlaMode.ON, ExecConfig.XlaMode.parse("on"));
    assertEquals(ExecConfig.XlaMode.OFF, ExecConfig.XlaMode.parse("off"));
    var e = assertThrows(IllegalArgumentException.class, () -> ExecConfig.XlaMode.parse("fast"));
    assertTrue(e.getMessage().contains("'fast'"), e.getMessage());
    ExecConfig auto = new ExecConfig(2, 1, ExecConfig.XlaMode.AUTO);
    // a graph that does not ask (the decode loop, PPO) is not compiled
    assertFalse(auto.xla());
    assertFalse(auto.toProto().getGraphOptions().hasOptimizerOptions());
    // the fixed-shape graphs are
    assertTrue(auto.forFixedShapes().xla());
    assertTrue(auto.forFixedShapes().toProto().getGraphOptions().hasOptimizerOptions());
    assertFalse(new ExecConfig(2, 1, false).forFixedShapes().xla());
    assertTrue(new ExecConfig(2, 1, true).xla());
    // not where it is not known to pay: recomputation (XLA could merge the rebuilt blocks with
    // the forward's) and bfloat16 products stay uncompiled unless --xla on
    ExecConfig bf = auto.withCompute(Precision.BFLOAT16).withRecompute(true).forFixedShapes();
    assertEquals(Precision.BFLOAT16, bf.compute());
    assertTrue(bf.recompute().any());
    assertFalse(bf.xla());
    assertFalse(auto.withRecompute(true).forFixedShapes().xla());
    assertFalse(auto.withCompute(Precision.BFLOAT16).forFixedShapes().xla());
    assertTrue(auto.withXla(ExecConfig.XlaMode.ON).withRecompute(true).forFixedShapes().xla());
  }

  /**
   * Under {@code --xla auto} a reward model compiles its scoring graph and runs each batch padded
   * to a shape bucket; the padding changes no reward: the fixtures' transformers rewards at 1e-4,
   * for a rotary model (Llama) and one with a learned position table (GPT-2, whose bucket is capped
   * at its positions), run after run (XLA compiles on the second).
   */
  @Test
  void autoXlaBucketsScoringBatchesWithTheFixtureRewards() throws Exception {
    ExecConfig auto = new ExecConfig(2, 1, ExecConfig.XlaMode.AUTO);
    for (String name : List.of("llama-seqcls", "gpt2-seqcls")) {
      var fx = Fixtures.expected(name);
      float[] want = Fixtures.floats(fx.get("rewards"));
      int b = fx.get("input_ids").size();
      int t = fx.get("input_ids").get(0).size();
      try (RewardModel rm = RewardModel.load(Fixtures.dir(name), auto);
          RewardModel plain = RewardModel.load(Fixtures.dir(name), new ExecConfig(2, 1, false))) {
        int[] shape = rm.runShape(b, t);
        assertTrue(
            shape[0] > b || shape[1] > t,
            name + ": " + b + " x " + t + " runs unpadded under auto XLA");
        assertEquals(dev.rewardensemble.data.Padding.bucketRows(b), shape[0]);
        assertEquals(
            dev.rewardensemble.data.Padding.bucket(t, rm.config().maxPositions()), shape[1]);
        assertEquals(List.of(b, t), List.of(plain.runShape(b, t)[0], plain.runShape(b, t)[1]));
        for (int run = 0; run < 3; run++) {
          float[][] got = runPadded(rm, fx);
          assertEquals(b, got.length);
          float[] flat = new float[got.length];
          for (int i = 0; i < got.length; i++) {
            flat[i] = got[i][0];
          }
          Fixtures.assertClose(want, flat, 1e-4, 1e-5, name + " under auto XLA, run " + run);
        }
      }
    }
  }

  /**
   * bfloat16 weight products: the fixture's rewards within bfloat16's precision (8-bit mantissa),
   * for a plain model and a LoRA ensemble, and different from float32 (the products really are
   * rounded).
   */
  @Test
  void bfloat16ProductsGiveTheFixtureRewardsWithinItsPrecision() throws Exception {
    ExecConfig bf16 = new ExecConfig(2, 1, false).withCompute(Precision.BFLOAT16);
    var seqcls = Fixtures.expected("llama-seqcls");
    float[] want = Fixtures.floats(seqcls.get("rewards"));
    try (RewardModel rm = RewardModel.load(Fixtures.dir("llama-seqcls"), bf16)) {
      float[][] got = runPadded(rm, seqcls);
      float[] flat = new float[got.length];
      for (int i = 0; i < got.length; i++) {
        flat[i] = got[i][0];
      }
      Fixtures.assertClose(want, flat, 3e-2, 3e-2, "llama-seqcls in bfloat16");
      boolean differs = false;
      for (int i = 0; i < want.length; i++) {
        differs |= Math.abs(want[i] - flat[i]) > 1e-5;
      }
      assertTrue(differs, "bfloat16 rewards equal float32's: the products were not rounded");
    }
    var lora = Fixtures.expected("llama-lora");
    List<java.nio.file.Path> adapters =
        List.of(0, 1, 2).stream()
            .map(m -> Fixtures.dir("llama-lora").resolve("member" + m))
            .toList();
    try (RewardModel rm = RewardModel.load(Fixtures.dir("llama-seqcls"), adapters, bf16)) {
      float[][] got = runPadded(rm, lora);
      for (int i = 0; i < got.length; i++) {
        Fixtures.assertClose(
            Fixtures.floats(lora.get("member_rewards").get(i)),
            got[i],
            3e-2,
            3e-2,
            "LoRA row " + i + " in bfloat16");
      }
    }
    assertEquals(Precision.BFLOAT16, Precision.parse("bf16"));
    var e = assertThrows(IllegalArgumentException.class, () -> Precision.parse("fp8"));
    assertTrue(e.getMessage().contains("fp8"), e.getMessage());
  }

  /**
   * The fixture's padded batch ({@code input_ids}, {@code attention_mask} [B, T]) through {@link
   * RewardModel#run}.
   */
  private static float[][] runPadded(RewardModel rm, com.fasterxml.jackson.databind.JsonNode e) {
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    int b = ids.length;
    int t = ids[0].length;
    int[] flatIds = new int[b * t];
    int[] flatMask = new int[b * t];
    for (int i = 0; i < b; i++) {
      System.arraycopy(ids[i], 0, flatIds, i * t, t);
      System.arraycopy(mask[i], 0, flatMask, i * t, t);
    }
    return rm.run(flatIds, flatMask, b, t);
  }

  /**
   * Run by {@code mvn -Pgpu} (scripts/gpu-fallback-check.sh): the GPU native build is the one on
   * the classpath, and the graphs build and run with it on a machine without a GPU.
   */
  @Test
  @EnabledIfSystemProperty(named = "rme.gpuBuild", matches = "true")
  void theGpuNativeBuildIsLoaded() {
    assertNotNull(
        ClassLoader.getSystemResource(
            "org/tensorflow/internal/c_api/linux-x86_64-gpu/libjnitensorflow.so"),
        "the linux-x86_64-gpu natives are not on the classpath");
    assertNull(
        ClassLoader.getSystemResource(
            "org/tensorflow/internal/c_api/linux-x86_64/libjnitensorflow.so"),
        "the CPU natives are on the classpath too");
  }
}
