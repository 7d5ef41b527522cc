package dev.rewardensemble.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

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
 * a small model's peak RSS.
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
}
