package dev.rewardensemble.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class SplitsTest {
  static final List<Integer> ITEMS = IntStream.range(0, 100).boxed().toList();

  @Test
  void splitIsDeterministicAndLosesNothing() {
    Split<Integer> a = Splits.split(ITEMS, 0.1, 42);
    Split<Integer> b = Splits.split(ITEMS, 0.1, 42);
    assertEquals(a, b);
    assertEquals(90, a.train().size());
    assertEquals(10, a.eval().size());
    List<Integer> all = new ArrayList<>(a.train());
    all.addAll(a.eval());
    assertEquals(100, new HashSet<>(all).size());
    assertEquals(new HashSet<>(ITEMS), new HashSet<>(all));
    // original relative order is kept within each part
    assertEquals(a.train().stream().sorted().toList(), a.train());
    assertEquals(a.eval().stream().sorted().toList(), a.eval());

    Split<Integer> c = Splits.split(ITEMS, 0.1, 43);
    assertFalse(a.eval().equals(c.eval()), "different seed, different eval set");
  }

  @Test
  void zeroFractionHasNoEvalAndSmallFractionsHaveOne() {
    Split<Integer> s = Splits.split(ITEMS, 0, 1);
    assertEquals(ITEMS, s.train());
    assertTrue(s.eval().isEmpty());
    assertEquals(1, Splits.split(List.of(1, 2, 3), 0.01, 1).eval().size());
  }

  @Test
  void fractionLeavingNoTrainingIsAnErrorNamingTheValue() {
    var e = assertThrows(IllegalArgumentException.class, () -> Splits.split(List.of(1, 2), 0.9, 1));
    assertTrue(e.getMessage().contains("0.9"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Splits.split(List.of(1), 0.5, 1));
    assertTrue(e.getMessage().contains("0.5"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Splits.split(ITEMS, 1.0, 1));
    assertTrue(e.getMessage().contains("1.0"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Splits.split(ITEMS, -0.1, 1));
    assertThrows(IllegalArgumentException.class, () -> Splits.split(ITEMS, Double.NaN, 1));
  }

  @Test
  void permutationIsAPureFunctionOfNSeedAndEpoch() {
    int[] p = Splits.permutation(1000, 7, 3);
    assertArrayEquals(p, Splits.permutation(1000, 7, 3));
    int[] sorted = p.clone();
    Arrays.sort(sorted);
    assertArrayEquals(IntStream.range(0, 1000).toArray(), sorted, "each index exactly once");
    assertFalse(Arrays.equals(p, IntStream.range(0, 1000).toArray()), "actually shuffled");
    assertFalse(Arrays.equals(p, Splits.permutation(1000, 8, 3)), "different seed");
    assertFalse(Arrays.equals(p, Splits.permutation(1000, 7, 4)), "different epoch");
    assertFalse(
        Arrays.equals(Splits.permutation(1000, 0, 1), Splits.permutation(1000, 1, 0)),
        "seed and epoch do not simply add");
    assertEquals(0, Splits.permutation(0, 7, 0).length);
    assertArrayEquals(new int[] {0}, Splits.permutation(1, 7, 0));
    assertThrows(IllegalArgumentException.class, () -> Splits.permutation(-1, 7, 0));
  }
}
