package dev.rewardensemble.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Whether TensorFlow runs its CPU kernels through oneDNN in this process, which decides the fastest
 * form of some weight products ({@link dev.rewardensemble.model.Layers#matMul}). TensorFlow 2.18's
 * own rule (its {@code IsMklEnabled}): the environment variable {@code TF_ENABLE_ONEDNN_OPTS} when
 * set ({@code 1}/{@code true} or {@code 0}/{@code false}); otherwise on Linux x86-64 on when the
 * CPU has one of AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX, off elsewhere (e.g. on an AVX2-only AMD
 * EPYC, where TensorFlow uses Eigen's kernels). Read once per process, as TensorFlow reads it.
 *
 * <p>oneDNN takes bfloat16 ops only on a CPU with AVX-512 or AVX-NE-CONVERT (TensorFlow's {@code
 * IsBF16SupportedByOneDNNOnThisCPU}); elsewhere, oneDNN on or off, bfloat16 products run on Eigen
 * ({@link #bfloat16Products()}).
 */
public final class OneDnn {
  private OneDnn() {}

  /** The CPU flags ({@code /proc/cpuinfo}) for which TensorFlow turns oneDNN on by default. */
  static final Set<String> DEFAULT_ON_FLAGS =
      Set.of("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16");

  private static final List<String> FLAGS = readCpuFlags();

  /** The CPU flags with which oneDNN takes bfloat16 ops. */
  static final Set<String> BFLOAT16_FLAGS = Set.of("avx512f", "avx_ne_convert");

  private static final boolean ENABLED =
      decide(
          System.getenv("TF_ENABLE_ONEDNN_OPTS"),
          System.getProperty("os.name", ""),
          System.getProperty("os.arch", ""),
          FLAGS);

  private static final boolean BFLOAT16 = ENABLED && bfloat16Capable(FLAGS);

  /** Whether oneDNN's kernels run this process's CPU ops. */
  public static boolean enabled() {
    return ENABLED;
  }

  /**
   * Whether oneDNN's kernels run this process's bfloat16 products (with float32 accumulation):
   * oneDNN on and the CPU able ({@link #bfloat16Capable}). Otherwise Eigen's bfloat16 MatMul runs
   * them, which rounds far more ({@link dev.rewardensemble.model.Layers#matMul} then multiplies the
   * operands widened). Measured on an AVX2-only AMD EPYC with {@code TF_ENABLE_ONEDNN_OPTS=1}:
   * float32 {@code MatMul} becomes {@code _MklMatMul}, bfloat16 {@code MatMul} and {@code
   * BatchMatMulV2} stay.
   */
  public static boolean bfloat16Products() {
    return BFLOAT16;
  }

  /** Whether a CPU of these flags (null: unknown) has what oneDNN needs for bfloat16 ops. */
  static boolean bfloat16Capable(List<String> flags) {
    return flags != null && flags.stream().anyMatch(BFLOAT16_FLAGS::contains);
  }

  /** The CPU's flags from {@code /proc/cpuinfo} (e.g. {@code avx2}); empty where unknown. */
  public static List<String> cpuFlags() {
    return FLAGS == null ? List.of() : FLAGS;
  }

  /**
   * TensorFlow's rule for an environment value {@code env} (null: unset), an OS, an architecture
   * and the CPU's flags (null: unknown).
   */
  static boolean decide(String env, String os, String arch, List<String> flags) {
    if (env != null) {
      String v = env.trim().toLowerCase(Locale.ROOT);
      if (v.equals("1") || v.equals("true")) {
        return true;
      }
      if (v.equals("0") || v.equals("false")) {
        return false;
      }
      // TensorFlow warns and keeps its default for any other value
    }
    boolean linuxX86 =
        os.toLowerCase(Locale.ROOT).contains("linux")
            && (arch.equals("amd64") || arch.equals("x86_64"));
    return linuxX86 && flags != null && flags.stream().anyMatch(DEFAULT_ON_FLAGS::contains);
  }

  private static List<String> readCpuFlags() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (line.startsWith("flags")) {
          return List.of(line.substring(line.indexOf(':') + 1).trim().split("\\s+"));
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux: unknown
    }
    return null;
  }
}
