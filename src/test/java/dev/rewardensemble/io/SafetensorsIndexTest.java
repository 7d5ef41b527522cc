package dev.rewardensemble.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Tests of {@link SafetensorsIndex} and {@link TensorSources}. */
class SafetensorsIndexTest {

  private static final String SHARD1 = "model-00001-of-00002.safetensors";
  private static final String SHARD2 = "model-00002-of-00002.safetensors";

  @TempDir Path dir;

  private final FloatTensor a = new FloatTensor(new long[] {2, 2}, new float[] {1, 2, 3, 4});
  private final FloatTensor b = new FloatTensor(new long[] {}, new float[] {-1});
  private final FloatTensor c = new FloatTensor(new long[] {3}, new float[] {5, 6, 7});

  private Path writeShardedCheckpoint() throws IOException {
    Safetensors.write(
        dir.resolve(SHARD1), Map.of("a.weight", a, "b.bias", b), Map.of("format", "pt"));
    Safetensors.write(dir.resolve(SHARD2), Map.of("c.weight", c), Map.of("format", "pt"));
    return writeIndex(
        "{\"metadata\": {\"total_size\": 32, \"format\": \"pt\"},"
            + " \"weight_map\": {\"c.weight\": \""
            + SHARD2
            + "\", \"a.weight\": \""
            + SHARD1
            + "\", \"b.bias\": \""
            + SHARD1
            + "\"}}");
  }

  private Path writeIndex(String json) throws IOException {
    Path index = dir.resolve(TensorSources.INDEX_FILE);
    Files.writeString(index, json);
    return index;
  }

  @Test
  void shardedRoundTrip() throws IOException {
    Path index = writeShardedCheckpoint();
    try (SafetensorsIndex source = SafetensorsIndex.open(index)) {
      assertEquals(index, source.path());
      assertEquals(List.of("a.weight", "b.bias", "c.weight"), List.copyOf(source.keys()));
      assertEquals(Map.of("total_size", "32", "format", "pt"), source.metadata());
      assertEquals(List.of(SHARD1, SHARD2), List.copyOf(source.shardNames()));
      assertEquals(dir.resolve(SHARD2), source.shardPath("c.weight"));
      assertEquals(a, source.read("a.weight"));
      assertEquals(b, source.read("b.bias"));
      assertEquals(c, source.read("c.weight"));
      assertEquals(
          new TensorInfo("c.weight", "F32", new long[] {3}, 0, 12), source.info("c.weight"));
      assertEquals(Map.of("a.weight", a, "b.bias", b, "c.weight", c), source.readAll());

      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> source.info("d.weight"));
      assertEquals("no tensor 'd.weight' in " + index, e.getMessage());
    }
  }

  @Test
  void readsAfterCloseFail() throws IOException {
    SafetensorsIndex source = SafetensorsIndex.open(writeShardedCheckpoint());
    source.read("a.weight");
    source.close();
    assertThrows(IllegalStateException.class, () -> source.read("a.weight"));
    assertThrows(IllegalStateException.class, () -> source.read("c.weight"));
  }

  @Test
  void missingShardFileNamesShardAndKey() throws IOException {
    Path index = writeShardedCheckpoint();
    Files.delete(dir.resolve(SHARD2));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> SafetensorsIndex.open(index));
    assertTrue(e.getMessage().contains(dir.resolve(SHARD2).toString()), e.getMessage());
    assertTrue(e.getMessage().contains("'c.weight'"), e.getMessage());
    assertTrue(e.getMessage().contains(index.toString()), e.getMessage());
  }

  @Test
  void keyMissingFromItsShardNamesKeyAndShard() throws IOException {
    writeShardedCheckpoint();
    Path index =
        writeIndex(
            "{\"weight_map\": {\"a.weight\": \""
                + SHARD1
                + "\", \"x.weight\": \""
                + SHARD2
                + "\"}}");
    try (SafetensorsIndex source = SafetensorsIndex.open(index)) {
      assertEquals(a, source.read("a.weight"));
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> source.read("x.weight"));
      assertTrue(e.getMessage().contains("'x.weight'"), e.getMessage());
      assertTrue(e.getMessage().contains(dir.resolve(SHARD2).toString()), e.getMessage());
    }
  }

  @Test
  void malformedIndexesAreRejected() throws IOException {
    writeShardedCheckpoint();
    String[][] cases = {
      {"[]", "not a JSON object"},
      {"{\"metadata\": {}}", "no weight_map"},
      {"{\"weight_map\": [1]}", "weight_map is not an object"},
      {"{\"weight_map\": {\"a.weight\": 1}}", "'a.weight' is not a file name"},
      {"{\"weight_map\": {\"a.weight\": \"../" + SHARD1 + "\"}}", "outside the index's directory"},
      {"{\"weight_map\": {}, \"metadata\": 3}", "metadata is not an object"},
      {"{\"weight_map\": {", "not valid JSON"},
    };
    for (String[] c : cases) {
      Path index = writeIndex(c[0]);
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> SafetensorsIndex.open(index), c[0]);
      assertTrue(e.getMessage().contains(index.toString()), e.getMessage());
      assertTrue(e.getMessage().contains(c[1]), e.getMessage());
    }
  }

  @Test
  void corruptShardIsReportedWhenFirstUsed() throws IOException {
    Path index = writeShardedCheckpoint();
    Files.write(dir.resolve(SHARD2), new byte[] {1, 2, 3});
    try (SafetensorsIndex source = SafetensorsIndex.open(index)) {
      assertEquals(a, source.read("a.weight"));
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> source.info("c.weight"));
      assertTrue(e.getMessage().contains(dir.resolve(SHARD2).toString()), e.getMessage());
    }
  }

  // ---------------------------------------------------------------------------------------------
  // TensorSources.openCheckpoint

  @Test
  void openCheckpointPrefersTheSingleFile() throws IOException {
    writeShardedCheckpoint();
    try (TensorSource source = TensorSources.openCheckpoint(dir)) {
      assertInstanceOf(SafetensorsIndex.class, source);
      assertEquals(3, source.keys().size());
    }
    Safetensors.write(dir.resolve(TensorSources.SINGLE_FILE), Map.of("only", c));
    try (TensorSource source = TensorSources.openCheckpoint(dir)) {
      assertInstanceOf(Safetensors.class, source);
      assertEquals(List.of("only"), List.copyOf(source.keys()));
    }
    try (TensorSource source =
        TensorSources.openCheckpoint(dir.resolve(TensorSources.INDEX_FILE))) {
      assertInstanceOf(SafetensorsIndex.class, source);
    }
  }

  @Test
  void openCheckpointOnFixture() throws Exception {
    Path fixtureDir = SafetensorsTest.fixture("llama-seqcls/model.safetensors").getParent();
    try (TensorSource source = TensorSources.openCheckpoint(fixtureDir)) {
      assertArrayEquals(
          new long[] {32, 64}, source.read("model.layers.0.self_attn.k_proj.weight").shape());
    }
  }

  @Test
  void openCheckpointExplainsWhatIsMissing() throws IOException {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> TensorSources.openCheckpoint(dir));
    String message = e.getMessage();
    assertTrue(
        message.startsWith("no model.safetensors or model.safetensors.index.json in " + dir),
        message);
    assertTrue(message.contains("pytorch_model.bin is not supported"), message);

    Files.write(dir.resolve("pytorch_model.bin"), new byte[] {0});
    e = assertThrows(IllegalArgumentException.class, () -> TensorSources.openCheckpoint(dir));
    assertTrue(e.getMessage().contains("found pytorch_model.bin"), e.getMessage());
    assertTrue(e.getMessage().contains("safe_serialization=True"), e.getMessage());

    assertThrows(
        NoSuchFileException.class, () -> TensorSources.openCheckpoint(dir.resolve("absent")));
  }
}
