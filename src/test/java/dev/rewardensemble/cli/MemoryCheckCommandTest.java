package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.AvailableMemory;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.WeightStorage;
import dev.rewardensemble.ensemble.MemoryPlan;
import dev.rewardensemble.testing.Cli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code rme info}'s plan and the memory pre-check of the commands that allocate a model. */
class MemoryCheckCommandTest {
  @TempDir Path tmp;

  @AfterEach
  void clearLimit() {
    System.clearProperty(AvailableMemory.PROPERTY);
  }

  private static String stdout(Runnable r) {
    PrintStream old = System.out;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setOut(new PrintStream(buf, true));
    try {
      r.run();
    } finally {
      System.setOut(old);
    }
    return buf.toString();
  }

  @Test
  void infoPlansTheSevenBillionModelWithoutLoadingIt() {
    long t0 = System.nanoTime();
    int[] code = new int[1];
    String out =
        stdout(() -> code[0] = Cli.rme("info", "--model", "tf-graphs/llama-7b.json").code());
    assertEquals(0, code[0], out);
    // README: 6,607,347,712 parameters with one head.
    assertTrue(out.contains("total in memory: 6607347712  [M+L = 6607347712]"), out);
    assertTrue(out.contains("M = 6607343616 (trunk), L = 4096 (one head)"), out);
    // 6,607,343,616 x 4 bytes = 24.6 GiB as float32
    assertTrue(
        out.matches("(?s).*trunk weights \\(frozen\\) +6,607,343,616 +24\\.6 GiB +exact.*"), out);
    assertTrue(out.contains("GPU with 80.0 GiB"), out);
    for (String row : List.of("single", "independent K=3", "linear K=3", "lora K=3")) {
      assertTrue(
          out.matches("(?s).*\\n  " + java.util.regex.Pattern.quote(row) + " +score .*"), row);
      assertTrue(
          out.matches("(?s).*\\n  " + java.util.regex.Pattern.quote(row) + " +train .*"), row);
    }
    assertTrue((System.nanoTime() - t0) / 1e9 < 20, "info must not allocate the model");
  }

  @Test
  void infoOfALoraPlanInBfloat16HalvesTheFrozenTrunk() {
    String f32 =
        stdout(
            () ->
                Cli.rme(
                    "info",
                    "--model",
                    "tf-graphs/llama-7b.json",
                    "--ensemble",
                    "lora",
                    "--k",
                    "3",
                    "--mode",
                    "train",
                    "--batch-size",
                    "1",
                    "--max-length",
                    "128"));
    String b16 =
        stdout(
            () ->
                Cli.rme(
                    "info",
                    "--model",
                    "tf-graphs/llama-7b.json",
                    "--ensemble",
                    "lora",
                    "--k",
                    "3",
                    "--mode",
                    "train",
                    "--batch-size",
                    "1",
                    "--max-length",
                    "128",
                    "--weights",
                    "bfloat16"));
    assertTrue(f32.matches("(?s).*trunk weights \\(frozen\\) +6,607,343,616 +24\\.6 GiB.*"), f32);
    assertTrue(b16.matches("(?s).*trunk weights \\(frozen\\) +6,607,343,616 +12\\.3 GiB.*"), b16);
    // r 8 on all 7 projections of 32 blocks: 32 x 8 x (4 x 8192 + 3 x 15104) = 19,988,480 = A
    assertTrue(b16.contains("A = 19988480 (one member's adapters)"), b16);
  }

  @Test
  void trainingTheSevenBillionPresetIsRefusedBeforeAnythingIsAllocated() {
    System.setProperty(AvailableMemory.PROPERTY, "24GiB"); // this machine, whatever runs the test
    long t0 = System.nanoTime();
    Cli.Run r =
        Cli.rme(
            "train-rm",
            "--model",
            "tf-graphs/llama-7b.json",
            "--data",
            "examples/score.jsonl",
            "--out",
            tmp.resolve("run").toString(),
            "--ensemble",
            "lora",
            "--max-length",
            "128");
    assertEquals(2, r.code(), r.err());
    assertTrue(
        r.err()
            .startsWith(
                "rme: error: rme train-rm of tf-graphs/llama-7b.json (LoRA phases 1 and 2;"
                    + " phase 1 finetunes the whole trunk as a linear ensemble) needs about "),
        r.err());
    assertTrue(r.err().contains("is available (-Drme.memory.available=24GiB)"), r.err());
    assertTrue(r.err().contains("--batch-size"), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertTrue((System.nanoTime() - t0) / 1e9 < 10, "refused before allocating");
  }

  @Test
  void scoringIsRefusedBeforeTheWeightsAreRead() throws Exception {
    // A checkpoint whose weights file is garbage: only a check before loading can answer first.
    Path model = tmp.resolve("rm");
    Files.createDirectories(model);
    Files.copy(Path.of("examples/tiny-llama-rm/config.json"), model.resolve("config.json"));
    Files.writeString(model.resolve("model.safetensors"), "not a safetensors file");
    System.setProperty(AvailableMemory.PROPERTY, "64MiB");
    Cli.Run r =
        Cli.rme(
            "score",
            "--model",
            model.toString(),
            "--data",
            "examples/score.jsonl",
            "--max-length",
            "64");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("rme score of " + model + " needs about "), r.err());
    assertTrue(r.err().contains("but 64.0 MiB is available"), r.err());
    assertTrue(r.err().contains("--weights bfloat16"), r.err());
    assertFalse(r.err().contains("safetensors"), r.err());
    // With room, the same command gets past the check and fails on the weights file instead.
    System.setProperty(AvailableMemory.PROPERTY, "64GiB");
    Cli.Run ok = Cli.rme("score", "--model", model.toString(), "--data", "examples/score.jsonl");
    assertFalse(ok.err().contains("needs about"), ok.err());
  }

  @Test
  void generationIsRefusedWithItsKvCacheInTheNumbers() {
    System.setProperty(AvailableMemory.PROPERTY, "1MiB");
    Cli.Run r =
        Cli.rme(
            "generate",
            "--model",
            "src/test/resources/fixtures/llama-causal",
            "--prompts",
            "examples/score.jsonl",
            "--max-new-tokens",
            "8",
            "--greedy");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("needs about"), r.err());
    assertTrue(r.err().contains("KV cache") || r.err().contains("runtime"), r.err());
  }

  @Test
  void benchWorkloadsArePlannedBeforeTheyRun() {
    System.setProperty(AvailableMemory.PROPERTY, "100MiB");
    Cli.Run r =
        Cli.rme(
            "bench",
            "--preset",
            "tf-graphs/tiny-llama.json",
            "--workloads",
            "lora-step",
            "--no-memory",
            "--batch",
            "2",
            "--seq",
            "16");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("rme bench on tf-graphs/tiny-llama.json needs about "), r.err());
    assertTrue(r.err().contains("--lora-layers"), r.err());
  }

  @Test
  void infoPlansPpoWithRecompute() {
    String[] args = {
      "info",
      "--model",
      "tf-graphs/llama-7b.json",
      "--mode",
      "ppo",
      "--batch-size",
      "8",
      "--max-length",
      "256",
      "--max-new-tokens",
      "256"
    };
    int[] code = new int[2];
    String plain = stdout(() -> code[0] = Cli.rme(args).code());
    List<String> withArgs = new java.util.ArrayList<>(List.of(args));
    withArgs.add("--recompute");
    String rec = stdout(() -> code[1] = Cli.rme(withArgs.toArray(new String[0])).code());
    assertEquals(0, code[0], plain);
    assertEquals(0, code[1], rec);
    assertTrue(plain.contains("with --recompute: activations "), plain);
    assertTrue(rec.contains(", blocks recomputed"), rec);
    assertTrue(rec.contains("one block recomputed"), rec);
    assertTrue(!rec.contains("with --recompute: activations "), rec);
  }

  private static Path resource(String dir) throws Exception {
    return Path.of(MemoryCheckCommandTest.class.getResource(dir + "/config.json").toURI())
        .getParent();
  }

  /**
   * Which embeddings the plan of a scorer counts as rows read from the file: the one a {@code
   * RewardModel} would gather on the host (an F32 or BF16 matrix of at least rme.hostRowsMin bytes
   * at the storage width), with the file's bytes per value.
   */
  @Test
  void thePlanOfAScorerReadsTheEmbeddingFromTheFileAsTheModelWill() throws Exception {
    Path bf16 = resource("/hf-families/llama3-seqcls");
    Path f32 = resource("/fixtures/gpt2-seqcls");
    ModelConfig llama = dev.rewardensemble.config.ModelConfigs.read(bf16.resolve("config.json"));
    ModelConfig gpt2 = dev.rewardensemble.config.ModelConfigs.read(f32.resolve("config.json"));
    String old = System.getProperty("rme.hostRowsMin");
    try {
      System.clearProperty("rme.hostRowsMin");
      assertEquals(0, MemoryCheck.hostedEmbedding(bf16, List.of(), llama, 2), "a tiny table");
      System.setProperty("rme.hostRowsMin", "0");
      assertEquals(2, MemoryCheck.hostedEmbedding(bf16, List.of(), llama, 2), "BF16 file");
      assertEquals(4, MemoryCheck.hostedEmbedding(f32, List.of(), gpt2, 2), "F32 file");
      assertEquals(
          0,
          MemoryCheck.hostedEmbedding(Path.of("tf-graphs/tiny-llama.json"), List.of(), llama, 2),
          "a preset's weights are made in memory");
      // the plan rme score checks: the table's bytes replaced by one batch's rows
      MemoryPlan held;
      System.setProperty("rme.hostRowsMin", "-1");
      held = MemoryCheck.score(bf16, List.of(), 2, 8, WeightStorage.AUTO).orElseThrow();
      assertEquals(0, MemoryCheck.hostedEmbedding(bf16, List.of(), llama, 2), "switched off");
      System.setProperty("rme.hostRowsMin", "0");
      MemoryPlan hosted =
          MemoryCheck.score(bf16, List.of(), 2, 8, WeightStorage.AUTO).orElseThrow();
      long table = (long) llama.vocabSize() * llama.hiddenSize() * 2;
      long rows = hosted.bytes("embedding rows (file map)");
      assertTrue(rows > 0 && rows <= table, "rows " + rows);
      assertEquals(held.total() - table + rows, hosted.total());
      // an export's graph holds the table in a variable
      MemoryPlan export = MemoryCheck.export(bf16, List.of()).orElseThrow();
      assertEquals(0, export.bytes("embedding rows (file map)"));
    } finally {
      if (old == null) {
        System.clearProperty("rme.hostRowsMin");
      } else {
        System.setProperty("rme.hostRowsMin", old);
      }
    }
  }
}
