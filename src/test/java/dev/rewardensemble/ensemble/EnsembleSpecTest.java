package dev.rewardensemble.ensemble;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.api.EnsembleOptions;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.StackedLora;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.train.Schedule;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tensorflow.Graph;
import org.tensorflow.op.Ops;

/**
 * K is validated in one place ({@link EnsembleSpec}), and a run directory's {@code ensemble.json}
 * must agree with what it describes: member directories, heads and normalisation.
 */
class EnsembleSpecTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path tmp;
  static Path loraRun;
  static Path linearRun;
  static Path input;

  @BeforeAll
  static void trainTinyRuns() throws Exception {
    Path data = tmp.resolve("pairs.jsonl");
    Files.write(
        data, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(40, 64, 8, 16, 3, 1)));
    input = tmp.resolve("score.jsonl");
    Files.write(input, List.of("{\"input_ids\": [5, 7, 9, 7, 11]}", "{\"input_ids\": [4, 4, 8]}"));
    loraRun = tmp.resolve("lora");
    var a =
        Cli.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            data.toString(),
            "--out",
            loraRun.toString(),
            "--ensemble",
            "lora",
            "--k",
            "3",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--grad-accum",
            "1",
            "--lr",
            "1e-3",
            "--lora-lr",
            "1e-3",
            "--lora-rank",
            "2",
            "--eval-fraction",
            "0.1",
            "--threads",
            "1");
    assertEquals(0, a.code(), a.err());
    linearRun = tmp.resolve("linear");
    var b =
        Cli.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            data.toString(),
            "--out",
            linearRun.toString(),
            "--ensemble",
            "linear",
            "--k",
            "2",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--grad-accum",
            "1",
            "--lr",
            "1e-3",
            "--eval-fraction",
            "0.1",
            "--threads",
            "1");
    assertEquals(0, b.code(), b.err());
  }

  @Test
  void kIsValidatedOnceWithItsValueNamed() {
    expect("ensemble size K must be >= 1, got 0", () -> EnsembleSpec.of(EnsembleKind.LINEAR, 0));
    expect(
        "a single reward model has K = 1, got K = 3",
        () -> EnsembleSpec.of(EnsembleKind.SINGLE, 3));
    expect(
        "ensemble kind must be single, independent, linear or lora",
        () -> EnsembleSpec.of(null, 2));
    Normalization two = new Normalization(new float[] {0, 1}, new float[] {1, 2}, 10);
    expect(
        "normalization has 2 members, the ensemble K = 3",
        () -> EnsembleSpec.of(EnsembleKind.LORA, 3).withNormalization(two));
    assertEquals(
        AggregationConfig.mean(),
        new EnsembleSpec(EnsembleKind.LINEAR, 2, null, null).aggregation());
    assertEquals(
        Optional.of(two),
        EnsembleSpec.of(EnsembleKind.LINEAR, 2).withNormalization(two).normalization());
    // The training options, the models and the command line all go through the spec.
    expect(
        "ensemble size K must be >= 1, got 0",
        () ->
            new EnsembleOptions(
                EnsembleKind.LORA,
                0,
                false,
                null,
                0.5,
                null,
                5e-5,
                Schedule.Kind.CONSTANT,
                null,
                true,
                2048));
    expect(
        "ensemble size K must be >= 1, got -1",
        () ->
            new EnsembleModel(
                EnsembleSpec.of(EnsembleKind.LINEAR, -1),
                null,
                dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
                Map.of(),
                null,
                Optional.empty(),
                null));
    var r =
        Cli.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            input.toString(),
            "--out",
            tmp.resolve("k0").toString(),
            "--ensemble",
            "linear",
            "--k",
            "0");
    assertEquals(2, r.code(), r.err());
    assertTrue(
        r.err().startsWith("rme: error: ") && r.err().contains("K must be >= 1, got 0"), r.err());
  }

  /**
   * Phase 2's adapters are computed without a graph, and equal what a graph of the same
   * configuration starts from.
   */
  @Test
  void plainJavaLoraInitIsBitIdenticalToTheGraphsInitialValues() throws Exception {
    for (String preset : List.of("tf-graphs/tiny-llama.json", "tf-graphs/tiny-gpt2.json")) {
      ModelConfig c = ModelConfigs.read(Path.of(preset));
      for (int layers : new int[] {0, 1}) {
        LoraConfig lora = LoraConfig.defaults(c).withRank(3, 6).withLoraLayers(layers);
        for (int k : new int[] {1, 3}) {
          Map<String, FloatTensor> plain = LoraInit.adapters(c, lora, k, 17);
          Map<String, FloatTensor> graph;
          try (Graph g = new Graph()) {
            Ops tf = Ops.create(g);
            graph =
                StackedLora.training(
                        dev.rewardensemble.model.BuildContext.float32(tf),
                        c,
                        lora,
                        k,
                        new ParameterStore(tf),
                        17)
                    .initialValues(17);
          }
          assertEquals(List.copyOf(graph.keySet()), List.copyOf(plain.keySet()), preset);
          for (String key : graph.keySet()) {
            assertArrayEquals(graph.get(key).shape(), plain.get(key).shape(), key);
            int[] bitsG = bits(graph.get(key).data());
            int[] bitsP = bits(plain.get(key).data());
            assertArrayEquals(bitsG, bitsP, preset + " " + key + " k=" + k);
          }
        }
      }
    }
  }

  @Test
  void aManifestWhoseKDisagreesWithItsAdaptersIsOneLineNamingKeyAndBothNumbers() throws Exception {
    Path run = copy(loraRun, "k-vs-adapters");
    ObjectNode m = manifest(run);
    m.put("k", 2);
    m.remove("normalization");
    write(run, m);
    assertRefused(run, "key 'k' is 2, but key 'adapters' lists 3 directories");
  }

  @Test
  void aRemovedAdapterIsRefusedByTheManifest() throws Exception {
    // Directory and its manifest entry removed: the count no longer matches k.
    Path run = copy(loraRun, "adapter-removed");
    deleteTree(run.resolve("adapters/member-2"));
    ObjectNode m = manifest(run);
    ((ArrayNode) m.get("adapters")).remove(2);
    write(run, m);
    assertRefused(run, "key 'k' is 3, but key 'adapters' lists 2 directories");
    // Only the directory removed: the manifest names it.
    Path other = copy(loraRun, "adapter-dir-removed");
    deleteTree(other.resolve("adapters/member-1"));
    assertRefused(
        other,
        "key 'adapters' lists " + other.resolve("adapters/member-1"),
        "which is not a directory");
  }

  @Test
  void aNormalizationOfTheWrongLengthIsRefused() throws Exception {
    Path run = copy(loraRun, "norm-mean");
    ObjectNode m = manifest(run);
    ((ArrayNode) m.get("normalization").get("mean")).remove(0);
    write(run, m);
    assertRefused(run, "key 'normalization.mean' has 2 values, but key 'k' is 3");
    Path std = copy(loraRun, "norm-std");
    ObjectNode s = manifest(std);
    ((ArrayNode) s.get("normalization").get("std")).add(1.0);
    write(std, s);
    assertRefused(std, "key 'normalization.std' has 4 values, but key 'k' is 3");
  }

  @Test
  void aManifestWhoseKDisagreesWithTheHeadsIsRefused() throws Exception {
    Path run = copy(linearRun, "k-vs-heads");
    ObjectNode m = manifest(run);
    m.put("k", 3);
    m.remove("normalization");
    write(run, m);
    assertRefused(run, "key 'k' is 3, but " + run + " has 2 reward heads (score.weight rows)");
    Path zero = copy(linearRun, "k-zero");
    ObjectNode z = manifest(zero);
    z.put("k", 0);
    write(zero, z);
    assertRefused(zero, "key 'k': ensemble size K must be >= 1, got 0");
    Path text = copy(linearRun, "k-text");
    ObjectNode t = manifest(text);
    t.put("k", "two");
    write(text, t);
    assertRefused(text, "key 'k' must be an integer, got \"two\"");
  }

  @Test
  void aManifestWithoutKStillLoadsAndScoresTheSame() throws Exception {
    for (Path trained : List.of(loraRun, linearRun)) {
      Path run = copy(trained, "no-k-" + trained.getFileName());
      ObjectNode m = manifest(run);
      int k = m.get("k").asInt();
      m.remove("k");
      write(run, m);
      try (RewardModel before = RewardModel.load(trained);
          RewardModel after = RewardModel.load(run)) {
        assertEquals(k, after.heads());
        assertEquals(before.kind(), after.kind());
        assertEquals(before.aggregation(), after.aggregation());
        assertEquals(before.normalization().isPresent(), after.normalization().isPresent());
        if (before.normalization().isPresent()) {
          assertArrayEquals(
              before.normalization().get().mean(), after.normalization().get().mean());
          assertArrayEquals(before.normalization().get().std(), after.normalization().get().std());
        }
        List<int[]> seqs = List.of(new int[] {5, 7, 9, 7, 11}, new int[] {4, 4, 8});
        float[][] a = before.score(seqs, 2);
        float[][] b = after.score(seqs, 2);
        for (int i = 0; i < a.length; i++) {
          assertArrayEquals(a[i], b[i]);
        }
      }
    }
  }

  @Test
  void theManifestRecordsTheSpecItWasTrainedWith() throws Exception {
    EnsembleModel lora = EnsembleModel.load(loraRun);
    assertEquals(EnsembleKind.LORA, lora.kind());
    assertEquals(3, lora.members());
    assertEquals(3, lora.normalization().orElseThrow().mean().length);
    assertEquals(3, manifest(loraRun).get("k").asInt());
    EnsembleModel linear = EnsembleModel.load(linearRun);
    assertEquals(EnsembleKind.LINEAR, linear.kind());
    assertEquals(2, linear.members());
  }

  private static void assertRefused(Path run, String... mentions) {
    var r = Cli.rme("score", "--model", run.toString(), "--data", input.toString());
    assertEquals(2, r.code(), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertTrue(
        r.err().startsWith("rme: error: " + run.resolve(EnsembleModel.MANIFEST) + ": "), r.err());
    for (String s : mentions) {
      assertTrue(r.err().contains(s), "expected '" + s + "' in: " + r.err());
    }
  }

  private static ObjectNode manifest(Path run) throws Exception {
    return (ObjectNode) JSON.readTree(run.resolve(EnsembleModel.MANIFEST).toFile());
  }

  private static void write(Path run, ObjectNode m) throws Exception {
    Files.writeString(
        run.resolve(EnsembleModel.MANIFEST),
        JSON.writerWithDefaultPrettyPrinter().writeValueAsString(m));
  }

  /** A copy of a run directory (relative paths inside it stay valid), without its lock file. */
  private static Path copy(Path from, String name) throws Exception {
    Path to = tmp.resolve(name);
    try (Stream<Path> s = Files.walk(from)) {
      for (Path p : s.toList()) {
        Path dst = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(dst);
        } else if (!p.getFileName().toString().equals(".lock")) {
          Files.copy(p, dst);
        }
      }
    }
    return to;
  }

  private static void deleteTree(Path dir) throws Exception {
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  private static int[] bits(float[] v) {
    int[] out = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = Float.floatToRawIntBits(v[i]);
    }
    return out;
  }

  private static void expect(String message, org.junit.jupiter.api.function.Executable make) {
    var e = assertThrows(IllegalArgumentException.class, make);
    assertTrue(
        e.getMessage().contains(message), "expected '" + message + "' in: " + e.getMessage());
  }
}
