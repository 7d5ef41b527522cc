package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gradients;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

class BradleyTerryTest {

  /**
   * Graph outputs for given rewards: perHead [K], total [], accuracy [K], d total/d rc, d total/d
   * rr.
   */
  private record Outputs(
      float[] perHead, float total, float[] accuracy, float[] gradChosen, float[] gradRejected) {}

  private static Outputs run(float[][] rc, float[][] rr, float[] margin, float coef) {
    int k = rc[0].length;
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Placeholder<TFloat32> c = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, k)));
      Placeholder<TFloat32> r = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, k)));
      Placeholder<TFloat32> m =
          margin == null ? null : tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)));
      BradleyTerry.Loss loss = BradleyTerry.loss(tf, c, r, m, coef);
      Gradients grads = tf.gradients(loss.total(), List.of(c, r));
      try (TFloat32 ct = Tensors.of(rc);
          TFloat32 rt = Tensors.of(rr);
          TFloat32 mt = margin == null ? null : Tensors.of(Shape.of(margin.length), margin)) {
        Session.Runner runner = session.runner().feed(c, ct).feed(r, rt);
        if (m != null) {
          runner.feed(m, mt);
        }
        try (Result out =
            runner
                .fetch(loss.perHead())
                .fetch(loss.total())
                .fetch(loss.accuracy())
                .fetch(grads.dy(0))
                .fetch(grads.dy(1))
                .run()) {
          return new Outputs(
              Tensors.floats(out.get(0)),
              Tensors.scalar(out.get(1)),
              Tensors.floats(out.get(2)),
              Tensors.floats(out.get(3)),
              Tensors.floats(out.get(4)));
        }
      }
    }
  }

  /**
   * Ground truth from torch: mean(-logsigmoid(rc - rr)) over the four pairs of the llama-bt-step
   * fixture.
   */
  @Test
  void singleHeadMatchesTorchFixture() throws IOException {
    JsonNode expected = AdamWTest.json("/fixtures/llama-bt-step/expected.json");
    float[] rc = AdamWTest.flatten(expected.get("reward_chosen"));
    float[] rr = AdamWTest.flatten(expected.get("reward_rejected"));
    double torchLoss = expected.get("loss").asDouble();
    Outputs out = run(column(rc), column(rr), null, 0f);
    assertEquals(torchLoss, out.total(), 1e-6 * torchLoss);
    assertEquals(torchLoss, out.perHead()[0], 1e-6 * torchLoss);
    assertEquals(torchLoss, BradleyTerryReference.lossReference(rc, rr, null, 0), 1e-6 * torchLoss);
    assertArrayEquals(
        new float[] {0.25f}, out.accuracy()); // only the first pair is ordered correctly
  }

  @Test
  void threeHeadsAverageThePerHeadLossesWithMarginAndCentering() {
    Random rnd = new Random(3);
    int b = 6;
    int k = 3;
    float[][] rc = new float[b][k];
    float[][] rr = new float[b][k];
    float[] margin = new float[b];
    for (int i = 0; i < b; i++) {
      for (int h = 0; h < k; h++) {
        rc[i][h] = (float) rnd.nextGaussian() * (h + 1);
        rr[i][h] = (float) rnd.nextGaussian() * (h + 1);
      }
      margin[i] = (float) Math.abs(rnd.nextGaussian());
    }
    float coef = 0.01f;
    Outputs out = run(rc, rr, margin, coef);
    double[] expected = BradleyTerryReference.lossReference(rc, rr, margin, coef);
    double mean = 0;
    for (int h = 0; h < k; h++) {
      assertEquals(expected[h], out.perHead()[h], 1e-6 * Math.abs(expected[h]), "head " + h);
      mean += expected[h] / k;
      // the per-head loss is the single-model loss of that column
      assertEquals(
          expected[h],
          BradleyTerryReference.lossReference(col(rc, h), col(rr, h), margin, coef),
          0.0);
      int correct = 0;
      for (int i = 0; i < b; i++) {
        correct += rc[i][h] > rr[i][h] ? 1 : 0;
      }
      assertEquals((float) correct / b, out.accuracy()[h], 1e-7, "accuracy of head " + h);
    }
    assertEquals(mean, out.total(), 1e-6 * Math.abs(mean));
    assertGrad(
        BradleyTerryReference.gradReference(rc, rr, margin, coef, true),
        out.gradChosen(),
        "d/d rChosen");
    assertGrad(
        BradleyTerryReference.gradReference(rc, rr, margin, coef, false),
        out.gradRejected(),
        "d/d rRejected");
  }

  @Test
  void gradientIsMinusSigmoidOverBatch() {
    // K = 1, no margin, no centering: d loss / d rc = -sigmoid(-(rc - rr)) / B = -d loss / d rr.
    float[] rc = {0.3f, -1.2f, 2.0f, 0.0f, 0.7f};
    float[] rr = {-0.1f, 0.4f, 2.5f, 0.0f, -3.0f};
    Outputs out = run(column(rc), column(rr), null, 0f);
    for (int i = 0; i < rc.length; i++) {
      double d = (double) rc[i] - rr[i];
      double expected = -1 / (1 + Math.exp(d)) / rc.length;
      assertEquals(expected, out.gradChosen()[i], 1e-7, "d/d rc[" + i + "]");
      assertEquals(-expected, out.gradRejected()[i], 1e-7, "d/d rr[" + i + "]");
    }
    assertArrayEquals(
        new float[] {0.4f},
        out.accuracy(),
        1e-7f,
        "2 of 5 right; the tie (0 vs 0) counts as wrong");
  }

  @Test
  void stableForLargeMargins() {
    float[][] rc = {{100f}, {-100f}, {60f}};
    float[][] rr = {{-100f}, {100f}, {-60f}};
    Outputs out = run(rc, rr, new float[] {0f, 0f, -30f}, 0f);
    // softplus(-200) ~ 0, softplus(200) = 200, softplus(-150) ~ 0
    assertEquals(200.0 / 3, out.total(), 1e-4);
    assertEquals(
        200.0 / 3,
        BradleyTerryReference.lossReference(col(rc, 0), col(rr, 0), new float[] {0f, 0f, -30f}, 0),
        1e-9);
    assertEquals(0.0, out.gradChosen()[0], 1e-30);
    assertEquals(-1.0 / 3, out.gradChosen()[1], 1e-7);
    for (float x : out.gradChosen()) {
      assertTrue(Float.isFinite(x));
    }
  }

  @Test
  void validation() {
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      Placeholder<TFloat32> rank1 = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)));
      Placeholder<TFloat32> rank2 =
          tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, 2)));
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class, () -> BradleyTerry.loss(tf, rank1, rank2, null, 0f));
      assertTrue(
          e.getMessage().contains("rChosen") && e.getMessage().contains("[-1]"), e.getMessage());
      e =
          assertThrows(
              IllegalArgumentException.class, () -> BradleyTerry.loss(tf, rank2, rank2, rank2, 0f));
      assertTrue(e.getMessage().contains("margin"), e.getMessage());
      e =
          assertThrows(
              IllegalArgumentException.class,
              () -> BradleyTerry.loss(tf, rank2, rank2, null, -0.5f));
      assertTrue(e.getMessage().contains("-0.5"), e.getMessage());
    }
    assertThrows(
        IllegalArgumentException.class,
        () -> BradleyTerryReference.lossReference(new float[] {1f}, new float[] {1f, 2f}, null, 0));
  }

  private static void assertGrad(double[][] expected, float[] actual, String what) {
    int k = expected[0].length;
    for (int i = 0; i < expected.length; i++) {
      for (int h = 0; h < k; h++) {
        assertEquals(
            expected[i][h],
            actual[i * k + h],
            1e-6 * Math.abs(expected[i][h]) + 1e-8,
            what + "[" + i + "," + h + "]");
      }
    }
  }

  private static float[][] column(float[] x) {
    float[][] out = new float[x.length][1];
    for (int i = 0; i < x.length; i++) {
      out[i][0] = x[i];
    }
    return out;
  }

  private static float[] col(float[][] m, int h) {
    float[] out = new float[m.length];
    for (int i = 0; i < m.length; i++) {
      out[i] = m[i][h];
    }
    return out;
  }
}
