package dev.rewardensemble.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.WeightStorage;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.StreamingSafetensors;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The scale benchmark's checkpoint writer against transformers 5.18's own {@code save_pretrained}
 * of the same bf16 {@code LlamaForSequenceClassification} ({@code src/test/resources/scale-layout},
 * made by {@code scripts/make_scale_layout_fixture.py}): file names, {@code config.json} and the
 * index byte for byte, every shard's safetensors header byte for byte and its size, with the
 * default {@code max_shard_size} and sharded at 40 KB.
 */
class ScaleCheckpointTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  private static byte[] resource(String name) throws IOException {
    try (InputStream in = ScaleCheckpointTest.class.getResourceAsStream("/scale-layout/" + name)) {
      if (in == null) {
        throw new IOException("missing resource " + name);
      }
      return in.readAllBytes();
    }
  }

  static ObjectNode preset() throws IOException {
    return (ObjectNode) JSON.readTree(resource("preset.json"));
  }

  private static String header(Path file) throws IOException {
    byte[] all = Files.readAllBytes(file);
    long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    return new String(all, 8, (int) n, StandardCharsets.UTF_8);
  }

  private static TreeSet<String> files(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).collect(Collectors.toCollection(TreeSet::new));
    }
  }

  private void checkLayout(String variant, long maxShard) throws IOException {
    JsonNode layout = JSON.readTree(resource("layout.json")).get("files");
    Path dir = tmp.resolve(variant);
    ScaleCheckpoint.write(dir, ScaleCheckpoint.plan(preset(), maxShard), 7);
    TreeSet<String> want = new TreeSet<>();
    layout
        .fieldNames()
        .forEachRemaining(
            k -> {
              if (k.startsWith(variant + "/")) {
                want.add(k.substring(variant.length() + 1));
              }
            });
    want.add("config.json");
    boolean sharded = want.size() > 2;
    if (sharded) {
      want.add("model.safetensors.index.json");
    }
    assertEquals(want, files(dir), variant);
    assertEquals(
        new String(resource(variant + "/config.json"), StandardCharsets.UTF_8),
        Files.readString(dir.resolve("config.json")),
        variant + " config.json");
    if (sharded) {
      assertEquals(
          new String(resource(variant + "/model.safetensors.index.json"), StandardCharsets.UTF_8),
          Files.readString(dir.resolve("model.safetensors.index.json")),
          variant + " index");
    }
    for (String f : want) {
      if (f.endsWith(".safetensors")) {
        JsonNode w = layout.get(variant + "/" + f);
        assertEquals(w.get("header").asText(), header(dir.resolve(f)), f);
        assertEquals(w.get("size").asLong(), Files.size(dir.resolve(f)), f);
      }
    }
  }

  @Test
  void singleFileAtTransformers5DefaultMatchesSavePretrained() throws IOException {
    checkLayout("default", ScaleCheckpoint.TRANSFORMERS5_MAX_SHARD);
  }

  @Test
  void shardsMatchSavePretrainedAt40KB() throws IOException {
    checkLayout("sharded", 40_000);
  }

  @Test
  void writtenCheckpointLoadsStreamsAndScores() throws IOException {
    Path dir = tmp.resolve("ck");
    ScaleCheckpoint.Plan p = ScaleCheckpoint.plan(preset(), 40_000);
    assertTrue(ScaleCheckpoint.ensure(dir, p, 3));
    assertFalse(ScaleCheckpoint.ensure(dir, p, 3), "a complete checkpoint is reused");
    HfCheckpoint.Checkpoint ck = HfCheckpoint.open(dir);
    assertEquals(HfCheckpoint.Kind.SEQUENCE_CLASSIFICATION, ck.kind());
    assertEquals(1, ck.numLabels());
    LazyWeights w = (LazyWeights) ck.weights();
    assertEquals(ScaleCheckpoint.shapes(p).keySet(), w.keySet());
    long params = 0;
    for (String k : w.keySet()) {
      assertArrayEquals(ScaleCheckpoint.shapes(p).get(k), w.shape(k), k);
      params += Arrays.stream(w.shape(k)).reduce(1, (a, b) -> a * b);
    }
    assertEquals(p.totalParameters(), params);
    float[] norm = w.get("model.norm.weight").data();
    for (float v : norm) {
      assertEquals(1f, v);
    }
    float[] q = w.get("model.layers.1.self_attn.q_proj.weight").data();
    double sq = 0;
    for (float v : q) {
      sq += v * v;
    }
    assertEquals(ScaleCheckpoint.STD, Math.sqrt(sq / q.length), 0.002, "N(0, 0.02) values");
    try (RewardModel rm =
        RewardModel.load(dir, ExecConfig.defaults().withWeights(WeightStorage.BFLOAT16))) {
      float[][] r = rm.score(List.of(new int[] {5, 6, 7, 8}, new int[] {9, 10}), 2);
      assertTrue(Float.isFinite(r[0][0]) && Float.isFinite(r[1][0]));
    }
  }

  @Test
  void truncationHoldsTheSameValuesAsTheFullCheckpoint() throws IOException {
    Path full = tmp.resolve("full");
    Path cut = tmp.resolve("cut");
    ScaleCheckpoint.write(
        full, ScaleCheckpoint.plan(preset(), ScaleCheckpoint.TRANSFORMERS5_MAX_SHARD), 11);
    ScaleCheckpoint.write(
        cut,
        ScaleCheckpoint.plan(
            ScaleCheckpoint.truncated(preset(), 1), ScaleCheckpoint.TRANSFORMERS5_MAX_SHARD),
        11);
    Map<String, dev.rewardensemble.io.FloatTensor> a = HfCheckpoint.open(full).weights();
    Map<String, dev.rewardensemble.io.FloatTensor> b = HfCheckpoint.open(cut).weights();
    assertFalse(b.containsKey("model.layers.1.mlp.up_proj.weight"));
    for (String k : b.keySet()) {
      assertArrayEquals(a.get(k).data(), b.get(k).data(), k);
    }
  }

  @Test
  void anInterruptedWriteLeavesNothingThatLooksComplete() throws IOException {
    Path dir = tmp.resolve("ck");
    ScaleCheckpoint.Plan p = ScaleCheckpoint.plan(preset(), 40_000);
    // the writer fails in the middle of the fourth shard (a full disk, a kill's stand-in)
    StreamingSafetensors.Values v = ScaleCheckpoint.values(1);
    int[] calls = {0};
    RuntimeException boom =
        assertThrows(
            RuntimeException.class,
            () ->
                ScaleCheckpoint.write(
                    dir,
                    p,
                    (name, off, out, n) -> {
                      if (++calls[0] == 6) {
                        throw new IllegalStateException("disk full");
                      }
                      v.fill(name, off, out, n);
                    }));
    assertEquals("disk full", boom.getMessage());
    assertFalse(Files.exists(dir), "no checkpoint under the target name");
    assertEquals(Set.of(), Set.copyOf(files(tmp)), "the staging directory is removed");
    // a directory that holds only part of the checkpoint is neither reused nor overwritten
    ScaleCheckpoint.write(dir, p, 1);
    Files.delete(dir.resolve("model-00003-of-00008.safetensors"));
    assertFalse(ScaleCheckpoint.holds(dir, p));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> ScaleCheckpoint.ensure(dir, p, 1));
    assertTrue(e.getMessage().contains("is not the checkpoint this run writes"), e.getMessage());
    assertTrue(Files.exists(dir.resolve("model-00001-of-00008.safetensors")), "left alone");
  }

  @Test
  void floatsArePrintedAsPythonReprs() {
    assertEquals("1e-06", ScaleCheckpoint.pythonFloat(1e-6));
    assertEquals("1e-05", ScaleCheckpoint.pythonFloat(1e-5));
    assertEquals("0.0001", ScaleCheckpoint.pythonFloat(1e-4));
    assertEquals("10000.0", ScaleCheckpoint.pythonFloat(10000.0));
    assertEquals("500000.0", ScaleCheckpoint.pythonFloat(500000.0));
    assertEquals("0.02", ScaleCheckpoint.pythonFloat(0.02));
    assertEquals("0.0", ScaleCheckpoint.pythonFloat(0.0));
    assertEquals("1e+16", ScaleCheckpoint.pythonFloat(1e16));
    assertEquals("1.5e-07", ScaleCheckpoint.pythonFloat(1.5e-7));
  }

  @Test
  void aKilledWriterLeavesNoCheckpointAndTheNextWriteCompletesIt() throws Exception {
    // ~21M parameters (42 MB): long enough to kill the writer while it writes
    ObjectNode big = preset();
    big.put("hidden_size", 512);
    big.put("intermediate_size", 1376);
    big.put("num_attention_heads", 8);
    big.put("num_key_value_heads", 8);
    big.put("head_dim", 64);
    big.put("num_hidden_layers", 4);
    big.put("vocab_size", 16000);
    Path presetFile = tmp.resolve("big.json");
    JSON.writeValue(presetFile.toFile(), big);
    Path dir = tmp.resolve("ck");
    long shard = 10_000_000;
    ScaleCheckpoint.Plan plan = ScaleCheckpoint.plan(big, shard);
    assertTrue(plan.shards().size() >= 3, "sharded: " + plan.shards().size());
    String first = plan.shards().get(0).file();
    Process p =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m",
                "-cp",
                System.getProperty("java.class.path"),
                ScaleCheckpoint.class.getName(),
                presetFile.toString(),
                dir.toString(),
                "5",
                Long.toString(shard))
            .redirectErrorStream(true)
            .start();
    try {
      // kill it once its first shard is complete in the staging directory (the rest is not)
      long deadline = System.nanoTime() + 60_000_000_000L;
      boolean seen = false;
      while (!seen && p.isAlive() && System.nanoTime() < deadline) {
        try (Stream<Path> s = Files.list(tmp)) {
          for (Path staging :
              s.filter(x -> x.getFileName().toString().startsWith(".ck.tmp-")).toList()) {
            seen |= Files.exists(staging.resolve(first));
          }
        } catch (IOException raced) {
          // the staging directory changed under us; look again
        }
        Thread.sleep(5);
      }
      assertTrue(seen, "the writer was caught while writing");
    } finally {
      p.destroyForcibly().waitFor();
    }
    assertFalse(Files.exists(dir), "a killed write leaves nothing under the checkpoint's name");
    assertTrue(ScaleCheckpoint.ensure(dir, plan, 5), "written again from the start");
    assertTrue(ScaleCheckpoint.holds(dir, plan));
    try (Stream<Path> s = Files.list(tmp)) {
      assertEquals(
          Set.of("big.json", "ck"),
          s.map(x -> x.getFileName().toString()).collect(Collectors.toSet()),
          "the dead writer's staging directory is removed");
    }
  }
}
