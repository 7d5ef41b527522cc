package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class TrainConfigTest {

  @Test
  void builderStartsFromTheDefaultsAndSetsEveryFieldByName() {
    assertEquals(TrainConfig.defaults(), TrainConfig.builder().build());
    TrainConfig all =
        TrainConfig.builder()
            .epochs(3)
            .steps(7)
            .batchSize(5)
            .gradAccum(4)
            .lr(2e-4)
            .weightDecay(0.05)
            .schedule(Schedule.Kind.CONSTANT)
            .warmupRatio(0.2)
            .maxGradNorm(0.5)
            .evalFraction(0.3)
            .seed(11)
            .evalEvery(6)
            .saveEvery(9)
            .keepCheckpoints(4)
            .centeringCoef(0.01)
            .build();
    // The one positional construction: each named setting lands in its own component.
    assertEquals(
        new TrainConfig(
            3, 7, 5, 4, 2e-4, 0.05, Schedule.Kind.CONSTANT, 0.2, 0.5, 0.3, 11, 6, 9, 4, 0.01),
        all);
    assertEquals(all, all.toBuilder().build());
  }

  @Test
  void loraDefaultsAreTable3AndWithersKeepTheRest() {
    TrainConfig l = TrainConfig.loraDefaults();
    assertEquals(5e-5, l.lr());
    assertEquals(Schedule.Kind.CONSTANT, l.schedule());
    assertEquals(TrainConfig.defaults(), l.withLr(3e-6, Schedule.Kind.COSINE));
    TrainConfig s = TrainConfig.defaults().withSeed(9);
    assertEquals(9, s.seed());
    assertEquals(TrainConfig.defaults(), s.withSeed(42));
  }

  @Test
  void theBuilderValidatesAsTheConstructorDoes() {
    var e =
        assertThrows(
            IllegalArgumentException.class, () -> TrainConfig.builder().gradAccum(0).build());
    assertTrue(e.getMessage().contains("grad accumulation must be >= 1, got 0"), e.getMessage());
    var f =
        assertThrows(
            IllegalArgumentException.class, () -> TrainConfig.builder().schedule(null).build());
    assertTrue(f.getMessage().contains("schedule must be cosine or constant"), f.getMessage());
  }
}
