package dev.rewardensemble.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

  /** Buckets: 16, then alternately 1.5x and 4/3x, capped at the positions; each holds t. */
  @Test
  void bucketsAreFewAndHoldTheLength() {
    assertEquals(16, Padding.bucket(1, 512));
    assertEquals(16, Padding.bucket(16, 512));
    assertEquals(24, Padding.bucket(17, 512));
    assertEquals(32, Padding.bucket(25, 512));
    assertEquals(48, Padding.bucket(33, 512));
    assertEquals(128, Padding.bucket(128, 512));
    assertEquals(192, Padding.bucket(129, 512));
    assertEquals(384, Padding.bucket(300, 512));
    assertEquals(512, Padding.bucket(400, 512)); // capped at the model's positions
    assertEquals(600, Padding.bucket(600, 512)); // too long: left for the graph to refuse
    assertEquals(10, Padding.bucket(9, 10));
    java.util.Set<Integer> shapes = new java.util.TreeSet<>();
    for (int t = 1; t <= 512; t++) {
      int b = Padding.bucket(t, 512);
      assertTrue(b >= t && (b <= 16 || 3 * (b - t) < b), "t " + t + " -> " + b);
      shapes.add(b);
    }
    assertEquals(List.of(16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512), List.copyOf(shapes));
    assertEquals(1, Padding.bucketRows(1));
    assertEquals(4, Padding.bucketRows(3));
    assertEquals(16, Padding.bucketRows(16));
    assertEquals(32, Padding.bucketRows(17));
    assertThrows(IllegalArgumentException.class, () -> Padding.bucket(0, 512));
  }

  /** Padding to a bucket: pad columns with mask 0 on the right, copies of row 0 below. */
  @Test
  void toBucketPadsRightAndRepeatsTheFirstRow() {
    TokenBatch b = Padding.pad(SEQS, 0); // 3 x 3
    int[][] p = Padding.toBucket(b.ids(), b.mask(), 3, 3, 4, 5, -1);
    assertArrayEquals(
        new int[] {5, 6, 7, -1, -1, 8, 0, 0, -1, -1, 9, 10, 0, -1, -1, 5, 6, 7, -1, -1}, p[0]);
    assertArrayEquals(new int[] {1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0}, p[1]);
    assertThrows(
        IllegalArgumentException.class, () -> Padding.toBucket(b.ids(), b.mask(), 3, 3, 2, 5, 0));
  }
}
