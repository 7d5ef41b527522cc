package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

class LmLossTest {
  /** Plain Java: -sum w_i log softmax(l_i)[t_i] / max(1, sum w). */
  static double reference(float[][] logits, int[] targets, float[] weights) {
    double total = 0;
    double count = 0;
    for (int i = 0; i < logits.length; i++) {
      double max = Double.NEGATIVE_INFINITY;
      for (float v : logits[i]) {
        max = Math.max(max, v);
      }
      double z = 0;
      for (float v : logits[i]) {
        z += Math.exp(v - max);
      }
      double logp = logits[i][targets[i]] - max - Math.log(z);
      total += weights[i] * logp;
      count += weights[i];
    }
    return -total / Math.max(1, count);
  }

  @Test
  void graphLossMatchesPlainJava() {
    float[][] logits = {
      {1f, 2f, 0.5f, -1f}, {0f, 0f, 3f, 1f}, {-2f, 4f, 1f, 0f}, {0.3f, 0.1f, -0.7f, 2f}
    };
    int[] targets = {1, 3, 0, 2};
    float[] weights = {1f, 0f, 1f, 1f};
    double want = reference(logits, targets, weights);
    try (Graph g = new Graph();
        Session s = new Session(g)) {
      Ops tf = Ops.create(g);
      var loss =
          LmLoss.maskedCrossEntropy(
              tf, tf.constant(logits), tf.constant(targets), tf.constant(weights), 4);
      try (Result r = s.runner().fetch(loss).run()) {
        assertEquals(want, ((TFloat32) r.get(0)).getFloat(), 1e-5);
      }
    }
    // Hand check of one row: row 0 picks logit 2 of {1, 2, 0.5, -1}.
    double z = Math.exp(1) + Math.exp(2) + Math.exp(0.5) + Math.exp(-1);
    assertEquals(
        -(2 - Math.log(z)),
        reference(new float[][] {logits[0]}, new int[] {1}, new float[] {1}),
        1e-12);
  }

  @Test
  void targetsAndMaskCoverOnlyResponseTokens() {
    // Sequence a: prompt [1, 5, 6], response [7, 2]. Sequence b: prompt [1, 8], response [2].
    List<int[]> seqs = List.of(new int[] {1, 5, 6, 7, 2}, new int[] {1, 8, 2});
    LmLoss.Batch right = LmLoss.batch(seqs, List.of(3, 2), 0, false);
    assertArrayEquals(new int[] {1, 5, 6, 7, 2, 1, 8, 2, 0, 0}, right.batch().ids());
    assertArrayEquals(new int[] {5, 6, 7, 2, 0, 8, 2, 0, 0, 0}, right.targets());
    assertArrayEquals(new float[] {0, 0, 1, 1, 0, 0, 1, 0, 0, 0}, right.weights());
    assertEquals(3, right.responseTokens());
    LmLoss.Batch left = LmLoss.batch(seqs, List.of(3, 2), 0, true);
    assertArrayEquals(new int[] {1, 5, 6, 7, 2, 0, 0, 1, 8, 2}, left.batch().ids());
    assertArrayEquals(new int[] {5, 6, 7, 2, 0, 0, 0, 8, 2, 0}, left.targets());
    assertArrayEquals(new float[] {0, 0, 1, 1, 0, 0, 0, 0, 1, 0}, left.weights());
    assertThrows(IllegalArgumentException.class, () -> LmLoss.batch(seqs, List.of(5, 2), 0, false));
    assertThrows(IllegalArgumentException.class, () -> LmLoss.batch(seqs, List.of(0, 2), 0, false));
  }
}
