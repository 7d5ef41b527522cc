package dev.rewardensemble.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;

/**
 * The physical memory a process can still use: the kernel's {@code MemAvailable} (from {@code
 * /proc/meminfo}), capped by the cgroup's limit minus its usage when the process runs in one, plus
 * the resident memory this process already holds (which a plan's runtime cost includes). TensorFlow
 * allocates outside the Java heap, so the heap's size is not the limit.
 *
 * <p>For tests and for planning on behalf of another machine, the system property {@value
 * #PROPERTY} or the environment variable {@value #ENV} (bytes, or a number with {@code KiB}, {@code
 * MiB}, {@code GiB}, {@code TiB}) replaces the measurement.
 *
 * @param bytes memory available to this process's plan
 * @param source how it was found, for messages (e.g. {@code MemAvailable 21.3 GiB + this process
 *     0.4 GiB})
 */
public record AvailableMemory(long bytes, String source) {

  public static final String PROPERTY = "rme.memory.available";
  public static final String ENV = "RME_MEMORY_AVAILABLE";

  public AvailableMemory {
    if (bytes < 0) {
      throw new IllegalArgumentException("available memory must be >= 0, got " + bytes);
    }
  }

  /** What this process may use now (or the override). */
  public static AvailableMemory measure() {
    String forced = System.getProperty(PROPERTY);
    String from = "-D" + PROPERTY;
    if (forced == null || forced.isBlank()) {
      forced = System.getenv(ENV);
      from = ENV;
    }
    if (forced != null && !forced.isBlank()) {
      return new AvailableMemory(parseBytes(forced, from), from + "=" + forced.trim());
    }
    long own = statusKib(Path.of("/proc/self/status"), "VmRSS:").orElse(0L) * 1024;
    Optional<Long> memAvailable =
        statusKib(Path.of("/proc/meminfo"), "MemAvailable:").map(k -> k * 1024);
    long avail;
    StringBuilder src = new StringBuilder();
    if (memAvailable.isPresent()) {
      avail = memAvailable.get();
      src.append("MemAvailable ").append(size(avail));
    } else {
      // No /proc (not Linux): the JVM's view of free physical memory is the best there is.
      avail = osFreeMemory();
      src.append("free physical memory ").append(size(avail));
    }
    Optional<Long> cgroup = cgroupRoom();
    if (cgroup.isPresent() && cgroup.get() < avail) {
      avail = cgroup.get();
      src.append(", cgroup limit leaves ").append(size(avail));
    }
    src.append(" + this process ").append(size(own));
    return new AvailableMemory(avail + own, src.toString());
  }

  /** The cgroup's limit minus its current usage (v2, else v1), when a limit is set. */
  static Optional<Long> cgroupRoom() {
    Path v2 = Path.of("/sys/fs/cgroup/memory.max");
    Path v2cur = Path.of("/sys/fs/cgroup/memory.current");
    Path v1 = Path.of("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    Path v1cur = Path.of("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    for (Path[] p : new Path[][] {{v2, v2cur}, {v1, v1cur}}) {
      Optional<Long> limit = readLong(p[0]);
      // v1 reports "no limit" as a huge number (a page-rounded Long.MAX_VALUE).
      if (limit.isPresent() && limit.get() < (1L << 60)) {
        long used = readLong(p[1]).orElse(0L);
        return Optional.of(Math.max(0, limit.get() - used));
      }
    }
    return Optional.empty();
  }

  private static Optional<Long> readLong(Path p) {
    try {
      String s = Files.readString(p).trim();
      return s.equals("max") ? Optional.empty() : Optional.of(Long.parseLong(s));
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  /** A {@code Key: 123 kB} line of a {@code /proc} status file, in KiB. */
  static Optional<Long> statusKib(Path file, String key) {
    try {
      for (String line : Files.readAllLines(file)) {
        if (line.startsWith(key)) {
          String[] f = line.substring(key.length()).trim().split("\\s+");
          return Optional.of(Long.parseLong(f[0]));
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux, or unreadable: unknown
    }
    return Optional.empty();
  }

  private static long osFreeMemory() {
    java.lang.management.OperatingSystemMXBean os =
        java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
      return sun.getFreeMemorySize();
    }
    return Runtime.getRuntime().maxMemory();
  }

  /**
   * Parses {@code 80GiB}, {@code 512 MiB}, {@code 1.5TiB}, {@code 80GB} (taken as GiB: the
   * difference is 7%, and GPU vendors' "80 GB" means 80 GiB) or plain bytes; {@code what} names the
   * option in the error.
   */
  public static long parseBytes(String text, String what) {
    String s = text.trim().toLowerCase(Locale.ROOT).replace(" ", "");
    long unit = 1;
    String[][] units = {
      {"tib", "40"}, {"tb", "40"}, {"t", "40"},
      {"gib", "30"}, {"gb", "30"}, {"g", "30"},
      {"mib", "20"}, {"mb", "20"}, {"m", "20"},
      {"kib", "10"}, {"kb", "10"}, {"k", "10"},
      {"b", "0"}
    };
    for (String[] u : units) {
      if (s.endsWith(u[0])) {
        unit = 1L << Integer.parseInt(u[1]);
        s = s.substring(0, s.length() - u[0].length());
        break;
      }
    }
    double v;
    try {
      v = Double.parseDouble(s);
    } catch (NumberFormatException e) {
      v = Double.NaN;
    }
    if (!(v >= 0) || v * unit >= Long.MAX_VALUE) {
      throw new IllegalArgumentException(
          what + ": expected a size like 80GiB, 512MiB or a number of bytes, got '" + text + "'");
    }
    return (long) (v * unit);
  }

  /** Bytes as GiB with one decimal ({@code 12.5 GiB}), or MiB below one GiB ({@code 3.2 MiB}). */
  public static String size(double bytes) {
    if (bytes < (1L << 30)) {
      return String.format(Locale.ROOT, "%.1f MiB", bytes / (1L << 20));
    }
    return gib(bytes);
  }

  /** Bytes as GiB with one decimal, e.g. {@code 12.5 GiB}. */
  public static String gib(double bytes) {
    return String.format(Locale.ROOT, "%.1f GiB", bytes / (1L << 30));
  }
}
