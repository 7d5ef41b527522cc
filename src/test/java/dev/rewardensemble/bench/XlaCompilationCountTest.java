package dev.rewardensemble.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real XLA compilations under {@code --xla auto}, counted from XLA's persistent cache in a
 * subprocess (the cache directory is an environment flag of TensorFlow's): lengths in one bucket
 * compile once, a second bucket compiles the same number of clusters again, and a second process
 * loads every executable instead of compiling (the warm start {@code ./rme} gives by default).
 */
class XlaCompilationCountTest {
  private static String probe(Path cache, String first, String second) throws Exception {
    Path out = cache.resolveSibling(cache.getFileName() + "-" + System.nanoTime() + ".log");
    ProcessBuilder pb =
        new ProcessBuilder(
                "java",
                "-Xmx1g",
                "-cp",
                "target/test-classes:target/classes:"
                    + Files.readString(Path.of("target/classpath.txt")).trim(),
                XlaCompilationProbe.class.getName(),
                Fixtures.dir("llama-seqcls").toString(),
                first,
                second)
            .redirectErrorStream(true)
            .redirectOutput(out.toFile());
    pb.environment().put("TF_XLA_FLAGS", "--tf_xla_persistent_cache_directory=" + cache);
    pb.environment().put("TF_CPP_MIN_LOG_LEVEL", "2");
    Process p = pb.start();
    assertTrue(p.waitFor(300, TimeUnit.SECONDS), "probe did not finish");
    List<String> lines = Files.readAllLines(out);
    assertEquals(0, p.exitValue(), String.join("\n", lines));
    return lines.get(lines.size() - 1).trim();
  }

  @Test
  void bucketsBoundCompilationsAndASecondProcessLoadsThem(@TempDir Path tmp) throws Exception {
    Path cache = tmp.resolve("xla");
    // 5 and 9 share the bucket 16; 17 and 20 the bucket 24
    String[] first = probe(cache, "5,9", "17,20").split(" ");
    int oneBucket = Integer.parseInt(first[0]);
    int twoBuckets = Integer.parseInt(first[1]);
    assertTrue(oneBucket > 0, "nothing compiled: " + String.join(" ", first));
    assertEquals(2 * oneBucket, twoBuckets, "compilations after the second bucket");
    assertEquals("0 0", probe(cache, "5,9", "17,20"), "a warm cache compiles nothing");
  }
}
