package dev.rewardensemble;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The packages of {@code src/main/java/dev/rewardensemble} form an acyclic graph, layered bottom to
 * top as follows (a package may use only packages of lower layers):
 *
 * <ol start="0">
 *   <li>{@code config} (validated records, the Hugging Face layout of each family), {@code data}
 *       (tokenizer, templates, rows, preference readers)
 *   <li>{@code io}: files (safetensors, Hugging Face checkpoints, PEFT adapter files, atomic
 *       writes, run directories); host tensors ({@code FloatTensor})
 *   <li>{@code model}: the TensorFlow graphs of each family, heads, {@code GraphSession}
 *   <li>{@code lora}: LoRA adapters in the graph ({@code StackedLora}) and their stacked layout
 *   <li>{@code train} (Bradley-Terry, AdamW, checkpoints), {@code ensemble} (ensemble graphs,
 *       aggregation, normalisation, diagnostics, {@code EnsembleScorer})
 *   <li>{@code serving}: SavedModel export and reload
 *   <li>{@code rl} (sampling, Best-of-n, PPO; scores through {@code ensemble.EnsembleScorer}),
 *       {@code api} (the public entry points: {@code RewardModel}, {@code RewardTraining}, ...)
 *   <li>{@code server}: {@code rme serve}'s HTTP server over {@code api.RewardModel}
 *   <li>{@code eval} (the gold-judge world and the demo), {@code bench}, {@code spark} (scoring and
 *       selection as Spark jobs; compiled against Spark's provided jars)
 *   <li>{@code cli}: one class per command, the top
 * </ol>
 *
 * <p>Dependencies are read from the sources: {@code import [static] dev.rewardensemble.X...} and
 * fully qualified {@code dev.rewardensemble.X.Y} in code (comments, Javadoc and string literals do
 * not count). A cycle is reported as the packages around it, each edge with a file that makes it.
 */
class PackageGraphTest {
  private static final Path ROOT = Path.of("src/main/java/dev/rewardensemble");
  private static final Pattern REF =
      Pattern.compile("\\bdev\\.rewardensemble\\.([a-z_][a-z0-9_]*)\\.([\\w$]+)");

  /** The layers above, lowest first. */
  static final List<Set<String>> LAYERS =
      List.of(
          Set.of("config", "data"),
          Set.of("io"),
          Set.of("model"),
          Set.of("lora"),
          Set.of("train", "ensemble"),
          Set.of("serving"),
          Set.of("rl", "api"),
          Set.of("server"),
          Set.of("eval", "bench", "spark"),
          Set.of("cli"));

  /** Package to package it uses, to one file (with the reference) that uses it. */
  static Map<String, Map<String, String>> dependencies(Path root) throws IOException {
    Map<String, Map<String, String>> deps = new TreeMap<>();
    try (Stream<Path> files = Files.walk(root)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
        String pkg =
            root.relativize(f.getParent())
                .toString()
                .replace(f.getFileSystem().getSeparator(), ".");
        Map<String, String> out = deps.computeIfAbsent(pkg, k -> new TreeMap<>());
        Matcher m = REF.matcher(code(Files.readString(f)));
        while (m.find()) {
          String to = m.group(1);
          if (!to.equals(pkg)) {
            out.putIfAbsent(to, root.relativize(f) + " (" + m.group() + ")");
          }
        }
      }
    }
    return deps;
  }

  /**
   * {@code java} without comments and without the contents of string, text-block and char literals.
   */
  static String code(String java) {
    StringBuilder sb = new StringBuilder(java.length());
    int i = 0;
    int n = java.length();
    while (i < n) {
      char c = java.charAt(i);
      if (java.startsWith("//", i)) {
        while (i < n && java.charAt(i) != '\n') {
          i++;
        }
      } else if (java.startsWith("/*", i)) {
        int end = java.indexOf("*/", i + 2);
        i = end < 0 ? n : end + 2;
        sb.append(' ');
      } else if (java.startsWith("\"\"\"", i)) {
        int end = i + 3;
        while (end < n && !(java.startsWith("\"\"\"", end) && java.charAt(end - 1) != '\\')) {
          end++;
        }
        i = Math.min(n, end + 3);
        sb.append("\"\"");
      } else if (c == '"' || c == '\'') {
        int j = i + 1;
        while (j < n && java.charAt(j) != c) {
          j += java.charAt(j) == '\\' ? 2 : 1;
        }
        i = j + 1;
        sb.append(c).append(c);
      } else {
        sb.append(c);
        i++;
      }
    }
    return sb.toString();
  }

  /** One cycle of {@code deps} as its packages (first = last), or an empty list when acyclic. */
  static List<String> findCycle(Map<String, Map<String, String>> deps) {
    Map<String, Integer> state = new HashMap<>(); // 1 = on the DFS path, 2 = done
    List<String> path = new ArrayList<>();
    for (String start : new TreeSet<>(deps.keySet())) {
      List<String> cycle = dfs(start, deps, state, path);
      if (!cycle.isEmpty()) {
        return cycle;
      }
    }
    return List.of();
  }

  private static List<String> dfs(
      String p,
      Map<String, Map<String, String>> deps,
      Map<String, Integer> state,
      List<String> path) {
    Integer s = state.get(p);
    if (s != null && s == 2) {
      return List.of();
    }
    if (s != null && s == 1) {
      List<String> cycle = new ArrayList<>(path.subList(path.indexOf(p), path.size()));
      cycle.add(p);
      return cycle;
    }
    state.put(p, 1);
    path.add(p);
    for (String q : deps.getOrDefault(p, Map.of()).keySet()) {
      List<String> cycle = dfs(q, deps, state, path);
      if (!cycle.isEmpty()) {
        return cycle;
      }
    }
    path.remove(path.size() - 1);
    state.put(p, 2);
    return List.of();
  }

  static String describe(List<String> cycle, Map<String, Map<String, String>> deps) {
    StringBuilder sb = new StringBuilder(String.join(" -> ", cycle));
    for (int i = 0; i + 1 < cycle.size(); i++) {
      sb.append("\n  ")
          .append(cycle.get(i))
          .append(" -> ")
          .append(cycle.get(i + 1))
          .append(": ")
          .append(deps.get(cycle.get(i)).get(cycle.get(i + 1)));
    }
    return sb.toString();
  }

  @Test
  void packagesHaveNoCycle() throws IOException {
    Map<String, Map<String, String>> deps = dependencies(ROOT);
    // the scan sees the dependencies that do exist (so an empty scan cannot pass)
    assertTrue(deps.get("cli").containsKey("api"), deps.toString());
    assertTrue(deps.get("model").containsKey("io"), deps.toString());
    List<String> cycle = findCycle(deps);
    if (!cycle.isEmpty()) {
      fail("package cycle: " + describe(cycle, deps));
    }
  }

  @Test
  void packagesUseOnlyLowerLayers() throws IOException {
    Map<String, Integer> layer = new HashMap<>();
    for (int i = 0; i < LAYERS.size(); i++) {
      for (String p : LAYERS.get(i)) {
        layer.put(p, i);
      }
    }
    List<String> problems = new ArrayList<>();
    Map<String, Map<String, String>> deps = dependencies(ROOT);
    for (Map.Entry<String, Map<String, String>> e : deps.entrySet()) {
      Integer from = layer.get(e.getKey());
      if (from == null) {
        problems.add("package " + e.getKey() + " is in no layer: add it to LAYERS and the Javadoc");
        continue;
      }
      for (Map.Entry<String, String> d : e.getValue().entrySet()) {
        Integer to = layer.get(d.getKey());
        if (to != null && to >= from) {
          problems.add(
              e.getKey()
                  + " (layer "
                  + from
                  + ") uses "
                  + d.getKey()
                  + " (layer "
                  + to
                  + "): "
                  + d.getValue());
        }
      }
    }
    assertEquals(List.of(), problems);
  }

  @Test
  void aCycleIsFoundAndNamed() {
    Map<String, Map<String, String>> deps = new TreeMap<>();
    deps.put("a", Map.of("b", "a/X.java"));
    deps.put("b", Map.of("c", "b/Y.java"));
    deps.put("c", Map.of("a", "c/Z.java", "d", "c/W.java"));
    deps.put("d", Map.of());
    List<String> cycle = findCycle(deps);
    assertEquals(List.of("a", "b", "c", "a"), cycle);
    assertTrue(describe(cycle, deps).contains("c -> a: c/Z.java"), describe(cycle, deps));
    deps.put("c", Map.of("d", "c/W.java"));
    assertEquals(List.of(), findCycle(deps));
  }

  @Test
  void commentsAndStringsAreNotDependencies() {
    String src =
        "import dev.rewardensemble.io.FloatTensor;\n"
            + "// dev.rewardensemble.cli.Main\n/** {@link dev.rewardensemble.api.RewardModel} */\n"
            + "String s = \"dev.rewardensemble.cli.Main\"; char q = '\"'; var x = dev.rewardensemble.model.Llama.X;\n";
    Matcher m = REF.matcher(code(src));
    List<String> found = new ArrayList<>();
    while (m.find()) {
      found.add(m.group(1));
    }
    assertEquals(List.of("io", "model"), found);
  }

  static {
    if (!Files.isDirectory(ROOT)) {
      throw new UncheckedIOException(
          new IOException(ROOT.toAbsolutePath() + " not found (run from the project root)"));
    }
  }
}
