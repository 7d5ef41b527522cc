package dev.rewardensemble.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class PaddingTest {
  static final List<int[]> SEQS = List.of(new int[] {5, 6, 7}, new int[] {8}, new int[] {9, 10});

  @Test
  void rightPadding() {
    TokenBatch b = Padding.pad(SEQS, 0);
    assertEquals(3, b.batch());
    assertEquals(3, b.time());
    assertArrayEquals(new int[] {5, 6, 7, 8, 0, 0, 9, 10, 0}, b.ids());
    assertArrayEquals(new int[] {1, 1, 1, 1, 0, 0, 1, 1, 0}, b.mask());
    assertEquals(10, b.id(2, 1));
    assertEquals(0, b.mask(1, 1));
    assertEquals(2, b.length(2));
  }

  @Test
  void leftPadding() {
    TokenBatch b = Padding.leftPad(SEQS, -1);
    assertArrayEquals(new int[] {5, 6, 7, -1, -1, 8, -1, 9, 10}, b.ids());
    assertArrayEquals(new int[] {1, 1, 1, 0, 0, 1, 0, 1, 1}, b.mask());
    assertEquals(1, b.length(1));
  }

  @Test
  void rejectsEmptyInputAndBadShapes() {
    assertThrows(IllegalArgumentException.class, () -> Padding.pad(List.of(), 0));
    assertThrows(
        IllegalArgumentException.class,
        () -> Padding.leftPad(List.of(new int[] {1}, new int[0]), 0));
    assertThrows(
        IllegalArgumentException.class, () -> new TokenBatch(2, 2, new int[4], new int[3]));
    assertThrows(IndexOutOfBoundsException.class, () -> Padding.pad(SEQS, 0).id(3, 0));
  }
}
