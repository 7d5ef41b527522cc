package dev.rewardensemble.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.io.CrashPoints;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.RunDirs;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.train.Checkpoints;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue #13, items 4 and 5: a run directory is complete in one step (run.json's "complete" written
 * last, after the ensemble's normalisation), loaders refuse it before, {@code --resume} finishes a
 * run killed at any point after training, and a kill while pruning checkpoints leaves nothing
 * behind under a checkpoint's name. The kills are real: a {@code train-rm} subprocess halted
 * ({@link CrashPoints}, {@code Runtime.halt}: no cleanup, as SIGKILL) exactly between two writes.
 */
class RunDirectoryTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  static Path synthetic(Path dir, int n, long seed) throws Exception {
    Path p = dir.resolve("syn-" + n + "-" + seed + ".jsonl");
    if (!Files.exists(p)) {
      Files.write(
          p, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(n, 64, 8, 16, 3, seed)));
    }
    return p;
  }

  /** The command line of a {@code rme} subprocess, optionally halting at {@code crashAt}. */
  static List<String> rmeProcess(String crashAt, String... args) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("java"));
    if (crashAt != null) {
      cmd.add("-D" + CrashPoints.PROPERTY + "=" + crashAt);
    }
    cmd.addAll(
        List.of(
            "-cp",
            "target/classes:" + Files.readString(Path.of("target/classpath.txt")).trim(),
            "dev.rewardensemble.cli.Main"));
    cmd.addAll(List.of(args));
    return cmd;
  }

  /** Runs {@code rme} in a subprocess that halts at {@code crashAt}; returns its exit status. */
  private int crashed(String crashAt, String... args) throws Exception {
    Path log = tmp.resolve("crash-" + crashAt + ".log");
    Process p =
        new ProcessBuilder(rmeProcess(crashAt, args))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "subprocess did not finish");
    int code = p.exitValue();
    assertEquals(137, code, "expected to die at " + crashAt + ": " + Files.readString(log));
    return code;
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  /**
   * {@link Cli#rme}, with what the progress listener prints to System.err added to the error text.
   */
  static Cli.Run rmeWithProgress(String... args) {
    java.io.PrintStream old = System.err;
    java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
    System.setErr(new java.io.PrintStream(buf, true, java.nio.charset.StandardCharsets.UTF_8));
    try {
      Cli.Run r = Cli.rme(args);
      return new Cli.Run(r.code(), r.err() + buf.toString(java.nio.charset.StandardCharsets.UTF_8));
    } finally {
      System.setErr(old);
    }
  }

  private static long trainRows(Path run) throws Exception {
    return Files.readAllLines(run.resolve("metrics.jsonl")).stream()
        .filter(l -> l.contains("\"train\""))
        .count();
  }

  private List<String> score(Path model, Path in) throws Exception {
    Path out = tmp.resolve("scores-" + model.getFileName() + "-" + System.nanoTime() + ".jsonl");
    Cli.Run s =
        Cli.rme(
            "score", "--model", model.toString(), "--data", in.toString(), "--out", out.toString());
    assertEquals(0, s.code(), s.err());
    return Files.readAllLines(out);
  }

  private Path scoreInput() throws Exception {
    Path in = tmp.resolve("score-in.jsonl");
    Files.write(
        in,
        List.of(
            "{\"input_ids\": [5, 7, 9, 7, 11]}",
            "{\"input_ids\": [4, 4, 8, 12, 3, 9]}",
            "{\"input_ids\": [2, 6]}"));
    return in;
  }

  private void assertIncomplete(Path run) throws Exception {
    Cli.Run s =
        Cli.rme(
            "score", "--model", run.toString(), "--data", tmp.resolve("score-in.jsonl").toString());
    assertEquals(2, s.code(), s.err());
    assertTrue(
        s.err()
            .contains(
                "rme: error: "
                    + run
                    + ": training did not complete (pass --resume to train-rm to finish it)"),
        s.err());
    // Nor does it serve as the base of another training run.
    Cli.Run t =
        Cli.rme(
            "train-rm",
            "--model",
            run.toString(),
            "--data",
            synthetic(tmp, 40, 3).toString(),
            "--out",
            tmp.resolve("on-" + run.getFileName()).toString(),
            "--steps",
            "1");
    assertEquals(2, t.code(), t.err());
    assertTrue(t.err().contains(run + ": training did not complete"), t.err());
    assertFalse(
        Files.exists(tmp.resolve("on-" + run.getFileName())), "no run directory left behind");
  }

  private static JsonNode manifest(Path run) throws Exception {
    return JSON.readTree(run.resolve("ensemble.json").toFile());
  }

  /**
   * The case: a linear K = 3 run killed after its final model.safetensors, before
   * ensemble.json. It must not score (it would score without its normalisation), and --resume must
   * finish it without training again, to exactly what an uninterrupted run writes.
   */
  @Test
  void linearEnsembleKilledAfterItsWeightsIsRefusedAndResumeFinishesIt() throws Exception {
    String[] common = {
      "train-rm",
      "--model",
      "tf-graphs/tiny-llama.json",
      "--data",
      synthetic(tmp, 240, 7).toString(),
      "--ensemble",
      "linear",
      "--k",
      "3",
      "--bootstrap",
      "--steps",
      "12",
      "--batch-size",
      "8",
      "--grad-accum",
      "1",
      "--lr",
      "1e-3",
      "--eval-fraction",
      "0.25",
      "--threads",
      "1"
    };
    Path in = scoreInput();
    Path full = tmp.resolve("full");
    Cli.Run a = Cli.rme(concat(common, "--out", full.toString()));
    assertEquals(0, a.code(), a.err());
    assertTrue(RunDirs.isComplete(full));

    Path killed = tmp.resolve("killed");
    crashed("run-weights-written", concat(common, "--out", killed.toString()));
    assertTrue(
        Files.isRegularFile(killed.resolve("model.safetensors")),
        "the kill came after the weights");
    assertFalse(Files.exists(killed.resolve("ensemble.json")));
    assertIncomplete(killed);
    Cli.Run info = Cli.rme("info", "--model", killed.toString());
    assertEquals(2, info.code(), info.err());

    Cli.Run fresh = Cli.rme(concat(common, "--out", killed.toString()));
    assertEquals(2, fresh.code(), fresh.err());
    assertTrue(fresh.err().contains("--resume"), fresh.err());

    Cli.Run b = rmeWithProgress(concat(common, "--out", killed.toString(), "--resume"));
    assertEquals(0, b.code(), b.err());
    assertTrue(b.err().contains("already finished: completing the run"), b.err());
    assertEquals(12, trainRows(killed), "resume must not train again");
    assertTrue(RunDirs.isComplete(killed));
    assertEquals(manifest(full).get("normalization"), manifest(killed).get("normalization"));
    assertTrue(manifest(killed).get("normalization").get("std").size() == 3);
    assertEquals(
        manifest(full).get("provenance").get("diagnostics"),
        manifest(killed).get("provenance").get("diagnostics"));
    assertEquals(score(full, in), score(killed, in));

    Cli.Run again = Cli.rme(concat(common, "--out", killed.toString(), "--resume"));
    assertEquals(2, again.code(), again.err());
    assertTrue(again.err().contains("holds a completed run; nothing to resume"), again.err());
  }

  /**
   * A real SIGKILL of a linear K = 3 training process mid-run: the directory is refused until
   * --resume finishes it, and then holds what an uninterrupted run holds (weights, normalisation,
   * diagnostics, scores).
   */
  @Test
  void linearEnsembleSigkilledMidTrainingResumesToTheUninterruptedResult() throws Exception {
    String[] common = {
      "train-rm",
      "--model",
      "tf-graphs/tiny-llama.json",
      "--data",
      synthetic(tmp, 400, 12).toString(),
      "--ensemble",
      "linear",
      "--k",
      "3",
      "--steps",
      "200",
      "--batch-size",
      "4",
      "--grad-accum",
      "1",
      "--lr",
      "1e-3",
      "--save-every",
      "10",
      "--eval-fraction",
      "0.1",
      "--threads",
      "1"
    };
    Path in = scoreInput();
    Path full = tmp.resolve("full");
    Cli.Run a = Cli.rme(concat(common, "--out", full.toString()));
    assertEquals(0, a.code(), a.err());

    Path killed = tmp.resolve("killed");
    Path log = tmp.resolve("killed.log");
    Process p =
        new ProcessBuilder(rmeProcess(null, concat(common, "--out", killed.toString())))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    Path marker = Checkpoints.root(killed).resolve("step-00000030");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (!Files.exists(marker) && p.isAlive() && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertTrue(p.isAlive(), "the run finished before it could be killed: " + Files.readString(log));
    p.destroyForcibly(); // SIGKILL
    p.waitFor();
    assertIncomplete(killed);

    Cli.Run b = Cli.rme(concat(common, "--out", killed.toString(), "--resume"));
    assertEquals(0, b.code(), b.err());
    assertTrue(RunDirs.isComplete(killed));
    assertEquals(200, trainRows(killed));
    JsonNode nf = manifest(full).get("normalization");
    JsonNode nk = manifest(killed).get("normalization");
    for (String key : List.of("mean", "std")) {
      for (int i = 0; i < 3; i++) {
        assertEquals(
            nf.get(key).get(i).asDouble(),
            nk.get(key).get(i).asDouble(),
            1e-4,
            key + "[" + i + "]");
      }
    }
    List<String> sf = score(full, in);
    List<String> sk = score(killed, in);
    for (int i = 0; i < sf.size(); i++) {
      assertEquals(
          JSON.readTree(sf.get(i)).get("reward").asDouble(),
          JSON.readTree(sk.get(i)).get("reward").asDouble(),
          1e-4,
          "row " + i);
    }
  }

  /**
   * An independent ensemble (whose run directory has a run.json of its own above member-k/) killed
   * after ensemble.json, before the completion marker: refused, and --resume completes it.
   */
  @Test
  void independentEnsembleKilledBeforeItsMarkerIsRefusedAndResumeFinishesIt() throws Exception {
    String[] common = {
      "train-rm",
      "--model",
      "tf-graphs/tiny-llama.json",
      "--data",
      synthetic(tmp, 160, 8).toString(),
      "--ensemble",
      "independent",
      "--k",
      "2",
      "--steps",
      "6",
      "--batch-size",
      "8",
      "--grad-accum",
      "1",
      "--lr",
      "1e-3",
      "--eval-fraction",
      "0.25",
      "--threads",
      "1"
    };
    Path in = scoreInput();
    Path killed = tmp.resolve("killed");
    crashed("ensemble-manifest-written", concat(common, "--out", killed.toString()));
    assertTrue(Files.isRegularFile(killed.resolve("ensemble.json")));
    assertTrue(manifest(killed).has("normalization"));
    assertIncomplete(killed);

    Cli.Run b = rmeWithProgress(concat(common, "--out", killed.toString(), "--resume"));
    assertEquals(0, b.code(), b.err());
    assertTrue(
        b.err().contains("member 0 already trained")
            && b.err().contains("member 1 already trained"),
        b.err());
    assertEquals(6, trainRows(killed.resolve("member-0")));
    assertEquals(3, score(killed, in).size());
  }

  /**
   * The same windows of a LoRA run, reproduced on disk from a completed run (its marker taken
   * back): refused, then --resume skips both phases and completes it with the same normalisation.
   */
  @Test
  void loraEnsembleWithoutItsMarkerIsRefusedAndResumeCompletesItWithoutTraining() throws Exception {
    String[] common = {
      "train-rm",
      "--model",
      "tf-graphs/tiny-llama.json",
      "--data",
      synthetic(tmp, 160, 9).toString(),
      "--ensemble",
      "lora",
      "--k",
      "2",
      "--steps",
      "4",
      "--batch-size",
      "8",
      "--grad-accum",
      "1",
      "--lr",
      "1e-3",
      "--lora-lr",
      "1e-3",
      "--lora-rank",
      "2",
      "--eval-fraction",
      "0.25",
      "--threads",
      "1"
    };
    Path in = scoreInput();
    Path run = tmp.resolve("lora");
    Cli.Run a = Cli.rme(concat(common, "--out", run.toString()));
    assertEquals(0, a.code(), a.err());
    List<String> before = score(run, in);
    JsonNode norm = manifest(run).get("normalization");

    ObjectNode r = RunDirs.runJson(run);
    r.put("complete", false);
    RunDirs.writeRunJson(run, r);
    Files.delete(run.resolve("ensemble.json"));
    assertIncomplete(run);

    Cli.Run b = rmeWithProgress(concat(common, "--out", run.toString(), "--resume"));
    assertEquals(0, b.code(), b.err());
    assertTrue(
        b.err().contains("phase 1 already trained") && b.err().contains("phase 2 already trained"),
        b.err());
    assertEquals(norm, manifest(run).get("normalization"));
    assertEquals(before, score(run, in));
  }

  /**
   * Item 5: killed while pruning an old checkpoint (after its rename, before its deletion), plus
   * the leftovers of every other kind of killed write and an older version's half-deleted
   * checkpoint: no incomplete directory ever sits under a checkpoint's name, and the next run
   * removes them all (and nothing else).
   */
  @Test
  void killWhilePruningLeavesNoHalfCheckpointAndResumeCleansEveryLeftover() throws Exception {
    String[] common = {
      "train-rm",
      "--model",
      "tf-graphs/tiny-llama.json",
      "--data",
      synthetic(tmp, 120, 10).toString(),
      "--steps",
      "16",
      "--batch-size",
      "4",
      "--grad-accum",
      "1",
      "--lr",
      "1e-3",
      "--save-every",
      "4",
      "--keep-checkpoints",
      "1",
      "--eval-fraction",
      "0",
      "--threads",
      "1"
    };
    Path run = tmp.resolve("run");
    crashed("prune", concat(common, "--out", run.toString()));
    Path ck = Checkpoints.root(run);
    try (Stream<Path> s = Files.list(ck)) {
      List<String> names = s.map(p -> p.getFileName().toString()).sorted().toList();
      assertEquals(List.of(".prune-step-00000004", "step-00000008"), names);
    }
    // What older versions and other killed writes leave behind.
    Path half = Files.createDirectories(ck.resolve("step-00000002"));
    Files.write(half.resolve("model.safetensors"), new byte[1024]);
    Files.createDirectories(ck.resolve(".tmp-step-00000012-1f2e3d"));
    Files.writeString(run.resolve(".run.json.tmp"), "{");
    Files.writeString(run.resolve(".metrics.jsonl.tmp"), "{");
    Files.writeString(run.resolve(".config.json.tmp"), "{");
    Files.write(run.resolve(".model.safetensors.3a9f0c2e1b.tmp"), new byte[64]);
    Files.writeString(run.resolve("notes.txt"), "mine");
    Files.writeString(run.resolve(".notes.tmp"), "mine too");

    Cli.Run b = rmeWithProgress(concat(common, "--out", run.toString(), "--resume"));
    assertEquals(0, b.code(), b.err());
    assertTrue(b.err().contains("resuming from") && b.err().contains("step-00000008"), b.err());
    try (Stream<Path> s = Files.list(ck)) {
      List<String> names = s.map(p -> p.getFileName().toString()).sorted().toList();
      assertEquals(List.of("step-00000012"), names);
    }
    for (String f :
        List.of(
            ".run.json.tmp",
            ".metrics.jsonl.tmp",
            ".config.json.tmp",
            ".model.safetensors.3a9f0c2e1b.tmp")) {
      assertFalse(Files.exists(run.resolve(f)), f);
    }
    assertEquals("mine", Files.readString(run.resolve("notes.txt")));
    assertEquals("mine too", Files.readString(run.resolve(".notes.tmp")));
    assertTrue(RunDirs.isComplete(run));
    assertEquals(16, trainRows(run));
  }

  /** Item 5: checkpoints get the ordinary permissions of a new directory, not mode 0700. */
  @Test
  void checkpointDirectoriesGetTheUmasksPermissions() throws Exception {
    Path reference = Files.createDirectory(tmp.resolve("reference"));
    Set<PosixFilePermission> expected = Files.getPosixFilePermissions(reference);
    assumeFalse(
        expected.equals(
            Set.of(
                PosixFilePermission.OWNER_READ,
                PosixFilePermission.OWNER_WRITE,
                PosixFilePermission.OWNER_EXECUTE)),
        "umask 077: nothing to tell apart");
    Path run = Files.createDirectory(tmp.resolve("run"));
    Path saved =
        Checkpoints.save(
            run,
            3,
            Map.of("w", FloatTensor.zeros(2, 2)),
            Map.of("m", FloatTensor.zeros(2, 2)),
            JSON.createObjectNode().put("step", 3),
            2);
    assertEquals(expected, Files.getPosixFilePermissions(saved));
    assertNotEquals(Set.of(), expected);
    assertEquals(3, Checkpoints.latest(run).orElseThrow().step());
  }
}
