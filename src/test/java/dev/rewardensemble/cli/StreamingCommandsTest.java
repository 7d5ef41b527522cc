package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.Precision;
import dev.rewardensemble.io.Safetensors;
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
 * {@code train-rm} (every ensemble kind), {@code export} (hf, peft), {@code generate} and {@code
 * ppo} run in a child JVM whose whole heap ({@code -Xmx}) is less than half the model's float32
 * weights: nothing on these paths holds a whole-model Java array (loading streams from the
 * checkpoint, final weights and checkpoints are read from the session one variable at a time). The
 * models are tiny in depth but have wide vocabularies, so that their embeddings alone exceed the
 * heap.
 */
class StreamingCommandsTest {
  private static final String HEAP = "-Xmx32m";
  private static final long HEAP_BYTES = 32L << 20;

  @TempDir Path tmp;

  @Test
  void everyEnsembleKindTrainsAndExportsWithAHeapSmallerThanTheModel() throws Exception {
    Path model = tmp.resolve("rm");
    long params =
        RandomCheckpoints.write(
            model, RandomCheckpoints.llamaConfig(256, 2, 64_000), Precision.BFLOAT16, 2, 3);
    assertTrue(4 * params > 2 * HEAP_BYTES, "the float32 model must not fit the heap: " + params);
    Path data = tmp.resolve("prefs.jsonl");
    StringBuilder rows = new StringBuilder();
    for (int i = 0; i < 12; i++) {
      rows.append(
          String.format(
              "{\"chosen_ids\": [1, %d, %d, 7], \"rejected_ids\": [1, %d, 63999]}%n",
              10 + i, 20 + i, 30 + i));
    }
    Files.writeString(data, rows, StandardCharsets.UTF_8);

    for (String kind : List.of("single", "independent", "linear", "lora")) {
      Path run = tmp.resolve("run-" + kind);
      List<String> args =
          new ArrayList<>(
              List.of(
                  "train-rm",
                  "--model",
                  model.toString(),
                  "--data",
                  data.toString(),
                  "--out",
                  run.toString(),
                  "--ensemble",
                  kind,
                  "--steps",
                  "1",
                  "--batch-size",
                  "2",
                  "--grad-accum",
                  "1",
                  "--save-every",
                  "1",
                  "--eval-fraction",
                  "0.2",
                  "--threads",
                  "1"));
      if (!kind.equals("single")) {
        args.addAll(List.of("--k", "2"));
      }
      if (kind.equals("lora")) {
        args.addAll(List.of("--lora-rank", "2", "--weights", "bfloat16"));
      }
      child(args);
      assertTrue(Files.exists(run.resolve("ensemble.json")), kind + ": run completed");
    }
    // Full-size trained weights were written from the session (float32, larger than the heap).
    try (Safetensors s = Safetensors.open(tmp.resolve("run-single/model.safetensors"))) {
      assertEquals(
          List.of(64_000L, 256L),
          java.util.Arrays.stream(s.info("model.embed_tokens.weight").shape()).boxed().toList());
      assertEquals("F32", s.info("model.embed_tokens.weight").dtype());
    }

    child(
        List.of(
            "export",
            "--model",
            tmp.resolve("run-linear").toString(),
            "--format",
            "hf",
            "--out",
            tmp.resolve("hf").toString()));
    assertTrue(Files.size(tmp.resolve("hf/model.safetensors")) > 4 * params - 1);
    child(
        List.of(
            "export",
            "--model",
            tmp.resolve("run-lora").toString(),
            "--format",
            "peft",
            "--out",
            tmp.resolve("peft").toString()));
    assertTrue(Files.exists(tmp.resolve("peft/base/model.safetensors")));
    assertTrue(Files.exists(tmp.resolve("peft/member-1/adapter_model.safetensors")));
  }

  @Test
  void generateAndPpoRunWithAHeapSmallerThanThePolicy() throws Exception {
    Path policy = tmp.resolve("policy");
    long params =
        RandomCheckpoints.writeCausal(
            policy, RandomCheckpoints.llamaConfig(256, 2, 64_000), Precision.BFLOAT16, 4);
    assertTrue(4 * params > 2 * HEAP_BYTES, "the float32 policy must not fit the heap: " + params);
    Path rm = tmp.resolve("rm");
    RandomCheckpoints.write(
        rm, RandomCheckpoints.llamaConfig(256, 2, 64_000), Precision.BFLOAT16, 1, 5);
    Path prompts = tmp.resolve("prompts.jsonl");
    Files.writeString(prompts, "{\"input_ids\": [1, 5, 900, 63999]}\n{\"input_ids\": [1, 42]}\n");

    // bf16 storage widens exactly: the same greedy tokens and log-probabilities as float32 (run
    // in this JVM, whose heap is large).
    List<String> outputs = new ArrayList<>();
    for (String weights : List.of("bfloat16", "float32")) {
      Path out = tmp.resolve("gen-" + weights + ".jsonl");
      List<String> args =
          List.of(
              "generate",
              "--model",
              policy.toString(),
              "--prompts",
              prompts.toString(),
              "--out",
              out.toString(),
              "--max-new-tokens",
              "5",
              "--greedy",
              "--ignore-eos",
              "--weights",
              weights,
              "--threads",
              "1");
      if (weights.equals("bfloat16")) {
        child(args);
      } else {
        var r = Cli.rme(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
      }
      outputs.add(Files.readString(out));
    }
    assertEquals(2, outputs.get(0).strip().split("\n").length, outputs.get(0));
    assertSameGenerations(outputs.get(1), outputs.get(0), "bf16 and float32 storage");

    Path run = tmp.resolve("ppo");
    child(
        List.of(
            "ppo",
            "--policy",
            policy.toString(),
            "--reward-model",
            rm.toString(),
            "--prompts",
            prompts.toString(),
            "--out",
            run.toString(),
            "--iterations",
            "2",
            "--save-every",
            "1",
            "--rollout-batch",
            "2",
            "--step-batch",
            "2",
            "--epochs-per-rollout",
            "1",
            "--max-new-tokens",
            "3",
            "--weights",
            "bfloat16",
            "--threads",
            "1"));
    assertTrue(Files.exists(run.resolve("policy/model.safetensors")));
    assertTrue(Files.isDirectory(run.resolve("checkpoints")));
  }

  /** Runs {@code rme ARGS} in a JVM with a heap of {@link #HEAP}; its output. */
  private String child(List<String> args) throws Exception {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                HEAP,
                // JavaCPP caps the process's resident memory at a multiple of -Xmx by default; the
                // native weights are what this test is about, not that cap.
                "-Dorg.bytedeco.javacpp.maxPhysicalBytes=0",
                "-cp",
                "target/classes:" + Files.readString(Path.of("target/classpath.txt")).trim(),
                "dev.rewardensemble.cli.Main"));
    cmd.addAll(args);
    Path log = Files.createTempFile(tmp, "child-", ".log");
    Process p =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    int code = p.waitFor();
    String text = Files.readString(log);
    assertEquals(0, code, String.join(" ", cmd) + ":\n" + text);
    return text;
  }

  /**
   * The same generated rows: every field equal, the log-probabilities up to float rounding (the two
   * runs are separate processes; where Eigen runs the products, not oneDNN, their sums can round
   * differently in the last place).
   */
  private static void assertSameGenerations(String want, String got, String what)
      throws java.io.IOException {
    com.fasterxml.jackson.databind.ObjectMapper json =
        new com.fasterxml.jackson.databind.ObjectMapper();
    String[] w = want.strip().split("\n"), g = got.strip().split("\n");
    assertEquals(w.length, g.length, what);
    for (int i = 0; i < w.length; i++) {
      com.fasterxml.jackson.databind.node.ObjectNode a =
          (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(w[i]);
      com.fasterxml.jackson.databind.node.ObjectNode b =
          (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(g[i]);
      com.fasterxml.jackson.databind.JsonNode la = a.remove("token_logprobs");
      com.fasterxml.jackson.databind.JsonNode lb = b.remove("token_logprobs");
      assertEquals(a, b, what + " row " + i);
      dev.rewardensemble.testing.Fixtures.assertClose(
          dev.rewardensemble.testing.Fixtures.floats(la),
          dev.rewardensemble.testing.Fixtures.floats(lb),
          0,
          1e-5,
          what + " row " + i + " token_logprobs");
    }
  }
}
