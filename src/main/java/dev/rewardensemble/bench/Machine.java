package dev.rewardensemble.bench;

import dev.rewardensemble.config.OneDnn;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.tensorflow.TensorFlow;

/** What the benchmark ran on, and the process's resident memory from {@code /proc/self/status}. */
public final class Machine {
  private Machine() {}

  public static Map<String, Object> describe() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("cpu", cpuField("model name"));
    m.put("cpu_flags_avx512f", OneDnn.cpuFlags().contains("avx512f"));
    m.put("cpu_flags_amx", OneDnn.cpuFlags().contains("amx_tile"));
    m.put("onednn", OneDnn.enabled()); // decides some product forms (Layers.matMul)
    m.put("onednn_bfloat16", OneDnn.bfloat16Products()); // and how bfloat16 products are formed
    m.put("cores", Runtime.getRuntime().availableProcessors());
    m.put("memory_gb", Math.round(memTotalKb() / 1024.0 / 1024.0 * 10) / 10.0);
    m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
    m.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
    m.put("tensorflow", TensorFlow.version());
    m.put("tensorflow_java", "1.1.0");
    return m;
  }

  private static String cpuField(String name) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (line.startsWith(name)) {
          return line.substring(line.indexOf(':') + 1).trim() + " ";
        }
      }
    } catch (IOException e) {
      // not Linux
    }
    return "unknown";
  }

  private static long memTotalKb() {
    return procKb(Path.of("/proc/meminfo"), "MemTotal:");
  }

  /** Peak resident set size (VmHWM) of this process in MiB, or -1 where /proc is missing. */
  public static double peakRssMb() {
    long kb = procKb(Path.of("/proc/self/status"), "VmHWM:");
    return kb < 0 ? -1 : kb / 1024.0;
  }

  /** Current resident set size (VmRSS) in MiB. */
  public static double rssMb() {
    long kb = procKb(Path.of("/proc/self/status"), "VmRSS:");
    return kb < 0 ? -1 : kb / 1024.0;
  }

  static long procKb(Path file, String key) {
    try {
      List<String> lines = Files.readAllLines(file);
      for (String line : lines) {
        if (line.startsWith(key)) {
          return Long.parseLong(line.substring(key.length()).trim().split("\\s+")[0]);
        }
      }
    } catch (IOException | RuntimeException e) {
      // fall through
    }
    return -1;
  }
}
