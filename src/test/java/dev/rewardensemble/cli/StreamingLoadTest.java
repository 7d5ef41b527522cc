package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.Precision;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.RandomCheckpoints;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code rme score} streams a checkpoint into the graph's variables: a sharded bf16 checkpoint
 * whose float32 weights are more than twice the child JVM's whole heap ({@code -Xmx}) loads and
 * scores, with the trunk in bfloat16 ({@code --weights auto}) and in float32 alike, and gives the
 * same rewards as the in-process run with a large heap.
 */
class StreamingLoadTest {
  private static final String HEAP = "-Xmx48m";
  private static final long HEAP_BYTES = 48L << 20;

  @TempDir Path tmp;

  @Test
  void aCheckpointLargerThanTheHeapLoadsAndScores() throws Exception {
    Path model = tmp.resolve("model");
    long params =
        RandomCheckpoints.write(
            model, RandomCheckpoints.llamaConfig(512, 4, 32000), Precision.BFLOAT16, 2, 5);
    assertTrue(4 * params > 2 * HEAP_BYTES, "the float32 model must not fit the heap: " + params);
    Path data = tmp.resolve("rows.jsonl");
    Files.writeString(
        data,
        "{\"input_ids\": [1, 5, 900, 31999, 7]}\n{\"input_ids\": [1, 42, 43]}\n",
        StandardCharsets.UTF_8);

    List<String> rewards = new ArrayList<>();
    for (String weights : List.of("auto", "float32")) {
      Path out = tmp.resolve("out-" + weights + ".jsonl");
      String log = child(model, data, out, weights);
      List<String> lines = Files.readAllLines(out);
      assertEquals(2, lines.size(), log);
      rewards.add(String.join("\n", lines));
    }
    assertEquals(rewards.get(0), rewards.get(1), "bf16 storage of a bf16 checkpoint is exact");

    Path inProcess = tmp.resolve("out-in-process.jsonl");
    var r =
        Cli.rme(
            "score",
            "--model",
            model.toString(),
            "--data",
            data.toString(),
            "--out",
            inProcess.toString(),
            "--threads",
            "1");
    assertEquals(0, r.code(), r.err());
    // one thread in process against the child's default: the same rewards up to the order of float
    // additions (exact where oneDNN runs the products; Eigen splits its sums by thread count)
    List<String> in = Files.readAllLines(inProcess);
    String[] child = rewards.get(0).split("\n");
    assertEquals(child.length, in.size());
    for (int i = 0; i < in.size(); i++) {
      com.fasterxml.jackson.databind.JsonNode a = JSON.readTree(child[i]),
          b = JSON.readTree(in.get(i));
      assertEquals(a.get("line"), b.get("line"));
      assertEquals(
          a.get("reward").asDouble(),
          b.get("reward").asDouble(),
          1e-5 * Math.max(1, Math.abs(a.get("reward").asDouble())),
          "row " + i);
    }
    assertNotEquals(-1, rewards.get(0).indexOf("reward"), rewards.get(0));
  }

  private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
      new com.fasterxml.jackson.databind.ObjectMapper();

  @Test
  void aBadWeightsValueIsOneLineNamingTheOption() throws Exception {
    var r =
        Cli.rme(
            "score",
            "--model",
            tmp.toString(),
            "--data",
            tmp.resolve("rows.jsonl").toString(),
            "--out",
            tmp.resolve("out.jsonl").toString(),
            "--weights",
            "fp8");
    assertEquals(2, r.code(), r.err());
    assertEquals(
        "rme: error: --weights: weight storage must be float32, bfloat16 or auto, got 'fp8'",
        r.err().strip());
  }

  /** Runs {@code rme score} in a JVM with a heap of {@link #HEAP}; its output on failure. */
  private String child(Path model, Path data, Path out, String weights) throws Exception {
    List<String> cmd =
        List.of(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            HEAP,
            // JavaCPP caps the process's resident memory at a multiple of -Xmx by default; the
            // native weights are what this test is about, not that cap.
            "-Dorg.bytedeco.javacpp.maxPhysicalBytes=0",
            "-cp",
            "target/classes:" + Files.readString(Path.of("target/classpath.txt")).trim(),
            "dev.rewardensemble.cli.Main",
            "score",
            "--model",
            model.toString(),
            "--data",
            data.toString(),
            "--out",
            out.toString(),
            "--weights",
            weights,
            "--threads",
            "1");
    Path log = tmp.resolve("child-" + weights + ".log");
    Process p =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    int code = p.waitFor();
    String text = Files.readString(log);
    assertEquals(0, code, String.join(" ", cmd) + ":\n" + text);
    return text;
  }
}
