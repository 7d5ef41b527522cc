package dev.rewardensemble.config;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class OneDnnTest {
  private static final List<String> AVX2 = List.of("fpu", "sse2", "avx", "avx2", "fma");
  private static final List<String> AVX512_BF16 =
      List.of("avx2", "avx512f", "avx512bw", "avx512_bf16");

  @Test
  void followsTensorFlowsDefaultByCpuFlags() {
    assertFalse(OneDnn.decide(null, "Linux", "amd64", AVX2), "AVX2-only: Eigen");
    assertTrue(OneDnn.decide(null, "Linux", "amd64", AVX512_BF16));
    assertTrue(OneDnn.decide(null, "Linux", "x86_64", List.of("avx2", "avx_vnni")));
    assertTrue(OneDnn.decide(null, "Linux", "amd64", List.of("amx_tile")));
    assertFalse(OneDnn.decide(null, "Linux", "amd64", List.of("avx512f")), "AVX-512 alone");
    assertFalse(OneDnn.decide(null, "Linux", "amd64", null), "flags unknown");
    assertFalse(OneDnn.decide(null, "Mac OS X", "aarch64", AVX512_BF16));
    assertFalse(OneDnn.decide(null, "Linux", "aarch64", AVX512_BF16));
  }

  @Test
  void theEnvironmentVariableWinsWhenItIsABoolean() {
    assertTrue(OneDnn.decide("1", "Linux", "amd64", AVX2));
    assertTrue(OneDnn.decide("true", "Linux", "amd64", AVX2));
    assertFalse(OneDnn.decide("0", "Linux", "amd64", AVX512_BF16));
    assertFalse(OneDnn.decide("False", "Linux", "amd64", AVX512_BF16));
    // anything else: TensorFlow warns and keeps its default
    assertTrue(OneDnn.decide("yes", "Linux", "amd64", AVX512_BF16));
    assertFalse(OneDnn.decide("yes", "Linux", "amd64", AVX2));
  }

  @Test
  void bfloat16OpsNeedAvx512OrAvxNeConvert() {
    assertFalse(OneDnn.bfloat16Capable(AVX2), "AVX2-only: bfloat16 products stay on Eigen");
    assertTrue(OneDnn.bfloat16Capable(AVX512_BF16));
    assertTrue(OneDnn.bfloat16Capable(List.of("avx2", "avx512f")), "AVX-512 without BF16");
    assertTrue(OneDnn.bfloat16Capable(List.of("avx2", "avx_vnni", "avx_ne_convert")));
    assertFalse(OneDnn.bfloat16Capable(List.of("avx2", "avx_vnni")), "AVX-VNNI alone");
    assertFalse(OneDnn.bfloat16Capable(null));
  }

  @Test
  void thisProcessReadsItsCpuFlagsAndAppliesTheRule() {
    if (java.nio.file.Files.isReadable(java.nio.file.Path.of("/proc/cpuinfo"))) {
      assertFalse(OneDnn.cpuFlags().isEmpty(), "flags read from /proc/cpuinfo");
    }
    org.junit.jupiter.api.Assertions.assertEquals(
        OneDnn.decide(
            System.getenv("TF_ENABLE_ONEDNN_OPTS"),
            System.getProperty("os.name", ""),
            System.getProperty("os.arch", ""),
            OneDnn.cpuFlags()),
        OneDnn.enabled());
    org.junit.jupiter.api.Assertions.assertEquals(
        OneDnn.enabled() && OneDnn.bfloat16Capable(OneDnn.cpuFlags()), OneDnn.bfloat16Products());
    // The build says which kernels each test run has (pom.xml: oneDNN for the suite on Linux
    // x86-64, as ./rme runs; Eigen for the "eigen" execution).
    String expect = System.getProperty("rme.expectOneDnn");
    if (expect != null && !expect.isEmpty()) {
      org.junit.jupiter.api.Assertions.assertEquals(
          Boolean.parseBoolean(expect), OneDnn.enabled(), "TF_ENABLE_ONEDNN_OPTS of this run");
    }
  }
}
