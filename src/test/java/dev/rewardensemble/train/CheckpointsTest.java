package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.io.FloatTensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointsTest {
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path run;

  static Map<String, FloatTensor> weights(float v) {
    return Map.of(
        "a", new FloatTensor(new long[] {2, 3}, new float[] {v, 1, 2, 3, 4, -v}),
        "b", new FloatTensor(new long[] {1}, new float[] {v * 0.5f}));
  }

  static ObjectNode state(int step) {
    ObjectNode s = JSON.createObjectNode();
    s.put("step", step);
    s.put("data_position", step * 8L);
    s.put("fingerprint", "abc");
    return s;
  }

  Path save(int step, int keep) throws Exception {
    return Checkpoints.save(
        run, step, weights(step), Map.of("m", FloatTensor.zeros(2)), state(step), keep);
  }

  List<String> names() throws Exception {
    try (Stream<Path> s = Files.list(Checkpoints.root(run))) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void noCheckpointsYet() throws Exception {
    assertEquals(List.of(), Checkpoints.list(run));
    assertTrue(Checkpoints.latest(run).isEmpty());
    assertFalse(Files.exists(Checkpoints.root(run)));
  }

  @Test
  void latestReadsBackTheNewestExactly() throws Exception {
    save(1, 5);
    Path dir = save(2, 5);
    assertEquals(Checkpoints.root(run).resolve("step-00000002"), dir);
    Checkpoints.Loaded l = Checkpoints.latest(run).orElseThrow();
    assertEquals(2, l.step());
    assertEquals(dir, l.dir());
    assertEquals(state(2).toString(), l.state().toString());
    assertEquals(weights(2).keySet(), l.weights().keySet());
    for (String k : List.of("a", "b")) {
      assertArrayEquals(weights(2).get(k).shape(), l.weights().get(k).shape(), k);
      assertArrayEquals(weights(2).get(k).data(), l.weights().get(k).data(), 0f, k);
    }
    assertArrayEquals(new float[2], l.optimizer().get("m").data(), 0f);
  }

  @Test
  void saveKeepsTheNewestAndPrunesTheRest() throws Exception {
    save(9, 2);
    save(10, 2); // zero-padded names sort numerically: 9 before 10
    save(11, 2);
    assertEquals(List.of("step-00000010", "step-00000011"), names());
    assertEquals(
        List.of(
            Checkpoints.root(run).resolve("step-00000010"),
            Checkpoints.root(run).resolve("step-00000011")),
        Checkpoints.list(run));
    save(12, 1);
    assertEquals(List.of("step-00000012"), names());
    assertEquals(12, Checkpoints.latest(run).orElseThrow().step());
  }

  @Test
  void leftoversOfKilledWritesAndPrunesAreRemovedOthersKept() throws Exception {
    save(3, 5);
    Path root = Checkpoints.root(run);
    Path tmp = Files.createDirectories(root.resolve(".step-00000004.tmp-999999-abcd"));
    Files.writeString(tmp.resolve("model.safetensors"), "half written");
    Files.createDirectories(root.resolve(".prune-step-00000001"));
    Path half = Files.createDirectories(root.resolve("step-00000002"));
    Files.writeString(
        half.resolve("model.safetensors"), "no state.json: never complete or half deleted");
    Files.writeString(root.resolve("notes.txt"), "not ours");
    assertEquals(List.of(root.resolve("step-00000003")), Checkpoints.list(run));
    assertEquals(List.of("notes.txt", "step-00000003"), names());
    // a half-written newer directory never becomes "latest"
    Files.createDirectories(root.resolve("step-00000007"));
    assertEquals(3, Checkpoints.latest(run).orElseThrow().step());
  }

  @Test
  void aCorruptStateIsOneLineNamingTheFile() throws Exception {
    Path dir = save(5, 5);
    Files.writeString(dir.resolve("state.json"), "{\"step\": 5,\n oops");
    String msg =
        assertThrows(IllegalArgumentException.class, () -> Checkpoints.latest(run)).getMessage();
    assertTrue(msg.startsWith(dir.resolve("state.json") + ": not valid JSON (line 2"), msg);
    assertFalse(msg.contains("\n"), msg);
    Files.writeString(dir.resolve("state.json"), "{\"step\": 0}");
    msg = assertThrows(IllegalArgumentException.class, () -> Checkpoints.latest(run)).getMessage();
    assertTrue(msg.contains("positive integer \"step\""), msg);
  }
}
