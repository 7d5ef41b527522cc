package dev.rewardensemble.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.rewardensemble.config.Precision;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.LazyWeights;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;

/**
 * A streamed load holds at most a 32nd of the model in flight (between 8 MiB and 256 MiB):
 * TensorFlow's CPU allocator keeps what the fed tensors free, so the group size went straight into
 * a small model's peak RSS. A tensor larger than a group loads in blocks of whole rows assigned in
 * place, so that no whole copy of it is in flight either.
 */
class ParameterStoreLoadTest {

  @Test
  void groupsAreA32ndOfTheLoadBetween8And256MiB() {
    long mib = 1L << 20;
    assertEquals(8 * mib, ParameterStore.groupBytes(20 * mib), "small loads: the floor");
    assertEquals(450 * mib / 32, ParameterStore.groupBytes(450 * mib), "a 109M-parameter model");
    assertEquals(256 * mib, ParameterStore.groupBytes(14_000 * mib), "a 7B bf16 model: the cap");
  }

  @Test
  void aLoadInSeveralGroupsLoadsEveryValue() {
    Map<String, FloatTensor> values = new LinkedHashMap<>();
    for (int i = 0; i < 9; i++) { // 9 x 1 MiB: two groups of at least 8 MiB
      float[] data = new float[512 * 512];
      for (int j = 0; j < data.length; j += 997) {
        data[j] = i + j * 1e-3f;
      }
      values.put("w" + i, new FloatTensor(new long[] {512, 512}, data));
    }
    try (Graph g = new Graph()) {
      ParameterStore p = new ParameterStore(Ops.create(g));
      values.forEach((k, v) -> p.get(k, v.shape()));
      try (Session s = new Session(g)) {
        p.load(s, new LazyWeights(values), false, "test");
        Map<String, FloatTensor> back = p.read(s, List.copyOf(values.keySet()));
        values.forEach((k, v) -> assertArrayEquals(v.data(), back.get(k).data(), 0f, k));
      }
    }
  }

  /**
   * Values of {@code shape} that differ at every element (and are not exact in bfloat16), so that a
   * row written to the wrong place or a block written twice shows.
   */
  private static FloatTensor distinct(long[] shape, float scale) {
    float[] data = new float[Math.toIntExact(FloatTensor.numElements(shape))];
    for (int j = 0; j < data.length; j++) {
      data[j] = scale * (j + 1) + 0.123f * (j % 7);
    }
    return new FloatTensor(shape, data);
  }

  private static Map<String, FloatTensor> readAfterLoad(
      Map<String, FloatTensor> values, long groupBytes, Graph g) {
    ParameterStore p =
        new ParameterStore(Ops.create(g))
            .storeAs(k -> k.startsWith("half") ? Precision.BFLOAT16 : Precision.FLOAT32);
    values.forEach((k, v) -> p.value(k, v.shape()));
    try (Session s = new Session(g)) {
      p.load(s, new LazyWeights(values), false, "test", groupBytes);
      Map<String, FloatTensor> once = p.read(s, List.copyOf(values.keySet()));
      int ops = countOps(g);
      p.load(s, new LazyWeights(values), false, "test", groupBytes); // again: the same ops
      assertEquals(ops, countOps(g), "a second load adds no ops");
      Map<String, FloatTensor> twice = p.read(s, List.copyOf(values.keySet()));
      once.forEach((k, v) -> assertArrayEquals(v.data(), twice.get(k).data(), 0f, k));
      return once;
    }
  }

  private static int countOps(Graph g) {
    int n = 0;
    for (var it = g.operations(); it.hasNext(); it.next()) {
      n++;
    }
    return n;
  }

  @Test
  void aTensorLargerThanAGroupLoadsInBlocksOfRowsAsItLoadsWhole() {
    Map<String, FloatTensor> values = new LinkedHashMap<>();
    // 1,031 rows of 4,000 bytes: the 4 MiB chunks the values stream in end inside rows, and the
    // 100,000-byte blocks (25 rows) neither divide the rows nor line up with the chunks.
    values.put("wide", distinct(new long[] {1031, 1000}, 1e-3f));
    values.put("half.wide", distinct(new long[] {1031, 2000}, 1e-3f)); // bfloat16: 2 bytes a value
    values.put("half.cube", distinct(new long[] {77, 30, 50}, 1e-2f)); // rank 3, blocks of rows
    values.put("small", distinct(new long[] {3, 4}, 1f)); // fits a group: whole
    values.put("vector", distinct(new long[] {30_000}, 1f)); // rank 1: always whole
    Map<String, FloatTensor> blocked;
    Map<String, FloatTensor> whole;
    try (Graph g = new Graph()) {
      blocked = readAfterLoad(values, 100_000, g);
      assertNotNull(g.operation("wide_rows_load"), "the float32 matrix loaded in blocks");
      assertNotNull(g.operation("half.wide_rows_load"), "the bfloat16 matrix loaded in blocks");
      assertNotNull(g.operation("half.cube_rows_load"), "the rank-3 tensor loaded in blocks");
      assertNull(g.operation("small_rows_load"), "a tensor within a group loads whole");
      assertNull(g.operation("vector_rows_load"), "a vector loads whole");
    }
    try (Graph g = new Graph()) {
      whole = readAfterLoad(values, 1L << 40, g);
      assertNull(g.operation("wide_rows_load"));
    }
    assertArrayEquals(values.get("wide").data(), blocked.get("wide").data(), 0f, "float32");
    for (String k : values.keySet()) {
      assertArrayEquals(whole.get(k).data(), blocked.get(k).data(), 0f, k);
    }
  }

  @Test
  void aBlockOfOneRowWhenARowIsLargerThanTheGroup() {
    Map<String, FloatTensor> values = Map.of("rows", distinct(new long[] {5, 300}, 1f));
    try (Graph g = new Graph()) {
      Map<String, FloatTensor> back = readAfterLoad(values, 100, g); // a row is 1,200 bytes
      assertArrayEquals(values.get("rows").data(), back.get("rows").data(), 0f);
    }
  }
}
