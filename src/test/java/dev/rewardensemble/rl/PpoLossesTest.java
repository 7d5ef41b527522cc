package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.ToDoubleFunction;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.Tensor;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.ndarray.buffer.FloatDataBuffer;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

class PpoLossesTest {
  private static final double TOL = 1e-5;

  // ---- tokens and entropy -------------------------------------------------------------------

  @Test
  void tokenLogProbsAndEntropyMatchReference() {
    Random rnd = new Random(1);
    int n = 3;
    int t = 5;
    int v = 7;
    float[][][] logits = randomLogits(rnd, n, t, v, 3.0);
    int[][] tokens = new int[n][t];
    float[][] mask = new float[n][t];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < t; j++) {
        tokens[i][j] = rnd.nextInt(v);
        mask[i][j] = (i + j) % 3 == 0 ? 0 : 1;
      }
    }
    tokens[0][0] = -1; // padding id under mask 0
    tokens[1][1] = v + 3; // out of range under mask 0
    mask[1][1] = 0;

    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      // unknown T and V: the vocabulary size is read from the logits' shape at run time
      Placeholder<TFloat32> lp =
          tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1, -1)));
      Placeholder<TInt32> tok = tf.placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
      Placeholder<TFloat32> m = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1)));
      Operand<TFloat32> logp = PpoLosses.tokenLogProbs(tf, lp, tok, m);
      Operand<TFloat32> entropy = PpoLosses.entropy(tf, lp, m);
      Operand<TFloat32> meanEntropy = PpoLosses.maskedMean(tf, entropy, m);
      List<float[]> out =
          run(
              session,
              Map.of(lp, tensor(logits), tok, tensor(tokens), m, tensor(mask)),
              List.of(logp, entropy, meanEntropy));
      double[][] dm = widen(mask);
      double[][] expectedLogp = PpoReference.tokenLogProbs(widen(logits), tokens, dm);
      double[][] expectedEntropy = PpoReference.entropy(widen(logits), dm);
      assertClose(expectedLogp, out.get(0), "logp");
      assertClose(expectedEntropy, out.get(1), "entropy");
      assertClose(PpoReference.maskedMean(expectedEntropy, dm), out.get(2)[0], "mean entropy");
      assertEquals(0f, out.get(0)[0], "masked padding id");
      assertEquals(0f, out.get(0)[t + 1], "masked out-of-range id");
      for (int i = 0; i < n * t; i++) {
        assertTrue(out.get(0)[i] <= 0 && out.get(1)[i] >= 0 && out.get(1)[i] <= Math.log(v) + 1e-5);
      }
    }
  }

  // ---- policy loss --------------------------------------------------------------------------

  /** Graph outputs of the policy loss: loss, clip fraction, approx KL, k3, d loss / d logp. */
  private record PolicyOut(
      float loss, float clipFraction, float approxKl, float approxKlK3, float[] gradLogp) {}

  private static PolicyOut runPolicy(
      float[][] logp, float[][] oldLogp, float[][] adv, float[][] mask, float eps) {
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Placeholder<TFloat32> lp = matrix(tf);
      Placeholder<TFloat32> old = matrix(tf);
      Placeholder<TFloat32> a = matrix(tf);
      Placeholder<TFloat32> m = matrix(tf);
      PpoLosses.PolicyLoss loss = PpoLosses.policyLoss(tf, lp, old, a, m, eps);
      Operand<TFloat32> grad = tf.gradients(loss.loss(), List.of(lp)).dy(0);
      List<float[]> out =
          run(
              session,
              Map.of(lp, tensor(logp), old, tensor(oldLogp), a, tensor(adv), m, tensor(mask)),
              List.of(loss.loss(), loss.clipFraction(), loss.approxKl(), loss.approxKlK3(), grad));
      return new PolicyOut(out.get(0)[0], out.get(1)[0], out.get(2)[0], out.get(3)[0], out.get(4));
    }
  }

  @Test
  void policyLossMatchesReferenceWithMaskedGarbage() {
    Random rnd = new Random(2);
    int n = 4;
    int t = 6;
    float[][] logp = new float[n][t];
    float[][] old = new float[n][t];
    float[][] adv = new float[n][t];
    float[][] mask = new float[n][t];
    for (int i = 0; i < n; i++) {
      int len = 1 + rnd.nextInt(t);
      for (int j = 0; j < t; j++) {
        logp[i][j] = (float) (-3 * rnd.nextDouble());
        old[i][j] = logp[i][j] + (float) (0.4 * rnd.nextGaussian());
        adv[i][j] = (float) rnd.nextGaussian();
        mask[i][j] = j < len ? 1 : 0;
        if (mask[i][j] == 0) { // padding may hold anything
          logp[i][j] = j % 2 == 0 ? Float.NaN : 80f;
          old[i][j] = -80f;
          adv[i][j] = Float.POSITIVE_INFINITY;
        }
      }
    }
    float eps = 0.2f;
    PolicyOut out = runPolicy(logp, old, adv, mask, eps);
    double[][] dl = widen(logp);
    double[][] dold = widen(old);
    double[][] da = widen(adv);
    double[][] dm = widen(mask);
    PpoReference.PolicyLoss ref = PpoReference.policyLoss(dl, dold, da, dm, eps);
    assertClose(ref.loss(), out.loss(), "loss");
    assertClose(ref.clipFraction(), out.clipFraction(), "clip fraction");
    assertClose(ref.approxKl(), out.approxKl(), "approx KL");
    assertClose(ref.approxKlK3(), out.approxKlK3(), "approx KL k3");
    assertTrue(
        ref.clipFraction() > 0 && ref.clipFraction() < 1,
        "both branches exercised: " + ref.clipFraction());
    assertTrue(out.approxKlK3() >= 0);
    assertClose(
        PpoReference.policyLossGradLogp(dl, dold, da, dm, eps), out.gradLogp(), "d loss / d logp");
    for (float x : out.gradLogp()) {
      assertTrue(Float.isFinite(x), "gradient is finite despite NaN/inf under the mask");
    }
  }

  /** Ratios 0.5 and 2 with both signs of the advantage: each side of the clip, by hand. */
  @Test
  void extremeRatiosHitBothClipSides() {
    float[] ratio = {0.5f, 2f, 0.5f, 2f, 1.1f, 5f};
    float[] a = {1f, 1f, -1f, -1f, 2f, 3f};
    float[][] logp = new float[1][6];
    float[][] old = new float[1][6];
    for (int j = 0; j < 6; j++) {
      old[0][j] = -1f;
      logp[0][j] = (float) (-1 + Math.log(ratio[j]));
    }
    float[][] mask = {{1, 1, 1, 1, 1, 0}};
    PolicyOut out = runPolicy(logp, old, new float[][] {a}, mask, 0.2f);
    // per token: max(-A r, -A clip(r, 0.8, 1.2))
    //  A=+1 r=0.5: max(-0.5, -0.8) = -0.5   unclipped, grad -A r = -0.5
    //  A=+1 r=2  : max(-2, -1.2)   = -1.2   clipped (no gradient)
    //  A=-1 r=0.5: max(0.5, 0.8)   =  0.8   clipped
    //  A=-1 r=2  : max(2, 1.2)     =  2     unclipped, grad 2
    //  A=+2 r=1.1: -2.2 (inside the range), grad -2.2
    assertEquals((-0.5 - 1.2 + 0.8 + 2 - 2.2) / 5, out.loss(), 1e-6);
    assertEquals(2.0 / 5, out.clipFraction(), 1e-7);
    float[] expectedGrad = {-0.5f / 5, 0, 0, 2f / 5, -2.2f / 5, 0};
    for (int j = 0; j < 6; j++) {
      assertEquals(expectedGrad[j], out.gradLogp()[j], 1e-6, "d loss / d logp[" + j + "]");
    }
    double halfSq = 0;
    double k3 = 0;
    for (int j = 0; j < 5; j++) {
      double d = Math.log(ratio[j]);
      halfSq += 0.5 * d * d;
      k3 += ratio[j] - 1 - d;
    }
    assertEquals(halfSq / 5, out.approxKl(), 1e-6);
    assertEquals(k3 / 5, out.approxKlK3(), 1e-6);
  }

  @Test
  void allMaskedGivesZeroLossNotNaN() {
    float[][] zeros = new float[2][3];
    float[][] x = {{1, 2, 3}, {4, 5, 6}};
    PolicyOut out = runPolicy(x, zeros, x, zeros, 0.2f);
    assertEquals(0f, out.loss());
    assertEquals(0f, out.clipFraction());
    for (float gx : out.gradLogp()) {
      assertEquals(0f, gx);
    }
  }

  /**
   * The gradient of the clipped loss with respect to the logits, through LogSoftmax + OneHot: graph
   * (tf.gradients) vs the analytic reference vs central finite differences of the reference.
   */
  @Test
  void policyGradientWrtLogitsMatchesAnalyticAndFiniteDifferences() {
    Random rnd = new Random(4);
    int n = 2;
    int t = 4;
    int v = 5;
    float[][][] logits = randomLogits(rnd, n, t, v, 2.0);
    int[][] tokens = new int[n][t];
    float[][] mask = {{1, 1, 1, 0}, {1, 1, 1, 1}};
    float[][] adv = new float[n][t];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < t; j++) {
        tokens[i][j] = rnd.nextInt(v);
        adv[i][j] = (float) ((j % 2 == 0 ? 1 : -1) * (0.5 + rnd.nextDouble()));
      }
    }
    // old log-probs chosen so that the ratios land on both sides of [0.8, 1.2] and inside it
    double[] targets = {0.5, 1.6, 0.9, 1.3, 0.6, 1.1, 2.5, 0.7};
    double[][] logp = PpoReference.tokenLogProbs(widen(logits), tokens, widen(mask));
    float[][] old = new float[n][t];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < t; j++) {
        old[i][j] = (float) (logp[i][j] - Math.log(targets[i * t + j]));
      }
    }
    float eps = 0.2f;
    double[][] dold = widen(old);
    double[][] da = widen(adv);
    double[][] dm = widen(mask);
    double[][][] dlogits = widen(logits);

    float[] graphGrad;
    float[] clipFraction;
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Placeholder<TFloat32> lg =
          tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1, v)));
      Placeholder<TInt32> tok = tf.placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
      Placeholder<TFloat32> o = matrix(tf);
      Placeholder<TFloat32> a = matrix(tf);
      Placeholder<TFloat32> m = matrix(tf);
      PpoLosses.PolicyLoss loss =
          PpoLosses.policyLoss(tf, PpoLosses.tokenLogProbs(tf, lg, tok, m), o, a, m, eps);
      Operand<TFloat32> grad = tf.gradients(loss.loss(), List.of(lg)).dy(0);
      List<float[]> out =
          run(
              session,
              Map.of(
                  lg,
                  tensor(logits),
                  tok,
                  tensor(tokens),
                  o,
                  tensor(old),
                  a,
                  tensor(adv),
                  m,
                  tensor(mask)),
              List.of(grad, loss.clipFraction()));
      graphGrad = out.get(0);
      clipFraction = out.get(1);
    }
    assertTrue(
        clipFraction[0] > 0 && clipFraction[0] < 1, "both branches exercised: " + clipFraction[0]);

    double[][][] analytic = PpoReference.policyLossGradLogits(dlogits, tokens, dold, da, dm, eps);
    ToDoubleFunction<double[][][]> f =
        x ->
            PpoReference.policyLoss(PpoReference.tokenLogProbs(x, tokens, dm), dold, da, dm, eps)
                .loss();
    double h = 1e-6;
    int nonZero = 0;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < t; j++) {
        for (int k = 0; k < v; k++) {
          double saved = dlogits[i][j][k];
          dlogits[i][j][k] = saved + h;
          double up = f.applyAsDouble(dlogits);
          dlogits[i][j][k] = saved - h;
          double down = f.applyAsDouble(dlogits);
          dlogits[i][j][k] = saved;
          double fd = (up - down) / (2 * h);
          String at = "[" + i + "," + j + "," + k + "]";
          assertEquals(fd, analytic[i][j][k], 1e-7, "analytic vs finite differences at " + at);
          float graph = graphGrad[(i * t + j) * v + k];
          assertEquals(
              analytic[i][j][k],
              graph,
              TOL * Math.max(1, Math.abs(analytic[i][j][k])),
              "graph at " + at);
          nonZero += analytic[i][j][k] != 0 ? 1 : 0;
        }
      }
    }
    assertTrue(nonZero > 0 && nonZero < n * t * v, "some tokens clipped, some not: " + nonZero);
  }

  // ---- value loss and total -----------------------------------------------------------------

  @Test
  void valueLossAndTotalMatchReferenceWithGradient() {
    Random rnd = new Random(6);
    int n = 3;
    int t = 5;
    float[][] values = new float[n][t];
    float[][] oldValues = new float[n][t];
    float[][] returns = new float[n][t];
    float[][] mask = new float[n][t];
    float[][] logp = new float[n][t];
    float[][] oldLogp = new float[n][t];
    float[][] adv = new float[n][t];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < t; j++) {
        oldValues[i][j] = (float) rnd.nextGaussian();
        // v moves by up to +-0.6 from vOld: inside and outside the 0.2 clip range on both sides
        values[i][j] = oldValues[i][j] + (float) (0.6 * (2 * rnd.nextDouble() - 1));
        returns[i][j] = (float) rnd.nextGaussian();
        mask[i][j] = j == t - 1 && i != 0 ? 0 : 1;
        logp[i][j] = (float) (-2 * rnd.nextDouble());
        oldLogp[i][j] = logp[i][j] + (float) (0.3 * rnd.nextGaussian());
        adv[i][j] = (float) rnd.nextGaussian();
        if (mask[i][j] == 0) {
          values[i][j] = Float.NaN;
          returns[i][j] = 1e30f;
        }
      }
    }
    float eps = 0.2f;
    float valueCoef = 0.1f;
    List<float[]> out;
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Placeholder<TFloat32> v = matrix(tf);
      Placeholder<TFloat32> vOld = matrix(tf);
      Placeholder<TFloat32> r = matrix(tf);
      Placeholder<TFloat32> m = matrix(tf);
      Placeholder<TFloat32> lp = matrix(tf);
      Placeholder<TFloat32> olp = matrix(tf);
      Placeholder<TFloat32> a = matrix(tf);
      PpoLosses.ValueLoss value = PpoLosses.valueLoss(tf, v, vOld, r, m, eps);
      PpoLosses.PolicyLoss policy = PpoLosses.policyLoss(tf, lp, olp, a, m, eps);
      Operand<TFloat32> total = PpoLosses.total(tf, policy.loss(), value.loss(), valueCoef);
      Operand<TFloat32> gradV = tf.gradients(total, List.of(v)).dy(0);
      Map<Placeholder<TFloat32>, Tensor> feeds = new LinkedHashMap<>();
      feeds.put(v, tensor(values));
      feeds.put(vOld, tensor(oldValues));
      feeds.put(r, tensor(returns));
      feeds.put(m, tensor(mask));
      feeds.put(lp, tensor(logp));
      feeds.put(olp, tensor(oldLogp));
      feeds.put(a, tensor(adv));
      out = run(session, feeds, List.of(value.loss(), value.clipFraction(), total, gradV));
    }
    double[][] dv = widen(values);
    double[][] dvo = widen(oldValues);
    double[][] dr = widen(returns);
    double[][] dm = widen(mask);
    PpoReference.ValueLoss ref = PpoReference.valueLoss(dv, dvo, dr, dm, eps);
    assertClose(ref.loss(), out.get(0)[0], "value loss");
    assertClose(ref.clipFraction(), out.get(1)[0], "value clip fraction");
    assertTrue(
        ref.clipFraction() > 0 && ref.clipFraction() < 1,
        "both branches exercised: " + ref.clipFraction());
    double policyRef =
        PpoReference.policyLoss(widen(logp), widen(oldLogp), widen(adv), dm, eps).loss();
    assertClose(PpoReference.total(policyRef, ref.loss(), valueCoef), out.get(2)[0], "total");

    // d total / d v = valueCoef * d value / d v; the analytic form against finite differences
    double[][] analytic = PpoReference.valueLossGradValues(dv, dvo, dr, dm, eps);
    double h = 1e-6;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < t; j++) {
        String at = "[" + i + "," + j + "]";
        if (mask[i][j] != 0) {
          double saved = dv[i][j];
          dv[i][j] = saved + h;
          double up = PpoReference.valueLoss(dv, dvo, dr, dm, eps).loss();
          dv[i][j] = saved - h;
          double down = PpoReference.valueLoss(dv, dvo, dr, dm, eps).loss();
          dv[i][j] = saved;
          assertEquals(
              (up - down) / (2 * h),
              analytic[i][j],
              1e-7,
              "analytic vs finite differences at " + at);
        }
        assertClose(valueCoef * analytic[i][j], out.get(3)[i * t + j], "d total / d v" + at);
      }
    }
  }

  @Test
  void validation() {
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      Placeholder<TFloat32> m2 = matrix(tf);
      Placeholder<TFloat32> m1 = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)));
      Placeholder<TInt32> tok = tf.placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class, () -> PpoLosses.tokenLogProbs(tf, m2, tok, m2));
      assertTrue(
          e.getMessage().contains("logits") && e.getMessage().contains("rank 3"), e.getMessage());
      e =
          assertThrows(
              IllegalArgumentException.class, () -> PpoLosses.policyLoss(tf, m2, m2, m1, m2, 0.2f));
      assertTrue(
          e.getMessage().contains("advantages") && e.getMessage().contains("[-1]"), e.getMessage());
      e =
          assertThrows(
              IllegalArgumentException.class, () -> PpoLosses.policyLoss(tf, m2, m2, m2, m2, 0f));
      assertTrue(
          e.getMessage().contains("clipRange") && e.getMessage().contains("0.0"), e.getMessage());
      e =
          assertThrows(
              IllegalArgumentException.class,
              () -> PpoLosses.valueLoss(tf, m2, m2, m2, m2, Float.NaN));
      assertTrue(
          e.getMessage().contains("valueClipRange") && e.getMessage().contains("NaN"),
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> PpoLosses.total(tf, m1, m1, -1f));
      assertTrue(e.getMessage().contains("-1.0"), e.getMessage());
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  private static Placeholder<TFloat32> matrix(Ops tf) {
    return tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, -1)));
  }

  /** Feeds, fetches, closes every tensor; returns the fetched values flattened row-major. */
  private static List<float[]> run(
      Session session,
      Map<? extends Operand<?>, Tensor> feeds,
      List<? extends Operand<TFloat32>> fetches) {
    try {
      Session.Runner runner = session.runner();
      feeds.forEach(runner::feed);
      fetches.forEach(runner::fetch);
      try (Result result = runner.run()) {
        List<float[]> out = new ArrayList<>();
        for (int i = 0; i < fetches.size(); i++) {
          TFloat32 x = (TFloat32) result.get(i);
          FloatDataBuffer buf = DataBuffers.ofFloats(x.size());
          x.copyTo(buf);
          float[] arr = new float[(int) x.size()];
          buf.read(arr);
          out.add(arr);
        }
        return out;
      }
    } finally {
      feeds.values().forEach(Tensor::close);
    }
  }

  private static TFloat32 tensor(float[][] x) {
    int n = x.length;
    int t = x[0].length;
    float[] flat = new float[n * t];
    for (int i = 0; i < n; i++) {
      System.arraycopy(x[i], 0, flat, i * t, t);
    }
    return TFloat32.tensorOf(Shape.of(n, t), DataBuffers.of(flat, true, false));
  }

  private static TFloat32 tensor(float[][][] x) {
    int n = x.length;
    int t = x[0].length;
    int v = x[0][0].length;
    float[] flat = new float[n * t * v];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < t; j++) {
        System.arraycopy(x[i][j], 0, flat, (i * t + j) * v, v);
      }
    }
    return TFloat32.tensorOf(Shape.of(n, t, v), DataBuffers.of(flat, true, false));
  }

  private static TInt32 tensor(int[][] x) {
    int n = x.length;
    int t = x[0].length;
    int[] flat = new int[n * t];
    for (int i = 0; i < n; i++) {
      System.arraycopy(x[i], 0, flat, i * t, t);
    }
    return TInt32.tensorOf(Shape.of(n, t), DataBuffers.of(flat, true, false));
  }

  private static float[][][] randomLogits(Random rnd, int n, int t, int v, double scale) {
    float[][][] out = new float[n][t][v];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < t; j++) {
        for (int k = 0; k < v; k++) {
          out[i][j][k] = (float) (scale * rnd.nextGaussian());
        }
      }
    }
    return out;
  }

  private static double[][] widen(float[][] x) {
    double[][] out = new double[x.length][];
    for (int i = 0; i < x.length; i++) {
      out[i] = new double[x[i].length];
      for (int j = 0; j < x[i].length; j++) {
        out[i][j] = x[i][j];
      }
    }
    return out;
  }

  private static double[][][] widen(float[][][] x) {
    double[][][] out = new double[x.length][][];
    for (int i = 0; i < x.length; i++) {
      out[i] = widen(x[i]);
    }
    return out;
  }

  private static void assertClose(double expected, float actual, String what) {
    assertEquals(expected, actual, TOL * Math.max(1, Math.abs(expected)), what);
  }

  private static void assertClose(double[][] expected, float[] actual, String what) {
    int t = expected[0].length;
    assertEquals(expected.length * t, actual.length, what + ": size");
    for (int i = 0; i < expected.length; i++) {
      for (int j = 0; j < t; j++) {
        assertClose(expected[i][j], actual[i * t + j], what + "[" + i + "," + j + "]");
      }
    }
  }
}
