package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ScheduleTest {

  @Test
  void warmupStepsAreCeilOfRatioLikeTheHfTrainer() {
    assertEquals(10, Schedule.cosine(1e-3, 0.1, 100).warmupSteps());
    assertEquals(1, Schedule.cosine(1e-3, 0.001, 100).warmupSteps()); // ceil(0.1)
    assertEquals(0, Schedule.cosine(1e-3, 0.0, 100).warmupSteps());
    // 100 * 0.07 == 7.000000000000001 in IEEE doubles, so Python's math.ceil gives 8 too.
    assertEquals(8, Schedule.constant(1e-3, 0.07, 100).warmupSteps());
  }

  @Test
  void warmupRampsLinearlyFromZero() {
    Schedule s = Schedule.cosine(2e-3, 0.1, 100); // 10 warmup steps
    assertEquals(0.0, s.lr(0));
    assertEquals(2e-3 * 1 / 10, s.lr(1), 1e-18);
    assertEquals(2e-3 * 5 / 10, s.lr(5), 1e-18);
    assertEquals(2e-3 * 9 / 10, s.lr(9), 1e-18);
    assertEquals(2e-3, s.lr(10), 1e-18); // end of warmup: progress 0, cos 0 = 1
    Schedule c = Schedule.constant(2e-3, 0.1, 100);
    for (int step = 0; step < 10; step++) {
      assertEquals(s.lr(step), c.lr(step), "same ramp for both kinds at step " + step);
    }
  }

  @Test
  void cosineHalfAtMidpointAndZeroAtEnd() {
    Schedule s = Schedule.cosine(1e-3, 0.1, 110); // 11 warmup steps, 99 decay steps
    int warmup = s.warmupSteps();
    assertEquals(11, warmup);
    // progress = (s - w) / (N - w): the midpoint of the 99 decay steps is at s = w + 49.5; check
    // HF's formula
    for (int step = warmup; step <= 110; step++) {
      double progress = (double) (step - warmup) / (110 - warmup);
      double expected =
          1e-3 * Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * 0.5 * 2.0 * progress)));
      assertEquals(expected, s.lr(step), 0.0, "HF formula at step " + step);
    }
    Schedule even = Schedule.cosine(1e-3, 0.0, 100);
    assertEquals(0.5e-3, even.lr(50), 1e-15); // cos(pi/2) = 0
    assertEquals(0.0, even.lr(100), 1e-18);
    assertTrue(even.lr(99) > 0 && even.lr(99) < 1e-6);
    for (int step = 1; step <= 100; step++) {
      assertTrue(even.lr(step) <= even.lr(step - 1), "monotone decay at " + step);
    }
  }

  @Test
  void constantAfterWarmup() {
    Schedule s = Schedule.constant(5e-4, 0.25, 40);
    assertEquals(10, s.warmupSteps());
    assertEquals(5e-4 * 3 / 10, s.lr(3), 1e-18);
    for (int step = 10; step <= 40; step++) {
      assertEquals(5e-4, s.lr(step), 0.0);
    }
  }

  @Test
  void noWarmupStartsAtBase() {
    assertEquals(1e-3, Schedule.constant(1e-3, 0, 5).lr(0), 0.0);
    assertEquals(1e-3, Schedule.cosine(1e-3, 0, 5).lr(0), 0.0);
    // one total step: the decay spans max(1, N - w) = 1 step
    assertEquals(0.0, Schedule.cosine(1e-3, 0, 1).lr(1), 1e-18);
  }

  @Test
  void validationNamesTheBadValue() {
    assertMessage("0.0", () -> Schedule.cosine(0.0, 0.1, 10));
    assertMessage("NaN", () -> Schedule.cosine(Double.NaN, 0.1, 10));
    assertMessage("1.0", () -> Schedule.cosine(1e-3, 1.0, 10));
    assertMessage("-0.1", () -> Schedule.cosine(1e-3, -0.1, 10));
    assertMessage("NaN", () -> Schedule.cosine(1e-3, Double.NaN, 10));
    assertMessage("0", () -> Schedule.constant(1e-3, 0.1, 0));
    assertMessage("kind", () -> new Schedule(null, 1e-3, 0.1, 10));
    Schedule s = Schedule.cosine(1e-3, 0.1, 10);
    assertMessage("-1", () -> s.lr(-1));
    assertMessage("11", () -> s.lr(11));
  }

  private static void assertMessage(String fragment, Runnable r) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::run);
    assertTrue(e.getMessage().contains(fragment), e.getMessage());
  }
}
