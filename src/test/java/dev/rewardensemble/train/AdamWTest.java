package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.Tensor;
import org.tensorflow.exceptions.TFInvalidArgumentException;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TFloat32;

class AdamWTest {
  private static final Shape[] SHAPES = {Shape.of(3, 4), Shape.of(5), Shape.scalar()};

  /**
   * Plain-Java torch.optim.AdamW step in float32, scalars in double (as torch does with Python
   * floats).
   */
  static void referenceStep(
      float[] p, float[] m, float[] v, float[] g, double lr, int t, AdamWConfig c) {
    float decay = (float) (1 - lr * c.weightDecay());
    double w = 1 - c.beta1();
    float wf = (float) w;
    float oneMinusW = (float) (1 - w);
    float beta2 = (float) c.beta2();
    float oneMinusBeta2 = (float) (1 - c.beta2());
    float stepSize = (float) (lr / (1 - Math.pow(c.beta1(), t)));
    float bc2Sqrt = (float) Math.sqrt(1 - Math.pow(c.beta2(), t));
    float eps = (float) c.eps();
    for (int i = 0; i < p.length; i++) {
      float pd = c.weightDecay() == 0 ? p[i] : p[i] * decay;
      float diff = g[i] - m[i];
      m[i] = w < 0.5 ? m[i] + wf * diff : g[i] - diff * oneMinusW;
      v[i] = v[i] * beta2 + (oneMinusBeta2 * g[i]) * g[i];
      float denom = (float) Math.sqrt(v[i]) / bc2Sqrt + eps;
      p[i] = pd - stepSize * (m[i] / denom);
    }
  }

  /** The textbook formula in double, independent of the float32 operation order. */
  static void textbookStep(
      double[] p, double[] m, double[] v, float[] g, double lr, int t, AdamWConfig c) {
    for (int i = 0; i < p.length; i++) {
      p[i] -= lr * c.weightDecay() * p[i];
      m[i] = c.beta1() * m[i] + (1 - c.beta1()) * g[i];
      v[i] = c.beta2() * v[i] + (1 - c.beta2()) * g[i] * g[i];
      double mHat = m[i] / (1 - Math.pow(c.beta1(), t));
      p[i] -= lr * mHat / (Math.sqrt(v[i]) / Math.sqrt(1 - Math.pow(c.beta2(), t)) + c.eps());
    }
  }

  @Test
  void variablesAndSlotsAreInitialisedOnFirstRunAndLateVariablesToo() {
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Variable<TFloat32> w = tf.withName("w").variable(tf.constant(new float[] {1f, 2f}));
      AdamW opt =
          AdamW.build(
              tf, List.of(w), List.of(tf.constant(new float[] {0.5f, -0.5f})), AdamWConfig.DEFAULT);
      // No explicit initialisation: the init-scope assignments run on the first Session.run.
      try (Result r =
          session.runner().fetch(w).fetch(opt.firstMoment(0)).fetch(opt.secondMoment(0)).run()) {
        assertArrayEquals(new float[] {1f, 2f}, Tensors.floats(r.get(0)));
        assertArrayEquals(new float[] {0f, 0f}, Tensors.floats(r.get(1)));
        assertArrayEquals(new float[] {0f, 0f}, Tensors.floats(r.get(2)));
      }
      session.run(tf.assign(w, tf.constant(new float[] {5f, 6f})));
      // Variables and slots added after the first run are initialised on the next run; earlier ones
      // keep
      // their values (e.g. weights assigned from a checkpoint before the optimizer was built).
      Variable<TFloat32> late = tf.withName("late").variable(tf.constant(7f));
      AdamW lateOpt = AdamW.build(tf, List.of(late), List.of(tf.constant(1f)), AdamWConfig.DEFAULT);
      try (Result r = session.runner().fetch(w).fetch(late).fetch(lateOpt.firstMoment(0)).run()) {
        assertArrayEquals(new float[] {5f, 6f}, Tensors.floats(r.get(0)));
        assertEquals(7f, Tensors.scalar(r.get(1)));
        assertEquals(0f, Tensors.scalar(r.get(2)));
      }
    }
  }

  @Test
  void slotsAreNamedAfterTheirVariableEvenInsideSubScopes() {
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      Ops model = tf.withSubScope("model").withSubScope("layers.0");
      Variable<TFloat32> a = model.withName("weight").variable(tf.constant(new float[] {1f}));
      Variable<TFloat32> b = tf.withName("bias").variable(tf.constant(2f));
      AdamW opt =
          AdamW.build(
              tf.withSubScope("trainer"),
              List.of(a, b),
              List.of(tf.constant(new float[] {1f}), tf.constant(1f)),
              AdamWConfig.DEFAULT);
      assertEquals(
          List.of(
              "model/layers.0/weight/adam_m",
              "model/layers.0/weight/adam_v",
              "bias/adam_m",
              "bias/adam_v"),
          List.copyOf(opt.slots().keySet()));
      opt.slots().forEach((name, slot) -> assertEquals(name, slot.op().name()));
      assertEquals(Shape.scalar(), opt.secondMoment(1).shape());
      // A second optimizer over the same variable would silently share nothing: refuse it.
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> AdamW.build(tf, List.of(b), List.of(tf.constant(1f)), AdamWConfig.DEFAULT));
      assertTrue(e.getMessage().contains("bias/adam_m"), e.getMessage());
    }
  }

  @Test
  void matchesTorchReferenceOverSeveralStepsWithScheduleAndWeightDecay() {
    runAgainstReference(new AdamWConfig(0.9, 0.999, 1e-8, 0.1), 6, 1);
  }

  @Test
  void matchesReferenceWithSmallBeta1AndWithoutWeightDecay() {
    // beta1 < 0.5 takes torch.lerp's other branch; a large eps makes it visible in the denominator.
    runAgainstReference(new AdamWConfig(0.3, 0.95, 1e-3, 0.0), 4, 2);
  }

  @Test
  void resumesFromAFedStepCount() {
    // Start counting at t = 101 (a resumed run): bias corrections follow the fed t, not a hidden
    // counter.
    runAgainstReference(new AdamWConfig(0.9, 0.999, 1e-8, 0.01), 3, 101);
  }

  private static void runAgainstReference(AdamWConfig cfg, int steps, int firstT) {
    Random rnd = new Random(42 + firstT);
    float[][] init = new float[SHAPES.length][];
    for (int i = 0; i < SHAPES.length; i++) {
      init[i] = randoms(rnd, (int) SHAPES[i].size(), 1f);
    }
    float[] frozenInit = randoms(rnd, 7, 1f);
    Schedule schedule = Schedule.cosine(3e-2, 0.2, steps + 1);
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      List<Variable<TFloat32>> vars = new ArrayList<>();
      List<Placeholder<TFloat32>> grads = new ArrayList<>();
      for (int i = 0; i < SHAPES.length; i++) {
        vars.add(tf.withName("p" + i).variable(tf.constant(SHAPES[i], DataBuffers.of(init[i]))));
        grads.add(tf.withName("g" + i).placeholder(TFloat32.class, Placeholder.shape(SHAPES[i])));
      }
      Variable<TFloat32> frozen =
          tf.withName("frozen").variable(tf.constant(Shape.of(7), DataBuffers.of(frozenInit)));
      AdamW opt = AdamW.build(tf, vars, grads, cfg);

      float[][] p = new float[SHAPES.length][];
      float[][] m = new float[SHAPES.length][];
      float[][] v = new float[SHAPES.length][];
      double[][] pd = new double[SHAPES.length][];
      double[][] md = new double[SHAPES.length][];
      double[][] vd = new double[SHAPES.length][];
      for (int i = 0; i < SHAPES.length; i++) {
        p[i] = init[i].clone();
        m[i] = new float[init[i].length];
        v[i] = new float[init[i].length];
        pd[i] = toDouble(init[i]);
        md[i] = new double[init[i].length];
        vd[i] = new double[init[i].length];
      }
      for (int s = 0; s < steps; s++) {
        int t = firstT + s;
        double lr = schedule.lr(s + 1); // skip the lr-0 first warmup step so every step moves
        float[][] gv = new float[SHAPES.length][];
        List<Tensor> feeds = new ArrayList<>();
        try {
          Session.Runner runner = session.runner().addTarget(opt.update());
          for (int i = 0; i < SHAPES.length; i++) {
            gv[i] = randoms(rnd, init[i].length, s == 0 ? 1f : 0.1f * (s + 1));
            Tensor gt = Tensors.of(SHAPES[i], gv[i]);
            feeds.add(gt);
            runner.feed(grads.get(i), gt);
          }
          TFloat32 lrT = TFloat32.scalarOf((float) lr);
          feeds.add(lrT);
          TFloat32 tT = TFloat32.scalarOf(t);
          feeds.add(tT);
          runner.feed(opt.lr(), lrT).feed(opt.step(), tT).run().close();
        } finally {
          feeds.forEach(Tensor::close);
        }
        double lrF = (float) lr; // the graph sees the float32 learning rate
        for (int i = 0; i < SHAPES.length; i++) {
          referenceStep(p[i], m[i], v[i], gv[i], lrF, t, cfg);
          textbookStep(pd[i], md[i], vd[i], gv[i], lrF, t, cfg);
        }
      }
      Session.Runner runner = session.runner().fetch(frozen);
      for (int i = 0; i < SHAPES.length; i++) {
        runner.fetch(vars.get(i)).fetch(opt.firstMoment(i)).fetch(opt.secondMoment(i));
      }
      try (Result r = runner.run()) {
        assertArrayEquals(
            bits(frozenInit), bits(Tensors.floats(r.get(0))), "a variable outside the list moved");
        for (int i = 0; i < SHAPES.length; i++) {
          float[] gotP = Tensors.floats(r.get(1 + 3 * i));
          float[] gotM = Tensors.floats(r.get(2 + 3 * i));
          float[] gotV = Tensors.floats(r.get(3 + 3 * i));
          // TensorFlow's fused kernel rounds 1 - beta1 and orders the update differently (AdamW's
          // class comment): up to 1.1e-6 relative measured here, against 0 for a bit-exact copy
          assertClose(p[i], gotP, 2e-6, "param " + i);
          assertClose(m[i], gotM, 2e-6, "adam_m " + i);
          // the kernel's v is torch's times the documented factor (AdamW#secondMomentScale)
          assertClose(
              scaled(v[i], AdamW.secondMomentScale(cfg.beta2())), gotV, 1e-6, "adam_v " + i);
          assertClose(toFloat(pd[i]), gotP, 1e-5, "param " + i + " vs double textbook");
          for (int j = 0; j < gotP.length; j++) {
            assertTrue(gotP[j] != init[i][j], "param " + i + "[" + j + "] did not move");
          }
        }
      }
    }
  }

  /**
   * The averaging slots: after steps whose weights were averaged with counts 1..3 the slot holds
   * their mean (the first call copies the weights exactly), {@code useAverage} assigns it, and the
   * slot is optimizer state under {@code <var>/swa}.
   */
  @Test
  void averagingSlotsHoldTheMeanOfTheAveragedWeights() {
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Variable<TFloat32> w = tf.withName("w").variable(tf.constant(new float[] {1f, -2f}));
      Placeholder<TFloat32> grad = tf.placeholder(TFloat32.class);
      AdamW opt =
          AdamW.build(
              tf,
              List.of(w),
              List.of(tf.reshape(grad, tf.constant(new int[] {2}))),
              AdamWConfig.DEFAULT,
              true);
      assertEquals(List.of("w/adam_m", "w/adam_v", "w/swa"), List.copyOf(opt.slots().keySet()));
      double[] sum = new double[2];
      float[] first = null;
      for (int t = 1; t <= 3; t++) {
        try (TFloat32 lr = TFloat32.scalarOf(0.1f);
            TFloat32 step = TFloat32.scalarOf(t);
            TFloat32 gr = TFloat32.vectorOf(t, -t * 0.5f)) {
          session
              .runner()
              .feed(opt.lr(), lr)
              .feed(opt.step(), step)
              .feed(grad, gr)
              .addTarget(opt.update())
              .run()
              .close();
        }
        float[] now;
        try (Result r = session.runner().fetch(w).run()) {
          now = Tensors.floats(r.get(0));
        }
        for (int i = 0; i < 2; i++) {
          sum[i] += now[i];
        }
        try (TFloat32 weight = TFloat32.scalarOf(1f / t)) {
          session.runner().feed(opt.averageWeight(), weight).addTarget(opt.average()).run().close();
        }
        float[] avg;
        try (Result r = session.runner().fetch(opt.slots().get("w/swa")).run()) {
          avg = Tensors.floats(r.get(0));
        }
        if (t == 1) {
          first = now;
          assertArrayEquals(now, avg); // exactly the weights
        }
        for (int i = 0; i < 2; i++) {
          assertEquals(sum[i] / t, avg[i], 1e-6);
        }
      }
      float[] before;
      try (Result r = session.runner().fetch(w).run()) {
        before = Tensors.floats(r.get(0));
      }
      assertTrue(before[0] != first[0]); // the weights moved: the mean is not the last ones
      session.runner().addTarget(opt.useAverage()).run().close();
      try (Result r = session.runner().fetch(w).run();
          Result a = session.runner().fetch(opt.slots().get("w/swa")).run()) {
        assertArrayEquals(Tensors.floats(a.get(0)), Tensors.floats(r.get(0)));
        assertEquals(sum[0] / 3, Tensors.floats(r.get(0))[0], 1e-6);
      }
    }
  }

  @Test
  void stepBelowOneFailsTheRun() {
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Variable<TFloat32> w = tf.withName("w").variable(tf.constant(new float[] {1f}));
      AdamW opt =
          AdamW.build(tf, List.of(w), List.of(tf.constant(new float[] {1f})), AdamWConfig.DEFAULT);
      try (TFloat32 lr = TFloat32.scalarOf(1e-3f);
          TFloat32 t = TFloat32.scalarOf(0f)) {
        TFInvalidArgumentException e =
            assertThrows(
                TFInvalidArgumentException.class,
                () ->
                    session
                        .runner()
                        .feed(opt.lr(), lr)
                        .feed(opt.step(), t)
                        .addTarget(opt.update())
                        .run()
                        .close());
        assertTrue(e.getMessage().contains("step t must be >= 1"), e.getMessage());
      }
      try (Result r = session.runner().fetch(w).run()) {
        assertArrayEquals(new float[] {1f}, Tensors.floats(r.get(0)));
      }
    }
  }

  /**
   * Ground truth from torch: one {@code torch.optim.AdamW} step (lr 1e-3, betas 0.9/0.999, eps
   * 1e-8, weight decay 0.1) on {@code score.weight} of the llama-seqcls fixture, with the gradient
   * torch computed. The update moves each weight by about 1e-3; agreement is to a few float32 ulps
   * of the weights.
   */
  @Test
  void oneStepMatchesTorchFixture() throws IOException {
    JsonNode expected = json("/fixtures/llama-bt-step/expected.json");
    JsonNode adamw = expected.get("adamw");
    AdamWConfig cfg =
        new AdamWConfig(
            adamw.get("betas").get(0).asDouble(),
            adamw.get("betas").get(1).asDouble(),
            adamw.get("eps").asDouble(),
            adamw.get("weight_decay").asDouble());
    float[] weight = safetensor("/fixtures/llama-seqcls/model.safetensors", "score.weight");
    float[] grad = flatten(expected.get("grad_score_weight"));
    float[] after = flatten(expected.get("score_weight_after_one_step"));
    assertEquals(64, weight.length);
    try (Graph g = new Graph();
        Session session = new Session(g)) {
      Ops tf = Ops.create(g);
      Shape shape = Shape.of(1, 64);
      Variable<TFloat32> w =
          tf.withName("score.weight").variable(tf.constant(shape, DataBuffers.of(weight)));
      AdamW opt =
          AdamW.build(tf, List.of(w), List.of(tf.constant(shape, DataBuffers.of(grad))), cfg);
      try (TFloat32 lr = TFloat32.scalarOf((float) adamw.get("lr").asDouble());
          TFloat32 t = TFloat32.scalarOf(1f)) {
        session
            .runner()
            .feed(opt.lr(), lr)
            .feed(opt.step(), t)
            .addTarget(opt.update())
            .run()
            .close();
      }
      try (Result r = session.runner().fetch(w).run()) {
        float[] got = Tensors.floats(r.get(0));
        for (int j = 0; j < got.length; j++) {
          assertEquals(
              after[j], got[j], 1e-8 + 1e-6 * Math.abs(after[j]), "score.weight[" + j + "]");
        }
      }
    }
  }

  @Test
  void validation() {
    assertThrows(IllegalArgumentException.class, () -> new AdamWConfig(1.0, 0.999, 1e-8, 0));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> new AdamWConfig(0.9, 0.999, 0, 0));
    assertTrue(e.getMessage().contains("eps") && e.getMessage().contains("0.0"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> AdamWConfig.withWeightDecay(-0.5));
    assertTrue(e.getMessage().contains("-0.5"), e.getMessage());
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      Variable<TFloat32> w = tf.withName("w").variable(tf.constant(new float[] {1f, 2f}));
      e =
          assertThrows(
              IllegalArgumentException.class,
              () -> AdamW.build(tf, List.of(w), List.of(), AdamWConfig.DEFAULT));
      assertTrue(e.getMessage().contains("1 variables but 0 gradients"), e.getMessage());
      e =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  AdamW.build(
                      tf,
                      List.of(w),
                      List.of(tf.constant(new float[] {1f, 2f, 3f})),
                      AdamWConfig.DEFAULT));
      assertTrue(e.getMessage().contains("[3]"), e.getMessage());
      Operand<TFloat32> gw = tf.constant(new float[] {1f, 2f});
      e =
          assertThrows(
              IllegalArgumentException.class,
              () -> AdamW.build(tf, List.of(w, w), List.of(gw, gw), AdamWConfig.DEFAULT));
      assertTrue(e.getMessage().contains("listed twice"), e.getMessage());
    }
  }

  // ---- helpers ----

  static float[] randoms(Random rnd, int n, float scale) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) (rnd.nextGaussian() * scale);
    }
    return out;
  }

  /** {@code x * factor} element by element, in double, rounded to float32. */
  static float[] scaled(float[] x, double factor) {
    float[] out = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = (float) (x[i] * factor);
    }
    return out;
  }

  static void assertClose(float[] expected, float[] actual, double rel, String what) {
    assertEquals(expected.length, actual.length, what);
    for (int i = 0; i < expected.length; i++) {
      double tol = rel * Math.max(Math.abs(expected[i]), 1e-3);
      assertEquals(expected[i], actual[i], tol, what + "[" + i + "]");
    }
  }

  private static int[] bits(float[] x) {
    int[] out = new int[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = Float.floatToRawIntBits(x[i]);
    }
    return out;
  }

  private static double[] toDouble(float[] x) {
    double[] out = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = x[i];
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

  static JsonNode json(String resource) throws IOException {
    try (InputStream in = AdamWTest.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IOException("missing test resource " + resource);
      }
      return new ObjectMapper().readTree(in);
    }
  }

  static float[] flatten(JsonNode node) {
    List<Float> values = new ArrayList<>();
    collect(node, values);
    float[] out = new float[values.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = values.get(i);
    }
    return out;
  }

  private static void collect(JsonNode node, List<Float> out) {
    if (node.isArray()) {
      node.forEach(child -> collect(child, out));
    } else {
      out.add((float) node.asDouble());
    }
  }

  /**
   * Reads one F32 tensor from a safetensors file (8-byte little-endian header length, JSON header,
   * data).
   */
  private static float[] safetensor(String resource, String key) throws IOException {
    byte[] bytes;
    try (InputStream in = AdamWTest.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IOException("missing test resource " + resource);
      }
      bytes = in.readAllBytes();
    }
    ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    int headerLen = Math.toIntExact(buf.getLong(0));
    JsonNode header =
        new ObjectMapper().readTree(new String(bytes, 8, headerLen, StandardCharsets.UTF_8));
    JsonNode entry = header.get(key);
    assertEquals("F32", entry.get("dtype").asText());
    int begin = 8 + headerLen + entry.get("data_offsets").get(0).asInt();
    int end = 8 + headerLen + entry.get("data_offsets").get(1).asInt();
    float[] out = new float[(end - begin) / 4];
    for (int i = 0; i < out.length; i++) {
      out[i] = buf.getFloat(begin + 4 * i);
    }
    return out;
  }
}
