package dev.rewardensemble.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * Attention's per-layer options (scale, logit soft-capping, sliding window) and rotary tables from
 * given inverse frequencies, against plain-Java references; the key/value cache against attention
 * over the whole sequence.
 */
class AttentionOptionsTest {
  static final int B = 2, T = 6, N = 4, NKV = 2, D = 8;
  // Row 1 is left-padded by two positions.
  static final int[] MASK = {1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1};

  final float[] q = random(B * T * N * D, 1);
  final float[] k = random(B * T * NKV * D, 2);
  final float[] v = random(B * T * NKV * D, 3);

  static float[] random(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) (r.nextGaussian() * 1.5);
    }
    return x;
  }

  /** Plain-Java attention: {@code [B*T, N*D]}, rows of padding queries left at 0. */
  static float[] reference(float[] q, float[] k, float[] v, int[] mask, Attention.Options o) {
    float[] out = new float[B * T * N * D];
    int g = N / NKV;
    for (int b = 0; b < B; b++) {
      for (int i = 0; i < T; i++) {
        if (mask[b * T + i] == 0) {
          continue;
        }
        for (int h = 0; h < N; h++) {
          int kvh = h / g;
          double[] s = new double[T];
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j < T; j++) {
            boolean seen =
                j <= i && mask[b * T + j] == 1 && (o.window() == 0 || i - j < o.window());
            if (!seen) {
              s[j] = Double.NaN;
              continue;
            }
            double dot = 0;
            for (int e = 0; e < D; e++) {
              dot += q[((b * T + i) * N + h) * D + e] * k[((b * T + j) * NKV + kvh) * D + e];
            }
            dot *= o.scale();
            if (o.softcap() > 0) {
              dot = o.softcap() * Math.tanh(dot / o.softcap());
            }
            s[j] = dot;
            max = Math.max(max, dot);
          }
          double sum = 0;
          for (int j = 0; j < T; j++) {
            if (!Double.isNaN(s[j])) {
              s[j] = Math.exp(s[j] - max);
              sum += s[j];
            }
          }
          for (int j = 0; j < T; j++) {
            if (Double.isNaN(s[j])) {
              continue;
            }
            for (int e = 0; e < D; e++) {
              out[(b * T + i) * N * D + h * D + e] +=
                  (float) (s[j] / sum * v[((b * T + j) * NKV + kvh) * D + e]);
            }
          }
        }
      }
    }
    return out;
  }

  float[] attend(Attention.Options o) {
    try (Graph graph = new Graph();
        Session s = new Session(graph)) {
      Ops tf = Ops.create(graph);
      Attention.Geometry g = Attention.geometry(tf, ints(tf, MASK, B, T));
      Operand<TFloat32> out =
          Attention.attend(
              tf,
              floats(tf, q, B, T, N, D),
              floats(tf, k, B, T, NKV, D),
              floats(tf, v, B, T, NKV, D),
              g,
              N,
              NKV,
              D,
              o,
              null,
              0);
      return fetch(s, out);
    }
  }

  static Operand<TInt32> ints(Ops tf, int[] x, long... shape) {
    return tf.constant(Shape.of(shape), DataBuffers.of(x));
  }

  static Operand<TFloat32> floats(Ops tf, float[] x, long... shape) {
    return tf.constant(Shape.of(shape), DataBuffers.of(x));
  }

  static float[] fetch(Session s, Operand<TFloat32> x) {
    try (Result r = s.runner().fetch(x).run()) {
      TFloat32 t = (TFloat32) r.get(0);
      float[] out = new float[(int) t.shape().size()];
      t.asRawTensor().data().asFloats().read(out);
      return out;
    }
  }

  /** Compares the rows of real queries. */
  static void assertRowsClose(float[] want, float[] got, double tol, String what) {
    for (int row = 0; row < B * T; row++) {
      if (MASK[row] == 0) {
        continue;
      }
      for (int c = 0; c < N * D; c++) {
        int at = row * N * D + c;
        assertTrue(
            Math.abs(want[at] - got[at]) <= tol,
            what + ": row " + row + " col " + c + ": " + want[at] + " vs " + got[at]);
      }
    }
  }

  static double maxRowDiff(float[] a, float[] b) {
    double m = 0;
    for (int row = 0; row < B * T; row++) {
      if (MASK[row] == 1) {
        for (int c = 0; c < N * D; c++) {
          m = Math.max(m, Math.abs(a[row * N * D + c] - b[row * N * D + c]));
        }
      }
    }
    return m;
  }

  @Test
  void eachOptionMatchesThePlainJavaReferenceAndChangesTheResult() {
    Attention.Options standard = Attention.Options.standard(D);
    float[] plain = reference(q, k, v, MASK, standard);
    assertRowsClose(plain, attend(standard), 1e-5, "standard");
    List<Attention.Options> variants = new ArrayList<>();
    variants.add(standard.withScale(Math.pow(3.0, -0.5))); // Gemma 2's query_pre_attn_scalar^-0.5
    variants.add(standard.withScale(1.0).withSoftcap(2.0)); // capping bites: scores up to ~30
    variants.add(standard.withWindow(2));
    variants.add(standard.withWindow(1)); // only itself
    variants.add(new Attention.Options(0.5, 3.0, 3));
    for (Attention.Options o : variants) {
      float[] want = reference(q, k, v, MASK, o);
      assertRowsClose(want, attend(o), 1e-5, o.toString());
      assertTrue(maxRowDiff(want, plain) > 1e-2, o + " must change the result");
    }
  }

  @Test
  void badOptionsAreRefusedNamingTheValue() {
    assertThrows(IllegalArgumentException.class, () -> new Attention.Options(0, 0, 0));
    assertThrows(IllegalArgumentException.class, () -> new Attention.Options(1, -1, 0));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> new Attention.Options(1, 0, -4));
    assertTrue(e.getMessage().contains("-4"), e.getMessage());
  }

  @Test
  void rotaryTablesFromGivenInverseFrequencies() {
    float[] invFreq = {1f, 0.37f, 0.01f, 0.25f}; // e.g. rescaled by a rope type
    try (Graph graph = new Graph();
        Session s = new Session(graph)) {
      Ops tf = Ops.create(graph);
      Attention.Geometry g = Attention.geometry(tf, ints(tf, MASK, B, T));
      Operand<TFloat32>[] cs = Attention.ropeTables(tf, g, invFreq);
      float[] cos = fetch(s, cs[0]);
      float[] sin = fetch(s, cs[1]);
      for (int b = 0; b < B; b++) {
        int pos = 0;
        for (int t = 0; t < T; t++) {
          int p = MASK[b * T + t] == 1 ? pos++ : Math.max(pos - 1, 0);
          for (int i = 0; i < 2 * invFreq.length; i++) {
            float angle = p * invFreq[i % invFreq.length];
            int at = (b * T + t) * 2 * invFreq.length + i;
            assertTrue(Math.abs(Math.cos(angle) - cos[at]) < 1e-6, "cos " + at);
            assertTrue(Math.abs(Math.sin(angle) - sin[at]) < 1e-6, "sin " + at);
          }
        }
      }
      // The default path is theta^(-2i/D) in double, rounded to float, as it always was.
      float[] def = Attention.inverseFrequencies(8, 10000.0);
      assertArrayEquals(
          new float[] {
            1f,
            (float) (1 / Math.pow(1e4, 0.25)),
            (float) (1 / Math.pow(1e4, 0.5)),
            (float) (1 / Math.pow(1e4, 0.75))
          },
          def);
      assertArrayEquals(
          fetch(s, Attention.ropeTables(tf, g, 8, 10000.0)[1]),
          fetch(s, Attention.ropeTables(tf, g, def)[1]));
    }
    assertThrows(
        IllegalArgumentException.class, () -> Attention.ropeTables(null, null, new float[0]));
  }
}
