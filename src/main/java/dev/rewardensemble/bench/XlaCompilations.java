package dev.rewardensemble.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Counts XLA's compilations from TensorFlow's own record of them: with {@code
 * --tf_xla_persistent_cache_directory=DIR} in {@code TF_XLA_FLAGS} (the {@code rme} launcher sets
 * one), XLA's device compiler writes every executable it compiles to {@code DIR} as one {@code .pb}
 * file (written to a temporary name, then renamed), and writes nothing for an executable it finds
 * there or in its in-memory cache. So the {@code .pb} files that appear in the directory during a
 * piece of work are exactly the compilations of that work — one per compiled cluster and input
 * shape (a graph is usually split into several clusters) — as long as no other process compiles
 * into the same directory at the same time. Checked against TensorFlow's own log ({@code
 * TF_CPP_VMODULE=device_compiler=2}: one "Instantly compiling" line per new file).
 */
public final class XlaCompilations {
  private final Path dir;
  private final Set<String> before;

  private XlaCompilations(Path dir) {
    this.dir = dir;
    this.before = entries(dir);
  }

  /** The persistent cache directory named in {@code flags} (a {@code TF_XLA_FLAGS} value). */
  static Optional<Path> cacheDirectory(String flags) {
    if (flags == null) {
      return Optional.empty();
    }
    String key = "--tf_xla_persistent_cache_directory=";
    Optional<Path> out = Optional.empty();
    for (String f : flags.trim().split("\\s+")) {
      if (f.startsWith(key) && f.length() > key.length()) {
        out = Optional.of(Path.of(f.substring(key.length()))); // the last one wins, as in TF
      }
    }
    return out;
  }

  /**
   * Starts counting in this process's persistent cache directory, or empty when {@code
   * TF_XLA_FLAGS} names none (then compilations are not counted).
   */
  public static Optional<XlaCompilations> start() {
    return cacheDirectory(System.getenv("TF_XLA_FLAGS")).map(XlaCompilations::new);
  }

  /** For a given directory (tests). */
  static XlaCompilations in(Path dir) {
    return new XlaCompilations(dir);
  }

  /** Executables compiled since {@link #start}. */
  public int count() {
    Set<String> now = entries(dir);
    now.removeAll(before);
    return now.size();
  }

  public Path directory() {
    return dir;
  }

  private static Set<String> entries(Path dir) {
    Set<String> out = new HashSet<>();
    if (!Files.isDirectory(dir)) {
      return out;
    }
    try (Stream<Path> s = Files.list(dir)) {
      s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".pb")).forEach(out::add);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out;
  }
}
