package dev.rewardensemble;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.testing.Fixtures;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.jar.JarFile;
import java.util.jar.Manifest;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The runnable examples in {@code examples/java/} compile against the library and its dependencies
 * and run end to end on tiny models and data, so they cannot rot: a LoRA ensemble trained on {@code
 * tf-graphs/tiny-llama.json} with synthetic preferences, scored with LCB, exported as a SavedModel
 * (which scores the same), and used for Best-of-n with the tiny causal-LM fixture.
 */
class ExamplesTest {
  static final Path EXAMPLES = Path.of("examples/java");
  static final Pattern SCORE =
      Pattern.compile("row (\\d+): K=(\\d+) mean=(-?[\\d.]+) std=(-?[\\d.]+) lcb=(-?[\\d.]+)");

  @TempDir Path tmp;

  @Test
  void examplesCompileAndRun() throws Exception {
    ClassLoader examples = compile(tmp.resolve("classes"));

    Path prefs = tmp.resolve("prefs.jsonl");
    Files.write(
        prefs, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(160, 64, 6, 12, 3, 5)));
    Path run = tmp.resolve("lora3");
    String trained =
        run(
            examples,
            "TrainLoraEnsemble",
            "tf-graphs/tiny-llama.json",
            prefs.toString(),
            run.toString(),
            "3");
    assertTrue(Files.isRegularFile(run.resolve("ensemble.json")), trained);
    for (int m = 0; m < 3; m++) {
      assertTrue(
          Files.isRegularFile(run.resolve("adapters/member-" + m + "/adapter_model.safetensors")),
          "member " + m);
      assertTrue(trained.contains("member " + m + " accuracy"), trained);
    }
    assertTrue(trained.contains("lcb(0.5) accuracy"), trained);

    Path rows = tmp.resolve("rows.jsonl");
    Files.write(
        rows,
        List.of(
            "{\"input_ids\": [1, 54, 74, 71, 9]}",
            "{\"input_ids\": [7, 8, 9]}",
            "",
            "{\"input_ids\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}"));
    List<double[]> fromRun =
        scores(run(examples, "ScoreWithLcb", run.toString(), rows.toString(), "0.5"));
    assertEquals(3, fromRun.size());
    for (double[] s : fromRun) {
      assertEquals(3, (int) s[0]);
      assertEquals(s[1] - 0.5 * s[2], s[3], 2e-6, "lcb = mean - 0.5 std");
      assertTrue(s[2] > 0, "members differ: std " + s[2]);
    }

    Path saved = tmp.resolve("savedmodels/tiny/1");
    String exported = run(examples, "ExportSavedModel", run.toString(), saved.toString());
    assertTrue(Files.isRegularFile(saved.resolve("saved_model.pb")), exported);
    List<double[]> fromSaved =
        scores(run(examples, "ScoreWithLcb", saved.toString(), rows.toString(), "0.5"));
    assertEquals(fromRun.size(), fromSaved.size());
    for (int i = 0; i < fromRun.size(); i++) {
      for (int j = 1; j < 4; j++) {
        assertEquals(fromRun.get(i)[j], fromSaved.get(i)[j], 1e-4, "row " + i + " field " + j);
      }
    }

    String bon =
        run(examples, "BestOfN", Fixtures.dir("llama-causal").toString(), run.toString(), "4");
    Matcher m = Pattern.compile("prompt (\\d): best of 4 is candidate (\\d+), lcb=").matcher(bon);
    int prompts = 0;
    while (m.find()) {
      assertEquals(prompts++, Integer.parseInt(m.group(1)));
      assertTrue(Integer.parseInt(m.group(2)) < 4, bon);
    }
    assertEquals(2, prompts, bon);
  }

  /** {@code [K, mean, std, lcb]} of each printed row. */
  static List<double[]> scores(String out) {
    List<double[]> rows = new ArrayList<>();
    Matcher m = SCORE.matcher(out);
    while (m.find()) {
      assertEquals(rows.size(), Integer.parseInt(m.group(1)), out);
      rows.add(
          new double[] {
            Integer.parseInt(m.group(2)),
            Double.parseDouble(m.group(3)),
            Double.parseDouble(m.group(4)),
            Double.parseDouble(m.group(5))
          });
    }
    return rows;
  }

  /** Runs an example's {@code main} in this JVM and returns what it printed. */
  static String run(ClassLoader loader, String example, String... args) throws Exception {
    PrintStream old = System.out;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      loader.loadClass(example).getMethod("main", String[].class).invoke(null, (Object) args);
    } catch (InvocationTargetException e) {
      throw new AssertionError(example + " failed: " + e.getCause(), e.getCause());
    } finally {
      System.setOut(old);
    }
    String out = buf.toString(StandardCharsets.UTF_8);
    System.out.print(out);
    return out;
  }

  /** Compiles every example against the test classpath into {@code out}. */
  static ClassLoader compile(Path out) throws IOException {
    List<File> sources;
    try (Stream<Path> s = Files.list(EXAMPLES)) {
      sources = s.filter(p -> p.toString().endsWith(".java")).sorted().map(Path::toFile).toList();
    }
    assertEquals(4, sources.size(), "examples: " + sources);
    Files.createDirectories(out);
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
    try (StandardJavaFileManager files =
        javac.getStandardFileManager(diagnostics, null, StandardCharsets.UTF_8)) {
      List<String> options =
          List.of(
              "-classpath",
              classPath(),
              "-d",
              out.toString(),
              "-Xlint:all",
              "-Werror",
              "--release",
              "17");
      boolean ok =
          javac
              .getTask(
                  null,
                  files,
                  diagnostics,
                  options,
                  null,
                  files.getJavaFileObjectsFromFiles(sources))
              .call();
      assertTrue(
          ok,
          "examples do not compile:\n"
              + String.join(
                  "\n", diagnostics.getDiagnostics().stream().map(Object::toString).toList()));
    }
    return new URLClassLoader(new URL[] {out.toUri().toURL()}, ExamplesTest.class.getClassLoader());
  }

  /** The test classpath, with the entries of a manifest-only jar (Surefire's booter) expanded. */
  static String classPath() throws IOException {
    List<String> out = new ArrayList<>();
    for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
      out.add(e);
      if (e.endsWith(".jar") && Files.isRegularFile(Path.of(e))) {
        try (JarFile jar = new JarFile(e)) {
          Manifest mf = jar.getManifest();
          String cp = mf == null ? null : mf.getMainAttributes().getValue("Class-Path");
          if (cp != null) {
            URL base = new File(e).toURI().toURL();
            for (String u : cp.trim().split("\\s+")) {
              try {
                out.add(Path.of(new URL(base, u).toURI()).toString());
              } catch (java.net.URISyntaxException ex) {
                throw new IOException(e + ": bad Class-Path entry " + u, ex);
              }
            }
          }
        }
      }
    }
    return String.join(File.pathSeparator, out);
  }
}
