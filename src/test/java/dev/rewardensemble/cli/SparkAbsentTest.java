package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code ./rme}'s classpath (target/classes + the runtime classpath Maven writes) has no Spark: the
 * core commands run, and {@code spark-score} says what it needs, in a JVM started like {@code
 * ./rme} starts it.
 */
class SparkAbsentTest {
  private record Out(int code, String out, String err) {}

  private static Out rme(String... args) throws Exception {
    String cp =
        "target/classes"
            + java.io.File.pathSeparator
            + Files.readString(Path.of("target/classpath.txt")).strip();
    assertFalse(cp.contains("spark-core"), "the runtime classpath has no Spark");
    List<String> cmd =
        new ArrayList<>(
            List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m",
                "-cp",
                cp,
                "dev.rewardensemble.cli.Main"));
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).start();
    p.getOutputStream().close();
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "rme " + List.of(args) + " timed out");
    return new Out(
        p.exitValue(),
        new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8),
        new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
  }

  @Test
  void coreCommandsRunAndSparkScoreNamesWhatItNeeds() throws Exception {
    Out help = rme("--help");
    assertEquals(0, help.code(), help.err());
    assertTrue(help.out().contains("spark-score"), help.out());
    Out score = rme("score", "--model", "examples/tiny-llama-rm", "--data", "examples/score.jsonl");
    assertEquals(0, score.code(), score.err());
    assertEquals(4, score.out().strip().lines().count(), score.out());
    Out spark =
        rme(
            "spark-score",
            "--model",
            "examples/tiny-llama-rm",
            "--data",
            "examples/score.jsonl",
            "--out",
            "target/never-written");
    assertEquals(2, spark.code(), spark.err());
    assertTrue(
        spark.err().startsWith("rme: error: spark-score needs Apache Spark's jars"), spark.err());
    assertFalse(Files.exists(Path.of("target/never-written")));
  }
}
