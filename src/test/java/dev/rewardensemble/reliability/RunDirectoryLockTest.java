package dev.rewardensemble.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.io.DirLock;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue #13, item 6: one writer per run directory and per SavedModel version. A second process is
 * refused with exit code 2 naming the holder's pid and command; a lock file left by a dead process
 * does not block.
 */
class RunDirectoryLockTest {
  @TempDir Path tmp;

  private String[] trainRm(Path data, Path out, String... more) {
    List<String> a =
        new java.util.ArrayList<>(
            List.of(
                "train-rm",
                "--model",
                "tf-graphs/tiny-llama.json",
                "--data",
                data.toString(),
                "--out",
                out.toString(),
                "--batch-size",
                "4",
                "--grad-accum",
                "1",
                "--eval-fraction",
                "0",
                "--threads",
                "1"));
    a.addAll(List.of(more));
    return a.toArray(String[]::new);
  }

  @Test
  void secondProcessOnARunDirectoryIsRefusedNamingTheHolderAndADeadHoldersLockDoesNotBlock()
      throws Exception {
    Path data = RunDirectoryTest.synthetic(tmp, 80, 3);
    Path run = tmp.resolve("run");
    // A training process that runs until it is killed.
    Path log = tmp.resolve("holder.log");
    Process p =
        new ProcessBuilder(
                RunDirectoryTest.rmeProcess(
                    null, trainRm(data, run, "--steps", "1000000", "--save-every", "5")))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    try {
      Path lockFile = run.resolve(DirLock.RUN_DIR_LOCK);
      Path firstCheckpoint = run.resolve("checkpoints").resolve("step-00000005");
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
      while (!Files.exists(firstCheckpoint) && p.isAlive() && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertTrue(
          p.isAlive() && Files.exists(firstCheckpoint),
          "holder did not start: " + Files.readString(log));
      String holder = "is in use by pid " + p.pid() + " (rme train-rm";

      Cli.Run fresh = Cli.rme(trainRm(data, run, "--steps", "1000000", "--save-every", "5"));
      assertEquals(2, fresh.code(), fresh.err());
      assertTrue(fresh.err().startsWith("rme: error: " + run + " " + holder), fresh.err());
      Cli.Run resume =
          Cli.rme(trainRm(data, run, "--steps", "1000000", "--save-every", "5", "--resume"));
      assertEquals(2, resume.code(), resume.err());
      assertTrue(resume.err().contains(holder), resume.err());
      // Refused before anything is read: even a PPO run with inputs that do not exist names the
      // holder.
      Cli.Run ppo =
          Cli.rme(
              "ppo",
              "--policy",
              tmp.resolve("none").toString(),
              "--reward-model",
              tmp.resolve("none").toString(),
              "--prompts",
              tmp.resolve("none.jsonl").toString(),
              "--out",
              run.toString());
      assertEquals(2, ppo.code(), ppo.err());
      assertTrue(ppo.err().contains(run + " is in use by pid " + p.pid()), ppo.err());
      // The holder's metrics have one row per step: the refused runs wrote nothing.
      p.destroyForcibly(); // SIGKILL
      p.waitFor();
      List<Integer> steps =
          Files.readAllLines(run.resolve("metrics.jsonl")).stream()
              .filter(l -> l.endsWith("}"))
              .map(l -> Integer.parseInt(l.replaceAll(".*\"step\":(\\d+).*", "$1")))
              .toList();
      for (int i = 0; i < steps.size(); i++) {
        assertEquals(i + 1, steps.get(i), "metrics step rows");
      }
      // The dead holder's lock file is still there, naming it; it no longer blocks.
      assertTrue(Files.readString(lockFile).startsWith(p.pid() + "\n"));
      try (DirLock lock = DirLock.runDir(run)) {
        assertTrue(Files.readString(lockFile).startsWith(ProcessHandle.current().pid() + "\n"));
      }
    } finally {
      p.destroyForcibly();
    }
  }

  @Test
  void staleLockFileOfADeadProcessDoesNotBlockATrainingRun() throws Exception {
    Path data = RunDirectoryTest.synthetic(tmp, 40, 4);
    Path run = Files.createDirectories(tmp.resolve("run"));
    Files.writeString(
        run.resolve(DirLock.RUN_DIR_LOCK), "999999999\nrme train-rm --out " + run + "\n");
    Cli.Run r = Cli.rme(trainRm(data, run, "--steps", "2"));
    assertEquals(0, r.code(), r.err());
  }

  /**
   * Within one JVM the OS lock cannot tell threads apart: a second thread is refused the same way.
   */
  @Test
  void anotherThreadHoldingTheLockRefusesTrainingAndExport() throws Exception {
    Path data = RunDirectoryTest.synthetic(tmp, 40, 5);
    Path run = tmp.resolve("run");
    Path version = tmp.resolve("savedmodels").resolve("rm").resolve("1");
    CountDownLatch held = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Thread t =
        new Thread(
            () -> {
              try (DirLock a = DirLock.runDir(run);
                  DirLock b = DirLock.sibling(version)) {
                held.countDown();
                release.await();
              } catch (Exception e) {
                throw new IllegalStateException(e);
              }
            });
    t.start();
    try {
      assertTrue(held.await(10, TimeUnit.SECONDS));
      String pid = "in use by pid " + ProcessHandle.current().pid();
      Cli.Run r = Cli.rme(trainRm(data, run, "--steps", "2"));
      assertEquals(2, r.code(), r.err());
      assertTrue(r.err().contains(run + " is " + pid), r.err());
      Cli.Run e =
          Cli.rme(
              "export",
              "--model",
              Fixtures.dir("llama-seqcls").toString(),
              "--name",
              "rm",
              "--root",
              tmp.resolve("savedmodels").toString());
      assertEquals(2, e.code(), e.err());
      assertTrue(e.err().contains(pid), e.err());
      assertFalse(Files.exists(version));
    } finally {
      release.countDown();
      t.join();
    }
    assertFalse(
        Files.exists(tmp.resolve("savedmodels").resolve("rm").resolve(".1.lock")),
        "released lock file removed");
    Cli.Run e =
        Cli.rme(
            "export",
            "--model",
            Fixtures.dir("llama-seqcls").toString(),
            "--name",
            "rm",
            "--root",
            tmp.resolve("savedmodels").toString());
    assertEquals(0, e.code(), e.err());
    assertTrue(Files.isRegularFile(version.resolve("saved_model.pb")));
    Cli.Run r = Cli.rme(trainRm(data, run, "--steps", "2"));
    assertEquals(0, r.code(), r.err());
  }

  /** A command refused on bad input leaves no run directory behind (the lock created it). */
  @Test
  void refusedRunLeavesNoEmptyRunDirectory() throws Exception {
    Path run = tmp.resolve("run");
    Cli.Run r = Cli.rme(trainRm(tmp.resolve("missing.jsonl"), run, "--steps", "2"));
    assertEquals(2, r.code(), r.err());
    assertFalse(Files.exists(run), "an empty run directory was left");
  }
}
