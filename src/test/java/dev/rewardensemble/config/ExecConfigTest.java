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
    var e = assertThrows(IllegalArgumentException.class, () -> new ExecConfig(0, 0, false, "tpu:0", true, "", false));
    assertTrue(e.getMessage().contains("tpu:0"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> new ExecConfig(-1, 0, false));
    assertTrue(e.getMessage().contains("-1"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> new ExecConfig(0, 0, false, "", true, "0;1", false));
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
  void aGraphPinnedToAMissingGpuFallsBackToTheCpu() throws Exception {
    float[] want = Fixtures.floats(Fixtures.expected("llama-seqcls").get("rewards"));
    try (RewardModel rm = RewardModel.load(Fixtures.dir("llama-seqcls"), new ExecConfig(0, 0, false, "gpu:0", true, "", false));
        RewardModel cpu = RewardModel.load(Fixtures.dir("llama-seqcls"), new ExecConfig(0, 0, false, "cpu", true, "", false))) {
      float[] a = rm.score(List.of(new int[] {5, 6, 7, 8}), 1)[0];
      float[] b = cpu.score(List.of(new int[] {5, 6, 7, 8}), 1)[0];
      Fixtures.assertClose(b, a, 1e-5, 1e-6, "gpu placement with soft fallback");
    }
    assertEquals(3, want.length);
  }

  /**
   * Run by {@code mvn -Pgpu} (scripts/gpu-fallback-check.sh): the GPU native build is the one on the
   * classpath, and the graphs build and run with it on a machine without a GPU.
   */
  @Test
  @EnabledIfSystemProperty(named = "rme.gpuBuild", matches = "true")
  void theGpuNativeBuildIsLoaded() {
    assertNotNull(
        ClassLoader.getSystemResource("org/tensorflow/internal/c_api/linux-x86_64-gpu/libjnitensorflow.so"),
        "the linux-x86_64-gpu natives are not on the classpath");
    assertNull(
        ClassLoader.getSystemResource("org/tensorflow/internal/c_api/linux-x86_64/libjnitensorflow.so"),
        "the CPU natives are on the classpath too");
  }
}
