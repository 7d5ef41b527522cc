package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

class PpoConfigTest {

  @Test
  void defaultsAreThePapers() {
    PpoConfig c = PpoConfig.defaults();
    assertEquals(64, c.rolloutBatch());
    assertEquals(32, c.stepBatch());
    assertEquals(2, c.epochsPerRollout());
    assertEquals(1e-5, c.lr());
    assertEquals(5, c.warmupSteps());
    assertEquals(0.02, c.klCoef());
    assertEquals(KlPenalty.Estimator.K1, c.klEstimator());
    assertNull(c.adaptiveKl());
    assertFalse(c.hasAdaptiveKl());
    assertEquals(1.0, c.gamma());
    assertEquals(0.95, c.lambda());
    assertEquals(0.2, c.clipRange());
    assertEquals(0.2, c.valueClipRange());
    assertEquals(0.1, c.valueCoef());
    assertTrue(c.whitenAdvantages());
    assertEquals(0.0, c.missingEosPenalty());
    assertEquals(0.7, c.temperature());
    assertEquals(0.9, c.topP());
    assertEquals(300, c.maxNewTokens()); // AlpacaFarm's response length
    assertEquals(4, c.stepsPerRollout());
  }

  @Test
  void withersKeepTheRest() {
    PpoConfig c = PpoConfig.defaults().withSeed(7).withMaxNewTokens(16).withBatches(8, 4, 1);
    assertEquals(7, c.seed());
    assertEquals(16, c.maxNewTokens());
    assertEquals(2, c.stepsPerRollout());
    assertEquals(PpoConfig.defaults().klCoef(), c.klCoef());
    PpoConfig k = c.withKl(0.1, KlPenalty.Estimator.K3, new PpoConfig.AdaptiveKl(3.0, 500));
    assertTrue(k.hasAdaptiveKl());
    assertEquals(KlPenalty.Estimator.K3, k.klEstimator());
    assertEquals(7, k.seed());
  }

  @Test
  void builderStartsFromTheDefaultsAndSetsEveryFieldByName() {
    assertEquals(PpoConfig.defaults(), PpoConfig.builder().build());
    PpoConfig.AdaptiveKl akl = new PpoConfig.AdaptiveKl(3.0, 50);
    PpoConfig all =
        PpoConfig.builder()
            .rolloutBatch(12)
            .stepBatch(6)
            .epochsPerRollout(3)
            .lr(2e-4)
            .warmupSteps(1)
            .klCoef(0.3)
            .klEstimator(KlPenalty.Estimator.K3)
            .adaptiveKl(akl)
            .gamma(0.9)
            .lambda(0.8)
            .clipRange(0.1)
            .valueClipRange(0.4)
            .valueCoef(0.5)
            .whitenAdvantages(false)
            .missingEosPenalty(2.0)
            .temperature(1.5)
            .topP(0.6)
            .maxNewTokens(17)
            .seed(5)
            .build();
    // The one positional construction: each named setting lands in its own component.
    assertEquals(
        new PpoConfig(
            12,
            6,
            3,
            2e-4,
            1,
            0.3,
            KlPenalty.Estimator.K3,
            akl,
            0.9,
            0.8,
            0.1,
            0.4,
            0.5,
            false,
            2.0,
            1.5,
            0.6,
            17,
            5),
        all);
    assertEquals(all, all.toBuilder().build());
  }

  @Test
  void badValuesAreNamedInTheMessage() {
    PpoConfig d = PpoConfig.defaults();
    expect("step batch 24 must divide rollout batch 64", () -> d.withBatches(64, 24, 2));
    expect("rollout batch must be >= 1, got 0", () -> d.withBatches(0, 1, 1));
    expect("epochs per rollout must be >= 1, got 0", () -> d.withBatches(64, 32, 0));
    expect(
        "KL coefficient must be finite and >= 0, got -0.1",
        () -> d.withKl(-0.1, KlPenalty.Estimator.K1, null));
    expect("KL estimator must be K1 or K3, got null", () -> d.withKl(0.1, null, null));
    expect(
        "adaptive KL target must be finite and > 0, got 0.0",
        () -> new PpoConfig.AdaptiveKl(0.0, 100));
    expect("adaptive KL horizon must be >= 1, got 0", () -> new PpoConfig.AdaptiveKl(6.0, 0));
    expect("max new tokens must be >= 1, got 0", () -> d.withMaxNewTokens(0));
    expect("lambda must be in [0, 1], got 1.5", () -> PpoConfig.builder().lambda(1.5).build());
    expect(
        "clip range must be finite and > 0, got 0.0",
        () -> PpoConfig.builder().clipRange(0.0).build());
    expect("top-p must be in (0, 1], got 0.0", () -> PpoConfig.builder().topP(0.0).build());
    expect(
        "temperature must be finite and > 0, got NaN",
        () -> PpoConfig.builder().temperature(Double.NaN).build());
    expect(
        "missing-EOS penalty must be finite and >= 0 (0 = off), got -1.0",
        () -> PpoConfig.builder().missingEosPenalty(-1.0).build());
  }

  private static void expect(String message, Supplier<?> make) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, make::get);
    assertEquals(message, e.getMessage());
  }
}
