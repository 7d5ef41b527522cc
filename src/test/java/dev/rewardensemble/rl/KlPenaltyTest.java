package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class KlPenaltyTest {

  @Test
  void k1AndK3KnownValues() {
    assertEquals(0.5, KlPenalty.k1(-1.0, -1.5), 1e-15);
    assertEquals(-0.5, KlPenalty.k1(-1.5, -1.0), 1e-15);
    // logpRef - logp = log 2: (2 - 1) - log 2
    assertEquals(1 - Math.log(2), KlPenalty.k3(-Math.log(4), -Math.log(2)), 1e-15);
    // logpRef - logp = -1: (e^-1 - 1) + 1 = e^-1
    assertEquals(Math.exp(-1), KlPenalty.k3(-1.0, -2.0), 1e-15);
    assertEquals(0.0, KlPenalty.k3(-0.7, -0.7), 0.0);
    // second order near 0: k3 ~ d^2 / 2
    assertEquals(0.5e-12, KlPenalty.k3(0, 1e-6), 1e-18);
    assertEquals(KlPenalty.k1(-1, -2), KlPenalty.Estimator.K1.of(-1, -2), 0.0);
    assertEquals(KlPenalty.k3(-1, -2), KlPenalty.Estimator.K3.of(-1, -2), 0.0);
  }

  @Test
  void k3IsNeverNegative() {
    Random rnd = new Random(5);
    for (int i = 0; i < 10000; i++) {
      double logp = -20 * rnd.nextDouble();
      double logpRef = -20 * rnd.nextDouble();
      assertTrue(KlPenalty.k3(logp, logpRef) >= 0, logp + " " + logpRef);
    }
  }

  @Test
  void rewardsPenaliseEveryResponseTokenAndAddTheScoreAtTheLast() {
    double[][] logp = {{-1.0, -2.0, -0.5, -9.0}, {-0.1, -0.2, -0.3, -0.4}};
    double[][] ref = {{-1.5, -1.0, -0.5, -1.0}, {-0.3, -0.2, -0.1, 0.0}};
    double[][] mask = {{1, 1, 1, 0}, {0, 1, 1, 1}};
    double[] scores = {2.0, -1.0};
    KlPenalty.Rewards out = KlPenalty.rewards(logp, ref, mask, scores, 0.1, KlPenalty.Estimator.K1);
    assertArrayEquals(new double[] {0.5, -1.0, 0.0, 0.0}, out.kl()[0], 1e-12);
    assertArrayEquals(new double[] {0.0, 0.0, -0.2, -0.4}, out.kl()[1], 1e-12);
    assertArrayEquals(new double[] {-0.05, 0.1, 2.0, 0.0}, out.rewards()[0], 1e-12);
    assertArrayEquals(new double[] {0.0, 0.0, 0.02, 0.04 - 1.0}, out.rewards()[1], 1e-12);

    KlPenalty.Rewards k3 = KlPenalty.rewards(logp, ref, mask, scores, 0.1, KlPenalty.Estimator.K3);
    for (int n = 0; n < 2; n++) {
      for (int t = 0; t < 4; t++) {
        double expected = mask[n][t] == 0 ? 0 : KlPenalty.k3(logp[n][t], ref[n][t]);
        assertEquals(expected, k3.kl()[n][t], 1e-15);
        assertTrue(k3.kl()[n][t] >= 0);
      }
    }
    assertEquals(-0.1 * KlPenalty.k3(-0.5, -0.5) + 2.0, k3.rewards()[0][2], 1e-12);

    assertArrayEquals(new double[] {-0.5, -0.6}, KlPenalty.sequenceKl(out.kl()), 1e-12);
    assertEquals(-0.55, KlPenalty.meanSequenceKl(out.kl()), 1e-12);
  }

  @Test
  void zeroCoefficientLeavesOnlyTheScore() {
    KlPenalty.Rewards out =
        KlPenalty.rewards(
            new double[][] {{-1, -2}},
            new double[][] {{-3, -4}},
            new double[][] {{1, 1}},
            new double[] {0.7},
            0.0,
            KlPenalty.Estimator.K1);
    assertArrayEquals(new double[] {0.0, 0.7}, out.rewards()[0], 0.0);
  }

  @Test
  void missingEosPenalty() {
    double[] scores = {1.0, 2.0, 3.0};
    double[] out = KlPenalty.applyMissingEosPenalty(scores, new boolean[] {true, false, true}, 1.5);
    assertArrayEquals(new double[] {1.0, 0.5, 3.0}, out, 0.0);
    assertArrayEquals(new double[] {1.0, 2.0, 3.0}, scores, 0.0, "input untouched");
    assertArrayEquals(scores, KlPenalty.applyMissingEosPenalty(scores, new boolean[3], 0.0), 0.0);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> KlPenalty.applyMissingEosPenalty(scores, new boolean[3], -1.0));
    assertTrue(e.getMessage().contains("-1.0"), e.getMessage());
  }

  @Test
  void validation() {
    double[][] one = {{-1.0}};
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                KlPenalty.rewards(
                    one, one, new double[][] {{0}}, new double[] {1}, 0.1, KlPenalty.Estimator.K1));
    assertTrue(e.getMessage().contains("row 0"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                KlPenalty.rewards(
                    one,
                    new double[][] {{-1, -2}},
                    one,
                    new double[] {1},
                    0.1,
                    KlPenalty.Estimator.K1));
    assertTrue(e.getMessage().contains("logpRef row 0 has length 2"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                KlPenalty.rewards(
                    one, one, one, new double[] {1}, Double.NaN, KlPenalty.Estimator.K1));
    assertTrue(e.getMessage().contains("NaN"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                KlPenalty.rewards(one, one, one, new double[] {1, 2}, 0.1, KlPenalty.Estimator.K1));
    assertTrue(e.getMessage().contains("scores has 2"), e.getMessage());
  }

  @Test
  void adaptiveControllerRaisesTheCoefficientWhenKlIsAboveTargetAndLowersItBelow() {
    KlPenalty.AdaptiveKlController up = new KlPenalty.AdaptiveKlController(0.1, 6.0, 10000);
    up.update(6.6, 64); // error = 0.1
    assertEquals(0.1 * (1 + 0.1 * 64 / 10000.0), up.coef(), 1e-15);
    assertTrue(up.coef() > 0.1);

    KlPenalty.AdaptiveKlController down = new KlPenalty.AdaptiveKlController(0.1, 6.0, 10000);
    down.update(5.4, 64); // error = -0.1
    assertEquals(0.1 * (1 - 0.1 * 64 / 10000.0), down.coef(), 1e-15);
    assertTrue(down.coef() < 0.1);

    KlPenalty.AdaptiveKlController same = new KlPenalty.AdaptiveKlController(0.1, 6.0, 10000);
    same.update(6.0, 64);
    assertEquals(0.1, same.coef(), 0.0);
  }

  @Test
  void adaptiveErrorIsClippedToPlusMinusPointTwo() {
    KlPenalty.AdaptiveKlController c = new KlPenalty.AdaptiveKlController(0.2, 1.0, 100);
    assertEquals(0.2, c.error(50.0), 0.0);
    assertEquals(-0.2, c.error(0.0), 0.0);
    assertEquals(-0.2, c.error(-3.0), 0.0);
    assertEquals(0.1, c.error(1.1), 1e-12);
    c.update(1000.0, 10);
    assertEquals(0.2 * (1 + 0.2 * 10 / 100.0), c.coef(), 1e-15);
    c.update(0.0, 10);
    assertEquals(0.2 * 1.02 * 0.98, c.coef(), 1e-15);
  }

  @Test
  void fixedControllerAndConfigChoose() {
    KlPenalty.FixedKlController f = new KlPenalty.FixedKlController(0.02);
    f.update(100.0, 64);
    assertEquals(0.02, f.coef(), 0.0);
    assertInstanceOf(KlPenalty.FixedKlController.class, PpoConfig.defaults().newKlController());
    KlPenalty.KlController adaptive =
        PpoConfig.defaults()
            .withKl(0.05, KlPenalty.Estimator.K3, PpoConfig.AdaptiveKl.TRL_DEFAULT)
            .newKlController();
    KlPenalty.AdaptiveKlController a =
        assertInstanceOf(KlPenalty.AdaptiveKlController.class, adaptive);
    assertEquals(0.05, a.coef(), 0.0);
    assertEquals(6.0, a.target(), 0.0);
    assertEquals(10000, a.horizon());
    assertThrows(
        IllegalArgumentException.class, () -> new KlPenalty.AdaptiveKlController(0.1, 0.0, 10));
    assertThrows(
        IllegalArgumentException.class, () -> new KlPenalty.AdaptiveKlController(0.1, 1.0, 0));
    assertThrows(IllegalArgumentException.class, () -> new KlPenalty.FixedKlController(-0.1));
  }
}
