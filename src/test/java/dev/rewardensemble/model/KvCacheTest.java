package dev.rewardensemble.model;

import static dev.rewardensemble.model.AttentionOptionsTest.B;
import static dev.rewardensemble.model.AttentionOptionsTest.D;
import static dev.rewardensemble.model.AttentionOptionsTest.MASK;
import static dev.rewardensemble.model.AttentionOptionsTest.N;
import static dev.rewardensemble.model.AttentionOptionsTest.NKV;
import static dev.rewardensemble.model.AttentionOptionsTest.T;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/**
 * A prefill plus one-token decode steps over a {@link KvCache} give what attention over the whole
 * sequence gives (the plain-Java reference of {@link AttentionOptionsTest}), with a sliding window
 * and soft-capping, for two layers with different keys (so that layers cannot share a buffer).
 */
class KvCacheTest {
  static final int P = 3; // prompt

  final float[] q = AttentionOptionsTest.random(B * T * N * D, 1);
  final float[] k = AttentionOptionsTest.random(B * T * NKV * D, 2);
  final float[] v = AttentionOptionsTest.random(B * T * NKV * D, 3);

  /** Time steps [from, to) of {@code x [B, T, heads, D]}. */
  static float[] steps(float[] x, int heads, int from, int to) {
    float[] out = new float[B * (to - from) * heads * D];
    int w = heads * D;
    for (int b = 0; b < B; b++) {
      System.arraycopy(x, (b * T + from) * w, out, b * (to - from) * w, (to - from) * w);
    }
    return out;
  }

  static int[] maskSteps(int from, int to) {
    int[] out = new int[B * (to - from)];
    for (int b = 0; b < B; b++) {
      System.arraycopy(MASK, b * T + from, out, b * (to - from), to - from);
    }
    return out;
  }

  @ParameterizedTest
  @EnumSource(KvCache.Layout.class)
  void prefillAndDecodeStepsEqualAttentionOverTheWholeSequence(KvCache.Layout layout) {
    Attention.Options o = new Attention.Options(0.6, 4.0, 3);
    float[][] want = {
      AttentionOptionsTest.reference(q, k, v, MASK, o),
      AttentionOptionsTest.reference(q, v, k, MASK, o) // layer 1: keys and values swapped
    };
    try (Graph graph = new Graph();
        Session s = new Session(graph)) {
      Ops tf = Ops.create(graph);
      KvCache cache =
          layout == KvCache.Layout.PREALLOCATED
              ? KvCache.preallocated(tf, tf.constant(T + 2))
              : KvCache.concatenated(tf);
      List<Operand<TFloat32>[]> outs = new ArrayList<>();
      List<int[]> spans = new ArrayList<>();
      spans.add(new int[] {0, P});
      for (int t = P; t < T; t++) {
        spans.add(new int[] {t, t + 1});
      }
      for (int[] span : spans) {
        int from = span[0], to = span[1], S = to - from;
        Attention.Geometry g =
            cache.extend(tf, AttentionOptionsTest.ints(tf, maskSteps(from, to), B, S));
        Operand<TFloat32> qs = AttentionOptionsTest.floats(tf, steps(q, N, from, to), B, S, N, D);
        Operand<TFloat32> ks =
            AttentionOptionsTest.floats(tf, steps(k, NKV, from, to), B, S, NKV, D);
        Operand<TFloat32> vs =
            AttentionOptionsTest.floats(tf, steps(v, NKV, from, to), B, S, NKV, D);
        @SuppressWarnings("unchecked")
        Operand<TFloat32>[] pair =
            new Operand[] {
              Attention.attend(tf, qs, ks, vs, g, N, NKV, D, o, cache, 0),
              Attention.attend(tf, qs, vs, ks, g, N, NKV, D, o, cache, 1)
            };
        outs.add(pair);
      }
      assertEquals(2, cache.numLayers());
      for (int layer = 0; layer < 2; layer++) {
        float[] got = new float[B * T * N * D];
        for (int i = 0; i < spans.size(); i++) {
          int from = spans.get(i)[0], to = spans.get(i)[1];
          float[] part = AttentionOptionsTest.fetch(s, outs.get(i)[layer]); // [B*S, N*D]
          int w = N * D;
          for (int b = 0; b < B; b++) {
            System.arraycopy(part, b * (to - from) * w, got, (b * T + from) * w, (to - from) * w);
          }
        }
        AttentionOptionsTest.assertRowsClose(want[layer], got, 1e-5, layout + " layer " + layer);
      }
    }
  }
}
