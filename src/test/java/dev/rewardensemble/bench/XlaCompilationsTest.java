package dev.rewardensemble.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The compilation count: new executables ({@code .pb}) in XLA's persistent cache directory. */
class XlaCompilationsTest {
  @Test
  void readsTheDirectoryFromTfXlaFlags() {
    assertEquals(Optional.empty(), XlaCompilations.cacheDirectory(null));
    assertEquals(Optional.empty(), XlaCompilations.cacheDirectory("--tf_xla_cpu_global_jit"));
    assertEquals(
        Optional.of(Path.of("/c/x")),
        XlaCompilations.cacheDirectory(
            "--tf_xla_cpu_global_jit  --tf_xla_persistent_cache_directory=/c/x"));
    assertEquals(
        Optional.empty(), XlaCompilations.cacheDirectory("--tf_xla_persistent_cache_directory="));
  }

  @Test
  void countsOnlyExecutablesWrittenSinceTheStart(@TempDir Path dir) throws Exception {
    Files.writeString(dir.resolve("xla_compile_cache__1__2__XLA_CPU_JIT.pb"), "old");
    XlaCompilations c = XlaCompilations.in(dir);
    assertEquals(0, c.count());
    Files.writeString(dir.resolve("xla_compile_cache__3__4__XLA_CPU_JIT.pb"), "new");
    Files.writeString(dir.resolve("xla_compile_cache__5__6__XLA_CPU_JIT.pb.tmp"), "partial");
    assertEquals(1, c.count());
    Files.writeString(dir.resolve("xla_compile_cache__7__8__XLA_CPU_JIT.pb"), "new");
    assertEquals(2, c.count());
    assertTrue(XlaCompilations.in(dir.resolve("absent")).count() == 0);
  }
}
