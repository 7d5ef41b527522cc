package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class GaeTest {

  /** gamma = 1, lambda = 0.95, 3 tokens, score 1 on the last one, worked out by hand. */
  @Test
  void threeTokensByHand() {
    double[] r = {0, 0, 1};
    double[] v = {0.5, 0.6, 0.7};
    Gae.Result out = Gae.compute(r, v, new double[] {1, 1, 1}, 1.0, 0.95);
    // delta2 = 1 + 0 - 0.7 = 0.3; delta1 = 0 + 0.7 - 0.6 = 0.1; delta0 = 0 + 0.6 - 0.5 = 0.1
    // A2 = 0.3; A1 = 0.1 + 0.95 * 0.3 = 0.385; A0 = 0.1 + 0.95 * 0.385 = 0.46575
    assertArrayEquals(new double[] {0.46575, 0.385, 0.3}, out.advantages(), 1e-12);
    assertArrayEquals(new double[] {0.96575, 0.985, 1.0}, out.returns(), 1e-12);
  }

  @Test
  void lambdaOneGammaOneIsMonteCarloReturnMinusValue() {
    double[] r = {0.2, -0.1, 0.05, 2.0};
    double[] v = {1.0, -0.3, 0.4, 0.9};
    Gae.Result out = Gae.compute(r, v, new double[] {1, 1, 1, 1}, 1.0, 1.0);
    double tail = 0;
    for (int t = 3; t >= 0; t--) {
      tail += r[t];
      assertEquals(tail - v[t], out.advantages()[t], 1e-12, "A[" + t + "]");
      assertEquals(tail, out.returns()[t], 1e-12, "R[" + t + "]");
    }
  }

  @Test
  void lambdaZeroIsOneStepTd() {
    double[] r = {0.2, -0.1, 0.05};
    double[] v = {1.0, -0.3, 0.4};
    double gamma = 0.9;
    Gae.Result out = Gae.compute(r, v, new double[] {1, 1, 1}, gamma, 0.0);
    assertEquals(0.2 + gamma * -0.3 - 1.0, out.advantages()[0], 1e-12);
    assertEquals(-0.1 + gamma * 0.4 + 0.3, out.advantages()[1], 1e-12);
    assertEquals(0.05 - 0.4, out.advantages()[2], 1e-12);
  }

  /** The O(L^2) definition: A[t] = sum_l (gamma lambda)^l delta[t+l] over the response tokens. */
  private static double[] naive(
      double[] r, double[] v, double[] mask, double gamma, double lambda) {
    int[] idx =
        java.util.stream.IntStream.range(0, mask.length).filter(t -> mask[t] != 0).toArray();
    int len = idx.length;
    double[] delta = new double[len];
    for (int k = 0; k < len; k++) {
      double next = k + 1 < len ? v[idx[k + 1]] : 0;
      delta[k] = r[idx[k]] + gamma * next - v[idx[k]];
    }
    double[] adv = new double[mask.length];
    for (int k = 0; k < len; k++) {
      double sum = 0;
      for (int l = 0; k + l < len; l++) {
        sum += Math.pow(gamma * lambda, l) * delta[k + l];
      }
      adv[idx[k]] = sum;
    }
    return adv;
  }

  @Test
  void matchesNaiveSumWithPaddingOnBothSides() {
    Random rnd = new Random(11);
    for (int trial = 0; trial < 20; trial++) {
      int len = 1 + rnd.nextInt(12);
      double[] r = new double[len];
      double[] v = new double[len];
      double[] mask = new double[len];
      int start = rnd.nextInt(len);
      int end = start + 1 + rnd.nextInt(len - start); // response = [start, end)
      for (int t = 0; t < len; t++) {
        r[t] = rnd.nextGaussian();
        v[t] = rnd.nextGaussian();
        mask[t] = t >= start && t < end ? 1 : 0;
      }
      double gamma = trial % 2 == 0 ? 1.0 : 0.7 + 0.3 * rnd.nextDouble();
      double lambda = rnd.nextDouble();
      Gae.Result out = Gae.compute(r, v, mask, gamma, lambda);
      double[] expected = naive(r, v, mask, gamma, lambda);
      for (int t = 0; t < len; t++) {
        assertEquals(expected[t], out.advantages()[t], 1e-12, "trial " + trial + " A[" + t + "]");
        double ret = mask[t] == 0 ? 0 : expected[t] + v[t];
        assertEquals(ret, out.returns()[t], 1e-12, "trial " + trial + " R[" + t + "]");
      }
    }
  }

  @Test
  void maskedPositionsDoNotLeakIntoTheResponse() {
    double[] mask = {0, 1, 1, 0};
    Gae.Result a =
        Gae.compute(new double[] {9, 0, 1, 9}, new double[] {9, 0.5, 0.2, 9}, mask, 1.0, 0.95);
    Gae.Result b =
        Gae.compute(new double[] {-3, 0, 1, 5}, new double[] {7, 0.5, 0.2, -2}, mask, 1.0, 0.95);
    assertArrayEquals(a.advantages(), b.advantages(), 0.0);
    assertArrayEquals(a.returns(), b.returns(), 0.0);
    assertEquals(0.0, a.advantages()[0]);
    assertEquals(0.0, a.returns()[3]);
    assertEquals(
        0.8, a.advantages()[2], 1e-12); // 1 + 0 - 0.2: nothing after the last response token
  }

  @Test
  void batchIsRowByRow() {
    double[][] r = {{0, 0, 1}, {0.5, 2, 0}};
    double[][] v = {{0.5, 0.6, 0.7}, {0.1, 0.2, 0.3}};
    double[][] m = {{1, 1, 1}, {1, 1, 0}};
    Gae.Batch out = Gae.compute(r, v, m, 1.0, 0.95);
    for (int i = 0; i < 2; i++) {
      Gae.Result row = Gae.compute(r[i], v[i], m[i], 1.0, 0.95);
      assertArrayEquals(row.advantages(), out.advantages()[i], 0.0);
      assertArrayEquals(row.returns(), out.returns()[i], 0.0);
    }
  }

  @Test
  void whitenGivesMeanZeroUnbiasedStdOneOverMaskedTokens() {
    double[][] x = {{1, 2, 3, 100}, {-1, 4, -50, 0.5}};
    double[][] m = {{1, 1, 1, 0}, {1, 1, 0, 1}};
    double[][] w = Gae.whiten(x, m, true);
    double sum = 0;
    double sq = 0;
    int count = 0;
    for (int n = 0; n < 2; n++) {
      for (int t = 0; t < 4; t++) {
        if (m[n][t] != 0) {
          sum += w[n][t];
          sq += w[n][t] * w[n][t];
          count++;
        } else {
          assertEquals(0.0, w[n][t], "masked position [" + n + "," + t + "]");
        }
      }
    }
    assertEquals(0.0, sum / count, 1e-12);
    assertEquals(1.0, sq / (count - 1), 1e-6); // eps 1e-8 inside the square root
    // by hand: masked values 1 2 3 -1 4 0.5, mean 9.5/6
    double mean = 9.5 / 6;
    double var = 0;
    for (double v : new double[] {1, 2, 3, -1, 4, 0.5}) {
      var += (v - mean) * (v - mean);
    }
    var /= 5;
    assertEquals((4 - mean) / Math.sqrt(var + 1e-8), w[1][1], 1e-12);

    double[][] kept = Gae.whiten(x, m, false);
    assertEquals(w[1][1] + mean, kept[1][1], 1e-12, "shiftMean=false adds the mean back");
    assertEquals(0.0, kept[0][3]);
  }

  @Test
  void whitenRowAndValidation() {
    double[] w = Gae.whiten(new double[] {3, 5}, new double[] {1, 1}, true);
    assertArrayEquals(new double[] {-1 / Math.sqrt(2 + 1e-8), 1 / Math.sqrt(2 + 1e-8)}, w, 1e-12);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Gae.whiten(new double[] {3, 5}, new double[] {0, 1}, true));
    assertTrue(e.getMessage().contains("got 1"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Gae.compute(new double[] {1}, new double[] {1}, new double[] {1}, 1.5, 0.95));
    assertTrue(e.getMessage().contains("gamma") && e.getMessage().contains("1.5"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                Gae.compute(new double[] {1}, new double[] {1}, new double[] {1}, 1.0, Double.NaN));
    assertTrue(e.getMessage().contains("lambda") && e.getMessage().contains("NaN"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                Gae.compute(
                    new double[][] {{1}, {1, 2}},
                    new double[][] {{1}, {1}},
                    new double[][] {{1}, {1, 1}},
                    1.0,
                    0.9));
    assertTrue(e.getMessage().contains("row 1"), e.getMessage());
  }
}
