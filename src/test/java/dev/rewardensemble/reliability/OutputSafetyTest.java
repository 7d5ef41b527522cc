package dev.rewardensemble.reliability;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.Fixtures;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue #13, data loss and unsafe writes: nothing the user gave is overwritten or deleted unless
 * asked for, outputs are written so that other users can read them (umask), device and FIFO outputs
 * are written in place, and leftovers of interrupted writers are cleaned only when provably stale.
 */
class OutputSafetyTest {
  @TempDir Path tmp;

  private static final int S_IFMT = 0170000;
  private static final int S_IFCHR = 0020000;
  private static final int S_IFIFO = 0010000;

  // ----------------------------------------------------------------------------------------------
  // helpers

  private static Cli.Run rme(String... args) {
    return Cli.rme(args);
  }

  /** Asserts exit 2 with exactly one line {@code rme: error: ...} containing every fragment. */
  private static void assertOneLineError(Cli.Run r, String... fragments) {
    assertEquals(2, r.code(), r.err());
    List<String> lines = r.err().strip().lines().toList();
    assertEquals(1, lines.size(), "one line expected, got: " + r.err());
    assertTrue(lines.get(0).startsWith("rme: error: "), r.err());
    for (String f : fragments) {
      assertTrue(lines.get(0).contains(f), "'" + f + "' missing from: " + r.err());
    }
  }

  /** A copy of a fixture directory in the test's own temporary directory. */
  private Path copyFixture(String name) throws IOException {
    Path src = Fixtures.dir(name);
    Path dst = tmp.resolve("fx-" + name);
    try (Stream<Path> s = Files.walk(src)) {
      for (Path p : s.toList()) {
        Path d = dst.resolve(src.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(d);
        } else {
          Files.copy(p, d);
        }
      }
    }
    return dst;
  }

  private Path tokenRows() throws IOException {
    Path data = tmp.resolve("rows.jsonl");
    Files.write(data, List.of("{\"input_ids\": [5, 6, 7]}", "{\"input_ids\": [8, 9]}"));
    return data;
  }

  private static int mode(Path p) throws IOException {
    return (Integer) Files.getAttribute(p, "unix:mode");
  }

  /** The PID of a process that has exited. */
  private static long deadPid() throws Exception {
    Process p = new ProcessBuilder("true").start();
    assertEquals(0, p.waitFor());
    long pid = p.pid();
    assumeTrue(ProcessHandle.of(pid).isEmpty(), "pid " + pid + " was reused at once");
    return pid;
  }

  private static void run(String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor(), String.join(" ", cmd) + ": " + out);
  }

  // ----------------------------------------------------------------------------------------------
  // 1. hf and peft exports into an existing directory

  @Test
  void hfExportRefusesANonEmptyOutAndWithOverwriteReplacesOnlyItsOwnFiles() throws Exception {
    Path out = tmp.resolve("hf");
    Files.createDirectories(out);
    Path notes = out.resolve("notes.txt");
    Files.writeString(notes, "mine\n");
    Files.writeString(out.resolve("model.safetensors"), "old weights");
    String model = Fixtures.dir("gpt2-seqcls").toString();

    Cli.Run r = rme("export", "--model", model, "--format", "hf", "--out", out.toString());
    assertOneLineError(r, out.toString(), "not empty", "--overwrite");
    assertEquals("mine\n", Files.readString(notes));
    assertEquals("old weights", Files.readString(out.resolve("model.safetensors")));

    r = rme("export", "--model", model, "--format", "hf", "--out", out.toString(), "--overwrite");
    assertEquals(0, r.code(), r.err());
    assertEquals("mine\n", Files.readString(notes), "a file the export does not write was touched");
    assertTrue(
        Files.size(out.resolve("model.safetensors")) > 100, "the old weights were not replaced");
    // The export is a complete checkpoint: it scores like the fixture.
    Path data = tokenRows();
    Path a = tmp.resolve("a.jsonl");
    Path b = tmp.resolve("b.jsonl");
    assertEquals(
        0, rme("score", "--model", model, "--data", data.toString(), "--out", a.toString()).code());
    assertEquals(
        0,
        rme("score", "--model", out.toString(), "--data", data.toString(), "--out", b.toString())
            .code());
    assertEquals(Files.readAllLines(a), Files.readAllLines(b));
    // An empty existing directory needs no --overwrite; a new one is created.
    Path empty = Files.createDirectory(tmp.resolve("empty"));
    assertEquals(
        0, rme("export", "--model", model, "--format", "hf", "--out", empty.toString()).code());
    assertTrue(Files.isRegularFile(empty.resolve("config.json")));
    assertNoTempLeftovers(tmp);
  }

  @Test
  void hfExportOfAnIndependentEnsembleKeepsOtherFilesOfTheMemberDirectories() throws Exception {
    Path data = tmp.resolve("syn.jsonl");
    assertEquals(0, rme("synthetic-prefs", "--pairs", "40", "--out", data.toString()).code());
    Path run = tmp.resolve("run");
    Cli.Run r =
        rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            data.toString(),
            "--out",
            run.toString(),
            "--ensemble",
            "independent",
            "--k",
            "2",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--grad-accum",
            "1");
    assertEquals(0, r.code(), r.err());
    Path out = Files.createDirectories(tmp.resolve("hf").resolve("member-1"));
    Path notes = Files.writeString(out.resolve("notes.txt"), "mine\n");
    Path hf = out.getParent();
    assertOneLineError(
        rme("export", "--model", run.toString(), "--format", "hf", "--out", hf.toString()),
        "not empty");
    r =
        rme(
            "export",
            "--model",
            run.toString(),
            "--format",
            "hf",
            "--out",
            hf.toString(),
            "--overwrite");
    assertEquals(0, r.code(), r.err());
    assertEquals("mine\n", Files.readString(notes));
    for (int k = 0; k < 2; k++) {
      assertTrue(Files.isRegularFile(hf.resolve("member-" + k).resolve("model.safetensors")));
      assertTrue(Files.isRegularFile(hf.resolve("member-" + k).resolve("config.json")));
    }
    assertNoTempLeftovers(tmp);
  }

  @Test
  void peftExportRefusesANonEmptyOutAndWithOverwriteReplacesOnlyItsOwnFiles() throws Exception {
    Path out = tmp.resolve("peft");
    Files.createDirectories(out.resolve("member-0"));
    Path top = out.resolve("README.md");
    Path inner = out.resolve("member-0").resolve("notes.txt");
    Files.writeString(top, "top\n");
    Files.writeString(inner, "inner\n");
    Path lora = Fixtures.dir("llama-lora");
    String adapters =
        lora.resolve("member0") + "," + lora.resolve("member1") + "," + lora.resolve("member2");
    String base = Fixtures.dir("llama-seqcls").toString();

    Cli.Run r =
        rme(
            "export",
            "--model",
            base,
            "--lora",
            adapters,
            "--format",
            "peft",
            "--out",
            out.toString());
    assertOneLineError(r, out.toString(), "not empty");
    assertFalse(Files.exists(out.resolve("member-0").resolve("adapter_config.json")));

    r =
        rme(
            "export",
            "--model",
            base,
            "--lora",
            adapters,
            "--format",
            "peft",
            "--out",
            out.toString(),
            "--overwrite");
    assertEquals(0, r.code(), r.err());
    assertEquals("top\n", Files.readString(top));
    assertEquals("inner\n", Files.readString(inner));
    for (int k = 0; k < 3; k++) {
      assertTrue(Files.isRegularFile(out.resolve("member-" + k).resolve("adapter_config.json")));
      assertTrue(
          Files.isRegularFile(out.resolve("member-" + k).resolve("adapter_model.safetensors")));
    }
    // Exporting again over the complete export is allowed with --overwrite and still keeps the
    // notes.
    r =
        rme(
            "export",
            "--model",
            base,
            "--lora",
            adapters,
            "--format",
            "peft",
            "--out",
            out.toString(),
            "--overwrite");
    assertEquals(0, r.code(), r.err());
    assertEquals("inner\n", Files.readString(inner));
    assertNoTempLeftovers(tmp);
  }

  @Test
  void savedModelExportStillRefusesAnExistingVersionWithoutOverwrite() throws Exception {
    Path root = tmp.resolve("savedmodels");
    String model = Fixtures.dir("gpt2-seqcls").toString();
    assertEquals(
        0, rme("export", "--model", model, "--name", "rm", "--root", root.toString()).code());
    Path v1 = root.resolve("rm").resolve("1");
    Path marker = v1.resolve("assets.extra").resolve("rme-model.json");
    String before = Files.readString(marker);

    Cli.Run r = rme("export", "--model", model, "--name", "rm", "--root", root.toString());
    assertOneLineError(r, v1.toString(), "already exists");
    assertEquals(before, Files.readString(marker));

    r = rme("export", "--model", model, "--name", "rm", "--root", root.toString(), "--overwrite");
    assertEquals(0, r.code(), r.err());
    assertTrue(Files.isRegularFile(v1.resolve("saved_model.pb")));
    assertNoTempLeftovers(root.resolve("rm"));
  }

  @Test
  void policySavedModelExportRefusesAnExistingVersionAndOverwriteReplacesIt() throws Exception {
    Path root = tmp.resolve("savedmodels");
    String policy = Fixtures.dir("llama-causal").toString();
    assertEquals(
        0,
        rme("export", "--policy", "--model", policy, "--name", "pol", "--root", root.toString())
            .code());
    Path v1 = root.resolve("pol").resolve("1");
    Cli.Run r =
        rme("export", "--policy", "--model", policy, "--name", "pol", "--root", root.toString());
    assertOneLineError(r, v1.toString(), "already exists");
    r =
        rme(
            "export",
            "--policy",
            "--model",
            policy,
            "--name",
            "pol",
            "--root",
            root.toString(),
            "--overwrite");
    assertEquals(0, r.code(), r.err());
    assertTrue(Files.isRegularFile(v1.resolve("saved_model.pb")));
    assertNoTempLeftovers(root.resolve("pol"));
  }

  // ----------------------------------------------------------------------------------------------
  // 2. an output that is an input

  @Test
  void scoreRefusesAnOutThatIsTheInputUnderAnyName() throws Exception {
    Path data = tokenRows();
    byte[] before = Files.readAllBytes(data);
    String model = Fixtures.dir("gpt2-seqcls").toString();
    Path sym = tmp.resolve("link.jsonl");
    Files.createSymbolicLink(sym, data);
    Path hard = tmp.resolve("hard.jsonl");
    Files.createLink(hard, data);
    Path sub = Files.createDirectory(tmp.resolve("sub"));
    List<String> spellings =
        List.of(
            data.toString(),
            sym.toString(),
            hard.toString(),
            sub.resolve("..").resolve(".").resolve(data.getFileName().toString()).toString(),
            Path.of("").toAbsolutePath().relativize(data).toString());
    for (String out : spellings) {
      Cli.Run r = rme("score", "--model", model, "--data", data.toString(), "--out", out);
      assertOneLineError(r, "--out " + out, "--data " + data, "same file");
      assertArrayEquals(before, Files.readAllBytes(data), "the input was changed via " + out);
    }
    assertTrue(Files.isSymbolicLink(sym));
  }

  @Test
  void everyCommandWithInputsAndOutRefusesToWriteOverAnInput() throws Exception {
    Path data = tokenRows();
    byte[] before = Files.readAllBytes(data);
    Path prompts = tmp.resolve("prompts.jsonl");
    Files.write(prompts, List.of("{\"input_ids\": [1, 2, 3]}"));
    byte[] promptsBefore = Files.readAllBytes(prompts);
    String rm = Fixtures.dir("gpt2-seqcls").toString();
    String causal = Fixtures.dir("llama-causal").toString();

    assertOneLineError(
        rme(
            "generate",
            "--model",
            causal,
            "--prompts",
            prompts.toString(),
            "--out",
            prompts.toString(),
            "--max-new-tokens",
            "2",
            "--greedy"),
        "--out",
        "--prompts",
        "same file");
    assertOneLineError(
        rme(
            "best-of-n",
            "--policy",
            causal,
            "--reward-model",
            rm,
            "--prompts",
            prompts.toString(),
            "--out",
            prompts.toString(),
            "--n",
            "2"),
        "--out",
        "--prompts",
        "same file");
    Path sel = tmp.resolve("sel.jsonl");
    assertOneLineError(
        rme(
            "best-of-n",
            "--policy",
            causal,
            "--reward-model",
            rm,
            "--prompts",
            prompts.toString(),
            "--out",
            sel.toString(),
            "--candidates-out",
            tmp.resolve(".").resolve("sel.jsonl").toString(),
            "--n",
            "2"),
        "--out",
        "--candidates-out",
        "same file");
    assertOneLineError(
        rme("diagnose", "--model", rm, "--data", data.toString(), "--json", data.toString()),
        "--json",
        "--data",
        "same file");
    Path spec = Files.copy(Path.of("tf-graphs/tiny-llama.json"), tmp.resolve("tiny-llama.json"));
    byte[] specBefore = Files.readAllBytes(spec);
    assertOneLineError(
        rme("graph", "--spec", spec.toString(), "--out", spec.toString()),
        "--out",
        "--spec",
        "same file");
    assertArrayEquals(specBefore, Files.readAllBytes(spec));

    // Run directories must neither be nor contain an input.
    Path runDir = Files.createDirectory(tmp.resolve("run"));
    Path inside = runDir.resolve("prefs.jsonl");
    Files.write(inside, List.of("{\"chosen_ids\": [1, 2], \"rejected_ids\": [3, 4]}"));
    assertOneLineError(
        rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            inside.toString(),
            "--out",
            runDir.toString()),
        "--out " + runDir,
        "contains",
        "--data " + inside);
    Path base = copyFixture("llama-seqcls");
    assertOneLineError(
        rme(
            "train-rm",
            "--model",
            base.toString(),
            "--data",
            data.toString(),
            "--out",
            base.toString()),
        "--out " + base,
        "--model " + base);
    assertOneLineError(
        rme(
            "ppo",
            "--policy",
            causal,
            "--reward-model",
            rm,
            "--prompts",
            inside.toString(),
            "--out",
            runDir.toString()),
        "--out",
        "contains",
        "--prompts");
    // eval: its output files must not be its inputs.
    Path evalOut = Files.createDirectory(tmp.resolve("eval"));
    Path ref = evalOut.resolve("alpaca_eval.json");
    Files.writeString(ref, "[]");
    assertOneLineError(
        rme(
            "eval",
            "--policy",
            causal,
            "--prompts",
            prompts.toString(),
            "--out",
            evalOut.toString(),
            "--judge",
            rm,
            "--reference",
            ref.toString()),
        "--reference " + ref,
        "same file");
    assertEquals("[]", Files.readString(ref));

    // export: hf over the model directory itself, peft over the adapters it reads.
    Path hfModel = copyFixture("gpt2-seqcls");
    byte[] weights = Files.readAllBytes(hfModel.resolve("model.safetensors"));
    assertOneLineError(
        rme(
            "export",
            "--model",
            hfModel.toString(),
            "--format",
            "hf",
            "--out",
            hfModel.toString(),
            "--overwrite"),
        "--out " + hfModel,
        "--model " + hfModel);
    assertArrayEquals(weights, Files.readAllBytes(hfModel.resolve("model.safetensors")));
    Path adapters = Files.createDirectory(tmp.resolve("adapters"));
    List<String> members = new ArrayList<>();
    for (int k = 0; k < 3; k++) {
      Path src = Fixtures.dir("llama-lora").resolve("member" + k);
      Path dst = Files.createDirectory(adapters.resolve("member-" + k));
      Files.copy(src.resolve("adapter_config.json"), dst.resolve("adapter_config.json"));
      Files.copy(
          src.resolve("adapter_model.safetensors"), dst.resolve("adapter_model.safetensors"));
      members.add(dst.toString());
    }
    assertOneLineError(
        rme(
            "export",
            "--model",
            Fixtures.dir("llama-seqcls").toString(),
            "--lora",
            String.join(",", members),
            "--format",
            "peft",
            "--out",
            adapters.toString(),
            "--overwrite"),
        "--out " + adapters,
        "contains",
        "--lora");
    // SavedModel: the version directory being exported over is the --model.
    Path root = tmp.resolve("savedmodels");
    assertEquals(0, rme("export", "--model", rm, "--name", "x", "--root", root.toString()).code());
    Path v1 = root.resolve("x").resolve("1");
    byte[] pb = Files.readAllBytes(v1.resolve("saved_model.pb"));
    assertOneLineError(
        rme(
            "export",
            "--model",
            v1.toString(),
            "--name",
            "x",
            "--root",
            root.toString(),
            "--overwrite"),
        v1.toString(),
        "--model");
    assertArrayEquals(pb, Files.readAllBytes(v1.resolve("saved_model.pb")));

    assertArrayEquals(before, Files.readAllBytes(data));
    assertArrayEquals(promptsBefore, Files.readAllBytes(prompts));
  }

  // ----------------------------------------------------------------------------------------------
  // 3. devices, FIFOs and standard output

  @Test
  void aFifoOutIsWrittenInPlaceAndStaysAFifo() throws Exception {
    Path fifo = tmp.resolve("scores.fifo");
    run("mkfifo", fifo.toString());
    AtomicReference<List<String>> got = new AtomicReference<>();
    Thread reader =
        new Thread(
            () -> {
              try {
                got.set(Files.readAllLines(fifo));
              } catch (IOException e) {
                got.set(List.of("ERROR " + e));
              }
            });
    reader.setDaemon(true);
    reader.start();
    Cli.Run r =
        rme(
            "score",
            "--model",
            Fixtures.dir("gpt2-seqcls").toString(),
            "--data",
            tokenRows().toString(),
            "--out",
            fifo.toString());
    assertEquals(0, r.code(), r.err());
    reader.join(20_000);
    assertEquals(S_IFIFO, mode(fifo) & S_IFMT, "the FIFO was replaced");
    assertFalse(reader.isAlive(), "the reader of the FIFO got nothing");
    assertEquals(2, got.get().size(), got.get().toString());
    assertTrue(got.get().get(0).contains("\"reward\""), got.get().toString());
    assertNoTempLeftovers(tmp);
  }

  @Test
  void devNullAndOtherCharacterDevicesStayDevices() throws Exception {
    Path devNull = Path.of("/dev/null");
    assumeTrue(Files.exists(devNull) && (mode(devNull) & S_IFMT) == S_IFCHR);
    Cli.Run r = rme("synthetic-prefs", "--pairs", "3", "--out", devNull.toString());
    assertEquals(0, r.code(), r.err());
    assertEquals(S_IFCHR, mode(devNull) & S_IFMT, "/dev/null is no longer a character device");
    assertTrue(Files.isWritable(devNull));

    // A character device node of our own (the null device), where the system allows creating one.
    Path node = tmp.resolve("null-node");
    Process p =
        new ProcessBuilder("mknod", node.toString(), "c", "1", "3")
            .redirectErrorStream(true)
            .start();
    p.getInputStream().readAllBytes();
    if (p.waitFor() == 0) {
      r = rme("synthetic-prefs", "--pairs", "3", "--out", node.toString());
      assertEquals(0, r.code(), r.err());
      assertEquals(S_IFCHR, mode(node) & S_IFMT, "the device node was replaced by a regular file");
      assertNoTempLeftovers(tmp);
    }
  }

  @Test
  void outDashMeansStandardOutput() throws Exception {
    PrintStream saved = System.out;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    Cli.Run r;
    try {
      System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
      r = rme("synthetic-prefs", "--pairs", "4", "--out", "-");
    } finally {
      System.setOut(saved);
    }
    assertEquals(0, r.code(), r.err());
    assertEquals(4, buf.toString(StandardCharsets.UTF_8).strip().lines().count());
    assertFalse(Files.exists(Path.of("-")), "a file named '-' was written");
  }

  // ----------------------------------------------------------------------------------------------
  // 4. directories where files are expected

  @Test
  void aDirectoryGivenForAFileGetsOneLineNamingIt() throws Exception {
    Path dir = Files.createDirectory(tmp.resolve("a-dir"));
    String rm = Fixtures.dir("gpt2-seqcls").toString();
    assertOneLineError(
        rme("score", "--model", rm, "--data", tokenRows().toString(), "--out", dir.toString()),
        "--out " + dir,
        "is a directory");
    assertOneLineError(
        rme("synthetic-prefs", "--out", dir.toString()), "--out " + dir, "is a directory");
    assertOneLineError(
        rme("score", "--model", rm, "--data", dir.toString()), "--data " + dir, "is a directory");
    assertOneLineError(
        rme(
            "generate",
            "--model",
            Fixtures.dir("llama-causal").toString(),
            "--prompts",
            dir.toString(),
            "--max-new-tokens",
            "2",
            "--greedy"),
        "--prompts " + dir,
        "is a directory");
    assertOneLineError(
        rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            dir.toString(),
            "--out",
            tmp.resolve("run").toString()),
        "--data " + dir,
        "is a directory");
    try (Stream<Path> s = Files.list(dir)) {
      assertEquals(0, s.count(), "something was written into the directory");
    }
  }

  // ----------------------------------------------------------------------------------------------
  // 5. permissions follow the umask

  @Test
  void outputsGetTheDefaultPermissionsOfNewFilesAndDirectories() throws Exception {
    Set<PosixFilePermission> fileDefault =
        Files.getPosixFilePermissions(Files.createFile(tmp.resolve("fresh-file")));
    Set<PosixFilePermission> dirDefault =
        Files.getPosixFilePermissions(Files.createDirectory(tmp.resolve("fresh-dir")));
    assumeTrue(
        fileDefault.contains(PosixFilePermission.OTHERS_READ),
        "the umask hides files from other users anyway: " + fileDefault);
    String rm = Fixtures.dir("gpt2-seqcls").toString();

    Path scores = tmp.resolve("scores.jsonl");
    assertEquals(
        0,
        rme("score", "--model", rm, "--data", tokenRows().toString(), "--out", scores.toString())
            .code());
    assertEquals(fileDefault, Files.getPosixFilePermissions(scores), "score output");

    Path root = tmp.resolve("savedmodels");
    assertEquals(0, rme("export", "--model", rm, "--name", "rm", "--root", root.toString()).code());
    assertTreePermissions(root.resolve("rm").resolve("1"), fileDefault, dirDefault);

    Path hf = tmp.resolve("hf");
    assertEquals(0, rme("export", "--model", rm, "--format", "hf", "--out", hf.toString()).code());
    assertTreePermissions(hf, fileDefault, dirDefault);

    Path lora = Fixtures.dir("llama-lora");
    Path peft = tmp.resolve("peft");
    assertEquals(
        0,
        rme(
                "export",
                "--model",
                Fixtures.dir("llama-seqcls").toString(),
                "--lora",
                lora.resolve("member0") + "," + lora.resolve("member1"),
                "--format",
                "peft",
                "--out",
                peft.toString())
            .code());
    assertTreePermissions(peft, fileDefault, dirDefault);

    // Replacing an existing file keeps its permissions (they may be tighter on purpose).
    Files.setPosixFilePermissions(
        scores, Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE));
    assertEquals(
        0,
        rme("score", "--model", rm, "--data", tokenRows().toString(), "--out", scores.toString())
            .code());
    assertEquals(
        Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE),
        Files.getPosixFilePermissions(scores));
  }

  private static void assertTreePermissions(
      Path root, Set<PosixFilePermission> fileDefault, Set<PosixFilePermission> dirDefault)
      throws IOException {
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : s.toList()) {
        Set<PosixFilePermission> perms =
            Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS);
        if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
          assertEquals(dirDefault, perms, "directory " + p);
        } else {
          // Files written by TensorFlow's own code may differ in the execute or write bits, but
          // must be readable wherever a new file is.
          for (PosixFilePermission read :
              List.of(
                  PosixFilePermission.OWNER_READ,
                  PosixFilePermission.GROUP_READ,
                  PosixFilePermission.OTHERS_READ)) {
            assertEquals(
                fileDefault.contains(read), perms.contains(read), read + " of " + p + ": " + perms);
          }
        }
      }
    }
  }

  // ----------------------------------------------------------------------------------------------
  // 6. leftovers of interrupted writers

  @Test
  void staleTempFilesOfAnOutputAreRemovedAndLiveOnesKept() throws Exception {
    Path out = tmp.resolve("out.jsonl");
    long dead = deadPid();
    long self = ProcessHandle.current().pid();
    Path stale = Files.writeString(tmp.resolve(".out.jsonl." + dead + "-1a2b.tmp"), "half");
    Path live = Files.writeString(tmp.resolve(".out.jsonl." + self + "-3c4d.tmp"), "being written");
    Path foreign = Files.writeString(tmp.resolve(".out.jsonl123456.tmp"), "not ours to judge");
    Path other =
        Files.writeString(tmp.resolve(".other.jsonl." + dead + "-1a2b.tmp"), "another target");

    Cli.Run r = rme("synthetic-prefs", "--pairs", "3", "--out", out.toString());
    assertEquals(0, r.code(), r.err());
    assertFalse(Files.exists(stale), "the leftover of a dead writer stayed");
    assertTrue(Files.exists(live), "the temporary file of a live writer was removed");
    assertTrue(Files.exists(foreign));
    assertTrue(Files.exists(other));
    assertEquals(3, Files.readAllLines(out).size());
  }

  @Test
  void staleTempDirectoriesOfASavedModelExportAreRemovedAndLiveOnesKept() throws Exception {
    Path root = tmp.resolve("savedmodels");
    Path name = Files.createDirectories(root.resolve("rm"));
    long dead = deadPid();
    long self = ProcessHandle.current().pid();
    Path stale =
        Files.createDirectories(name.resolve(".1.tmp-" + dead + "-5e6f").resolve("variables"));
    Files.writeString(stale.resolve("variables.index"), "half");
    Path live = Files.createDirectory(name.resolve(".1.tmp-" + self + "-7a8b"));

    Cli.Run r =
        rme(
            "export",
            "--model",
            Fixtures.dir("gpt2-seqcls").toString(),
            "--name",
            "rm",
            "--root",
            root.toString());
    assertEquals(0, r.code(), r.err());
    assertFalse(Files.exists(stale.getParent()), "the leftover of a dead exporter stayed");
    assertTrue(Files.isDirectory(live), "the directory of a live exporter was removed");
    assertTrue(Files.isRegularFile(name.resolve("1").resolve("saved_model.pb")));

    // The staging directory of an interrupted hf export beside its --out.
    Path hfStale = Files.createDirectory(tmp.resolve(".hf.tmp-" + dead + "-9c0d"));
    Path hfLive = Files.createDirectory(tmp.resolve(".hf.tmp-" + self + "-1e2f"));
    r =
        rme(
            "export",
            "--model",
            Fixtures.dir("gpt2-seqcls").toString(),
            "--format",
            "hf",
            "--out",
            tmp.resolve("hf").toString());
    assertEquals(0, r.code(), r.err());
    assertFalse(Files.exists(hfStale), "the staging directory of a dead exporter stayed");
    assertTrue(Files.isDirectory(hfLive));
  }

  @Test
  void anOutThatIsASymbolicLinkKeepsTheLinkAndReplacesItsFile() throws Exception {
    Path real = Files.writeString(tmp.resolve("real.jsonl"), "old\n");
    Path link = Files.createSymbolicLink(tmp.resolve("link.jsonl"), real);
    Cli.Run r = rme("synthetic-prefs", "--pairs", "2", "--out", link.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(Files.isSymbolicLink(link), "the symbolic link was replaced by a file");
    assertEquals(2, Files.readAllLines(real).size());
    assertNoTempLeftovers(tmp);
  }

  /** No temporary file or directory of this process is left anywhere under {@code dir}. */
  private static void assertNoTempLeftovers(Path dir) throws IOException {
    String pid = Long.toString(ProcessHandle.current().pid());
    try (Stream<Path> s = Files.walk(dir)) {
      List<Path> left =
          s.filter(
                  p -> {
                    String n = p.getFileName().toString();
                    return n.startsWith(".")
                        && (n.contains("." + pid + "-") || n.contains(".tmp-" + pid + "-"));
                  })
              .toList();
      assertTrue(left.isEmpty(), "left behind: " + left);
    }
  }
}
