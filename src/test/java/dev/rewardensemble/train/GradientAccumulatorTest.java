package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Op;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gradients;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TFloat32;

class GradientAccumulatorTest {
  private static final int IN = 3;
  private static final int OUT = 2;
  private static final int MICRO = 4; // rows per micro-batch

  /**
   * A tiny linear model {@code y = x W + b}, loss {@code mean((x W + b)^2)} over a micro-batch. TF
   * Java 1.1.0 crashes (SIGSEGV) when asked for the gradient with respect to a {@code VariableV2}
   * ref itself, so the forward reads each variable once through {@code identity} and differentiates
   * with respect to the read.
   */
  private static final class Model {
    final Variable<TFloat32> w; // [IN, OUT]
    final Variable<TFloat32> b; // [OUT]
    final Placeholder<TFloat32> x; // [MICRO, IN]
    final Operand<TFloat32> loss; // []
    final List<Operand<TFloat32>> grads; // [IN, OUT], [OUT]

    Model(Ops tf, float[] w0, float[] b0) {
      w = tf.withName("w").variable(tf.constant(Shape.of(IN, OUT), DataBuffers.of(w0)));
      b = tf.withName("b").variable(tf.constant(Shape.of(OUT), DataBuffers.of(b0)));
      x = tf.withName("x").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, IN)));
      Operand<TFloat32> wRead = tf.identity(w);
      Operand<TFloat32> bRead = tf.identity(b);
      Operand<TFloat32> y = tf.math.add(tf.linalg.matMul(x, wRead), bRead); // [MICRO, OUT]
      loss = tf.math.mean(tf.math.square(y), tf.constant(new int[] {0, 1}));
      Gradients g = tf.gradients(loss, List.of(wRead, bRead));
      grads = List.of(g.dy(0), g.dy(1));
    }
  }

  /** Plain Java: gradient of mean((xW+b)^2) over all rows of {@code x} ([n][IN]) for W and b. */
  private static float[][] referenceGrad(float[][] x, float[] w, float[] b) {
    int n = x.length;
    double[] gw = new double[IN * OUT];
    double[] gb = new double[OUT];
    for (float[] row : x) {
      for (int o = 0; o < OUT; o++) {
        double y = b[o];
        for (int i = 0; i < IN; i++) {
          y += (double) row[i] * w[i * OUT + o];
        }
        double dy = 2 * y / (n * OUT);
        gb[o] += dy;
        for (int i = 0; i < IN; i++) {
          gw[i * OUT + o] += dy * row[i];
        }
      }
    }
    return new float[][] {toFloat(gw), toFloat(gb)};
  }

  @Test
  void threeMicroBatchesAccumulateTheMeanGradientAndResetZeroes() {
    Random rnd = new Random(7);
    float[] w0 = AdamWTest.randoms(rnd, IN * OUT, 1f);
    float[] b0 = AdamWTest.randoms(rnd, OUT, 1f);
    float[][] rows = new float[3 * MICRO][];
    for (int r = 0; r < rows.length; r++) {
      rows[r] = AdamWTest.randoms(rnd, IN, 1f);
    }
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Model model = new Model(tf, w0, b0);
      GradientAccumulator acc =
          GradientAccumulator.build(tf, List.of(model.w, model.b), model.grads, 3, 0f);
      assertEquals(
          List.of("w/grad_accum", "b/grad_accum"), List.copyOf(acc.accumulators().keySet()));
      for (int round = 0;
          round < 2;
          round++) { // the second round checks that reset starts from zero
        for (int mb = 0; mb < 3; mb++) {
          float[][] part = new float[MICRO][];
          System.arraycopy(rows, mb * MICRO, part, 0, MICRO);
          try (TFloat32 xs = Tensors.of(part)) {
            session.runner().feed(model.x, xs).addTarget(acc.accumulate()).run().close();
          }
        }
        float[][] expected = referenceGrad(rows, w0, b0);
        try (Result r =
            session
                .runner()
                .fetch(acc.accumulated().get(0))
                .fetch(acc.accumulated().get(1))
                .fetch(acc.clipped().get(0))
                .fetch(acc.clipCoefficient())
                .run()) {
          AdamWTest.assertClose(expected[0], Tensors.floats(r.get(0)), 1e-5, "accumulated dW");
          AdamWTest.assertClose(expected[1], Tensors.floats(r.get(1)), 1e-5, "accumulated db");
          assertArrayEquals(
              Tensors.floats(r.get(0)), Tensors.floats(r.get(2)), "maxNorm 0 leaves it unclipped");
          assertEquals(1f, Tensors.scalar(r.get(3)));
        }
        session.run(acc.reset());
        try (Result r =
            session
                .runner()
                .fetch(acc.accumulated().get(0))
                .fetch(acc.accumulated().get(1))
                .run()) {
          assertArrayEquals(new float[IN * OUT], Tensors.floats(r.get(0)));
          assertArrayEquals(new float[OUT], Tensors.floats(r.get(1)));
        }
      }
      // A fed scale overrides the default 1/numMicroBatches for that run.
      try (TFloat32 xs = Tensors.of(java.util.Arrays.copyOf(rows, MICRO));
          TFloat32 one = TFloat32.scalarOf(1f)) {
        session
            .runner()
            .feed(model.x, xs)
            .feed(acc.scale(), one)
            .addTarget(acc.accumulate())
            .run()
            .close();
      }
      float[][] expected = referenceGrad(java.util.Arrays.copyOf(rows, MICRO), w0, b0);
      try (Result r = session.runner().fetch(acc.accumulated().get(1)).run()) {
        AdamWTest.assertClose(expected[1], Tensors.floats(r.get(0)), 1e-5, "scale 1");
      }
    }
  }

  /**
   * Fixed gradients fed through placeholders; returns [norm, coefficient, clipped...] for a
   * maxNorm.
   */
  private static final float[] G0 = {3f, -4f, 1f, 2f}; // [2, 2]

  private static final float[] G1 = {-2f, 0.5f, 6f}; // [3]

  private static double referenceNorm(float[]... gs) {
    double s = 0;
    for (float[] g : gs) {
      for (float x : g) {
        s += (double) x * x;
      }
    }
    return Math.sqrt(s);
  }

  @Test
  void globalNormAndClippingMatchTorchClipGradNorm() {
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Variable<TFloat32> a =
          tf.withName("a").variable(tf.zeros(tf.constant(new long[] {2, 2}), TFloat32.class));
      Variable<TFloat32> c =
          tf.withName("c").variable(tf.zeros(tf.constant(new long[] {3}), TFloat32.class));
      Placeholder<TFloat32> ga = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(2, 2)));
      Placeholder<TFloat32> gc = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(3)));
      GradientAccumulator acc =
          GradientAccumulator.build(tf, List.of(a, c), List.of(ga, gc), 1, 2.5f);
      try (TFloat32 ta = Tensors.of(Shape.of(2, 2), G0);
          TFloat32 tc = Tensors.of(Shape.of(3), G1)) {
        session.runner().feed(ga, ta).feed(gc, tc).addTarget(acc.accumulate()).run().close();
      }
      double norm = referenceNorm(G0, G1);
      for (float maxNorm : new float[] {2.5f, 100f, 0f, -1f}) {
        Session.Runner runner = session.runner();
        TFloat32 fed =
            maxNorm == 2.5f ? null : TFloat32.scalarOf(maxNorm); // 2.5 is the built default
        if (fed != null) {
          runner.feed(acc.maxNorm(), fed);
        }
        try (fed;
            Result r =
                runner
                    .fetch(acc.globalNorm())
                    .fetch(acc.clipCoefficient())
                    .fetch(acc.clipped().get(0))
                    .fetch(acc.clipped().get(1))
                    .fetch(acc.finite())
                    .run()) {
          assertEquals(norm, Tensors.scalar(r.get(0)), 1e-6 * norm, "norm");
          double coef = maxNorm > 0 ? Math.min(1.0, maxNorm / (norm + 1e-6)) : 1.0;
          assertEquals(coef, Tensors.scalar(r.get(1)), 1e-6, "coefficient at maxNorm " + maxNorm);
          AdamWTest.assertClose(
              scaled(G0, coef), Tensors.floats(r.get(2)), 1e-6, "clipped a at " + maxNorm);
          AdamWTest.assertClose(
              scaled(G1, coef), Tensors.floats(r.get(3)), 1e-6, "clipped c at " + maxNorm);
          assertTrue(Tensors.bool(r.get(4)));
          if (maxNorm == 2.5f) {
            assertEquals(
                2.5, referenceNorm(Tensors.floats(r.get(2)), Tensors.floats(r.get(3))), 1e-5);
          }
        }
      }
    }
  }

  @Test
  void finiteIsFalseForNanOrInfiniteGradients() {
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Variable<TFloat32> a =
          tf.withName("a").variable(tf.zeros(tf.constant(new long[] {3}), TFloat32.class));
      Placeholder<TFloat32> ga = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(3)));
      GradientAccumulator acc = GradientAccumulator.build(tf, List.of(a), List.of(ga), 2, 1f);
      for (float bad :
          new float[] {1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
        try (TFloat32 t = Tensors.of(Shape.of(3), new float[] {0.5f, bad, -2f})) {
          session.runner().feed(ga, t).addTarget(acc.accumulate()).run().close();
        }
        try (Result r = session.runner().fetch(acc.finite()).run()) {
          assertEquals(Float.isFinite(bad), Tensors.bool(r.get(0)), "gradient containing " + bad);
        }
        session.run(acc.reset());
      }
    }
  }

  /**
   * The whole step: accumulate three micro-batches, then one fused run applies AdamW to the clipped
   * mean gradient and zeroes the accumulators; the norm fetched in that run is the pre-reset one.
   * Two steps.
   */
  @Test
  void fusedStepAppliesClippedMeanGradientThenResets() {
    Random rnd = new Random(11);
    float[] w0 = AdamWTest.randoms(rnd, IN * OUT, 1f);
    float[] b0 = AdamWTest.randoms(rnd, OUT, 1f);
    AdamWConfig cfg = new AdamWConfig(0.9, 0.999, 1e-8, 0.05);
    float maxNorm = 0.5f;
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Model model = new Model(tf, w0, b0);
      List<Variable<TFloat32>> vars = List.of(model.w, model.b);
      GradientAccumulator acc = GradientAccumulator.build(tf, vars, model.grads, 3, maxNorm);
      AdamW opt = AdamW.build(tf, vars, acc.clipped(), cfg);
      Op step = acc.resetAfter(tf, opt.update());

      float[] w = w0.clone();
      float[] b = b0.clone();
      float[][] m = {new float[IN * OUT], new float[OUT]};
      float[][] v = {new float[IN * OUT], new float[OUT]};
      for (int t = 1; t <= 2; t++) {
        float[][] rows = new float[3 * MICRO][];
        for (int r = 0; r < rows.length; r++) {
          rows[r] = AdamWTest.randoms(rnd, IN, 1f);
        }
        for (int mb = 0; mb < 3; mb++) {
          try (TFloat32 xs =
              Tensors.of(java.util.Arrays.copyOfRange(rows, mb * MICRO, (mb + 1) * MICRO))) {
            session.runner().feed(model.x, xs).addTarget(acc.accumulate()).run().close();
          }
        }
        float[][] grad = referenceGrad(rows, w, b);
        double norm = referenceNorm(grad);
        double coef = Math.min(1.0, maxNorm / (norm + 1e-6));
        float lr = 0.01f;
        try (TFloat32 lrT = TFloat32.scalarOf(lr);
            TFloat32 tT = TFloat32.scalarOf(t);
            Result r =
                session
                    .runner()
                    .feed(opt.lr(), lrT)
                    .feed(opt.step(), tT)
                    .fetch(acc.globalNorm())
                    .fetch(acc.finite())
                    .addTarget(step)
                    .run()) {
          assertEquals(
              norm, Tensors.scalar(r.get(0)), 1e-5 * norm, "norm fetched with the fused step");
          assertTrue(Tensors.bool(r.get(1)));
        }
        AdamWTest.referenceStep(w, m[0], v[0], scaled(grad[0], coef), lr, t, cfg);
        AdamWTest.referenceStep(b, m[1], v[1], scaled(grad[1], coef), lr, t, cfg);
        try (Result r =
            session
                .runner()
                .fetch(model.w)
                .fetch(model.b)
                .fetch(acc.accumulated().get(0))
                .fetch(acc.accumulated().get(1))
                .run()) {
          AdamWTest.assertClose(w, Tensors.floats(r.get(0)), 1e-5, "w after step " + t);
          AdamWTest.assertClose(b, Tensors.floats(r.get(1)), 1e-5, "b after step " + t);
          assertArrayEquals(
              new float[IN * OUT], Tensors.floats(r.get(2)), "accumulator reset after step " + t);
          assertArrayEquals(new float[OUT], Tensors.floats(r.get(3)));
        }
      }
    }
  }

  @Test
  void validation() {
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      Variable<TFloat32> a = tf.withName("a").variable(tf.constant(new float[] {1f}));
      List<Operand<TFloat32>> grads = List.of(tf.constant(new float[] {1f}));
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> GradientAccumulator.build(tf, List.of(a), grads, 0, 1f));
      assertTrue(
          e.getMessage().contains("numMicroBatches") && e.getMessage().contains("0"),
          e.getMessage());
      e =
          assertThrows(
              IllegalArgumentException.class,
              () -> GradientAccumulator.build(tf, List.of(a), grads, 2, -1f));
      assertTrue(e.getMessage().contains("-1.0"), e.getMessage());
      e =
          assertThrows(
              IllegalArgumentException.class,
              () -> GradientAccumulator.build(tf, List.of(a), grads, 2, Float.NaN));
      assertTrue(e.getMessage().contains("NaN"), e.getMessage());
      e =
          assertThrows(
              IllegalArgumentException.class,
              () -> GradientAccumulator.build(tf, List.of(), List.of(), 2, 1f));
      assertTrue(e.getMessage().contains("empty"), e.getMessage());
      assertFalse(g.operation("a/grad_accum") != null, "failed builds leave no accumulator behind");
    }
  }

  private static float[] scaled(float[] g, double coef) {
    float c = (float) coef;
    float[] out = new float[g.length];
    for (int i = 0; i < g.length; i++) {
      out[i] = g[i] * c;
    }
    return out;
  }

  private static float[] toFloat(double[] x) {
    float[] out = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = (float) x[i];
    }
    return out;
  }
}
