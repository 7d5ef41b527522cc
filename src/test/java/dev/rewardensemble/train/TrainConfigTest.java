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
            .swa(0.25)
            .build();
    // The one positional construction: each named setting lands in its own component.
    assertEquals(
        new TrainConfig(
            3, 7, 5, 4, 2e-4, 0.05, Schedule.Kind.CONSTANT, 0.2, 0.5, 0.3, 11, 6, 9, 4, 0.01, 0.25),
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

  @Test
  void weightAveragingWindowAndItsHeldLearningRate() {
    TrainConfig off = TrainConfig.builder().lr(1e-3).warmupRatio(0.1).build();
    Schedule sch = off.scheduleFor(10); // warmup 1 step, cosine over 9
    assertEquals(10, off.averageFrom(10));
    for (int s = 0; s < 10; s++) {
      assertEquals(sch.lr(s), off.lr(sch, s));
    }
    TrainConfig half = off.toBuilder().swa(0.5).build();
    assertEquals(5, half.averageFrom(10));
    assertEquals(5, half.averageFrom(11)); // ceil(5.5) = 6 steps averaged
    assertEquals(
        7, off.toBuilder().swa(0.3).build().averageFrom(10)); // 0.3 * 10 is 3.0000000000000004
    assertEquals(9, off.toBuilder().swa(1e-6).build().averageFrom(10)); // at least the last step
    for (int s = 0; s < 5; s++) {
      assertEquals(sch.lr(s), half.lr(sch, s));
    }
    for (int s = 5; s < 10; s++) {
      assertEquals(sch.lr(5), half.lr(sch, s)); // held at the window's first step
    }
    assertTrue(sch.lr(9) < sch.lr(5));
    // A window that begins in warmup holds the peak, not warmup's 0.
    TrainConfig all = off.toBuilder().swa(1).build();
    assertEquals(0, all.averageFrom(10));
    assertEquals(1e-3, all.lr(sch, 0), 1e-15);
    assertEquals(1e-3, all.lr(sch, 9), 1e-15);
    var e = assertThrows(IllegalArgumentException.class, () -> off.toBuilder().swa(1.5).build());
    assertTrue(e.getMessage().contains("swa must be a fraction of the steps in [0, 1], got 1.5"));
  }
}
