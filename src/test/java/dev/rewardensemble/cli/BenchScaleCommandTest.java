package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.testing.Cli;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code rme bench --workloads scale} end to end on a tiny Llama preset: the checkpoint written in
 * transformers' layout (8 shards at 40 KB), the three workloads each in a fresh JVM, the rewards
 * check, the table and the targets. The PyTorch peer runs only when {@code
 * RME_BENCH_PYTHON} names a Python with torch, transformers and peft.
 */
class BenchScaleCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  private Path preset() throws Exception {
    Path p = tmp.resolve("tiny-scale.json");
    try (InputStream in = getClass().getResourceAsStream("/scale-layout/preset.json")) {
      Files.write(p, in.readAllBytes());
    }
    return p;
  }

  @Test
  void scaleRunsEveryWorkloadInFreshProcessesAndEvaluatesTheTargets() throws Exception {
    boolean peer = System.getenv("RME_BENCH_PYTHON") != null;
    Path json = tmp.resolve("scale.json");
    Path work = tmp.resolve("work");
    List<String> args =
        new ArrayList<>(
            List.of(
                "bench",
                "--workloads",
                "scale",
                "--preset",
                preset().toString(),
                "--rows",
                "2",
                "--seq",
                "8",
                "--k",
                "2",
                "--check-layers",
                "1",
                "--max-shard-size",
                "40KB",
                "--child-heap",
                "512m",
                "--json",
                json.toString(),
                "--work-dir",
                work.toString()));
    if (peer) {
      args.add("--peer");
    }
    PrintStream old = System.out;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    Cli.Run r;
    try {
      System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
      r = Cli.rme(args.toArray(String[]::new));
    } finally {
      System.setOut(old);
    }
    String out = captured.toString(StandardCharsets.UTF_8);
    assertEquals(0, r.code(), r.err() + out);
    JsonNode report = JSON.readTree(json.toFile());
    assertEquals(8, report.get("shards").asInt(), report.toString());
    assertEquals(107_392, report.get("parameters").asLong());
    List<String> names = new ArrayList<>();
    for (JsonNode w : report.get("workloads")) {
      names.add(w.get("name").asText());
      JsonNode p = w.get("project");
      assertEquals("ok", p.get("status").asText(), w.toString());
      assertTrue(p.get("peak_rss_bytes").asDouble() > 0, w.toString());
      assertTrue(
          p.get("load_peak_rss_bytes").asDouble() <= p.get("peak_rss_bytes").asDouble(),
          w.toString());
      assertEquals(2, p.get("step_seconds").size(), w.toString());
      assertTrue(p.get("planned_bytes").asLong() > 0, "the memory pre-check ran: " + w);
      assertTrue(p.get("seconds_per_step").asDouble() > 0, w.toString());
      assertEquals(peer, w.get("peer") != null && !w.get("peer").isNull(), w.toString());
    }
    assertEquals(List.of("score", "lora-score", "lora-train"), names);
    // bf16 storage of a bf16 checkpoint widens exactly: the same rewards as float32 storage
    JsonNode check = report.get("rewards_check");
    assertEquals("ok", check.get("java").asText(), check.toString());
    assertEquals(0.0, check.get("java_bf16_vs_java_f32").asDouble(), check.toString());
    assertEquals(0.0, check.get("java_lora_bf16_vs_java_lora_f32").asDouble(), check.toString());
    if (peer) {
      assertTrue(check.get("java_f32_vs_torch_f32").asDouble() < 1e-4, check.toString());
      assertTrue(check.get("java_lora_bf16_vs_torch_peft_f32").asDouble() < 1e-4, check.toString());
    }
    JsonNode targets = report.get("targets");
    assertEquals(6, targets.size(), targets.toString());
    for (int i = 0; i < 3; i++) {
      assertTrue(targets.get(i).get("pass").isBoolean(), targets.toString());
    }
    assertTrue(targets.get(1).get("pass").asBoolean(), "a tiny phase-2 step fits in 22 GiB");
    for (int i = 3; i < 6; i++) {
      assertEquals(!peer, targets.get(i).get("pass").isNull(), targets.toString());
    }
    // the table is printed and written beside the JSON; the temporary checkpoints are gone
    assertTrue(out.contains("| target | measured | result |"), out);
    assertTrue(out.contains("| lora-train (LoRA K=2 phase-2 step, 1 pair x 8) |"), out);
    String md = Files.readString(tmp.resolve("scale.md"));
    assertTrue(out.contains(md.strip()), md);
    assertFalse(Files.exists(work.resolve("scale-checkpoints")), "no --scale-dir: deleted");
  }

  @Test
  void scaleIsRunOnItsOwnAndSizesAreChecked() throws Exception {
    Cli.Run r =
        Cli.rme("bench", "--workloads", "scale,score", "--preset", preset().toString(), "--k", "2");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("scale runs on its own"), r.err());
    r =
        Cli.rme(
            "bench",
            "--workloads",
            "scale",
            "--preset",
            preset().toString(),
            "--max-shard-size",
            "5XB");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--max-shard-size: '5XB'"), r.err());
    r =
        Cli.rme(
            "bench",
            "--workloads",
            "scale",
            "--preset",
            preset().toString(),
            "--check-layers",
            "3");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--check-layers 3 exceeds the preset's 2 blocks"), r.err());
  }
}
