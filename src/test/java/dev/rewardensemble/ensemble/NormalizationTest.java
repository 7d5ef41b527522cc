package dev.rewardensemble.ensemble;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class NormalizationTest {

  @Test
  void fitMeasuresMeanAndPopulationStdPerMember() {
    // member 0: 1, 2, 3, 4 -> mean 2.5, population std sqrt(1.25); member 1: 10, 10, 10, 30 -> 15,
    // sqrt(75)
    Normalization z =
        Normalization.fit(
            List.of(
                new float[] {1, 10},
                new float[] {2, 10},
                new float[] {3, 10},
                new float[] {4, 30}));
    assertEquals(4, z.referenceSize());
    assertArrayEquals(new float[] {2.5f, 15f}, z.mean(), 0f);
    assertArrayEquals(new float[] {(float) Math.sqrt(1.25), (float) Math.sqrt(75)}, z.std(), 1e-6f);
  }

  @Test
  void applyStandardisesEachMemberWithItsOwnScale() {
    Normalization z = new Normalization(new float[] {1, -2}, new float[] {2, 0.5f}, 7);
    assertArrayEquals(new float[] {1.5f, 4f}, z.apply(new float[] {4, 0}), 0f);
    // the fitted set itself comes out with mean 0 and std 1 per member
    List<float[]> rows = List.of(new float[] {0, 5}, new float[] {4, 7}, new float[] {2, 12});
    Normalization fit = Normalization.fit(rows);
    float[][] out = rows.stream().map(fit::apply).toArray(float[][]::new);
    for (int k = 0; k < 2; k++) {
      double mean = 0;
      double sq = 0;
      for (float[] r : out) {
        mean += r[k] / 3.0;
        sq += r[k] * r[k] / 3.0;
      }
      assertEquals(0, mean, 1e-6, "member " + k);
      assertEquals(1, sq - mean * mean, 1e-5, "member " + k);
    }
  }

  @Test
  void aConstantMemberGetsAFloorInsteadOfZeroStd() {
    Normalization z = Normalization.fit(List.of(new float[] {3}, new float[] {3}));
    assertEquals(1e-6f, z.std()[0]);
    assertArrayEquals(new float[] {0f}, z.apply(new float[] {3}), 0f);
  }

  @Test
  void badInputIsNamed() {
    assertTrue(
        assertThrows(IllegalArgumentException.class, () -> Normalization.fit(List.of()))
            .getMessage()
            .contains("at least one"));
    assertTrue(
        assertThrows(
                IllegalArgumentException.class,
                () -> new Normalization(new float[2], new float[] {1}, 1))
            .getMessage()
            .contains("2 means but 1 stds"));
    String msg =
        assertThrows(
                IllegalArgumentException.class,
                () -> new Normalization(new float[] {0, 0}, new float[] {1, 0}, 1))
            .getMessage();
    assertTrue(msg.contains("member 1") && msg.contains("std 0.0"), msg);
    assertTrue(
        assertThrows(
                IllegalArgumentException.class,
                () -> new Normalization(new float[] {Float.NaN}, new float[] {1}, 1))
            .getMessage()
            .contains("member 0"));
    Normalization z = new Normalization(new float[2], new float[] {1, 1}, 1);
    assertTrue(
        assertThrows(IllegalArgumentException.class, () -> z.apply(new float[3]))
            .getMessage()
            .contains("is for 2 members, got 3"));
  }
}
