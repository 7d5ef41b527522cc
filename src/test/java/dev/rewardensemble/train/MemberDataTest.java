package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Per-member training data: partitions, resamples, and the Poisson weights of --bootstrap. */
class MemberDataTest {
  private static int[] all(int n) {
    return IntStream.range(0, n).toArray();
  }

  @Test
  void disjointPartsAreDisjointBalancedAndCoverTheSplit() {
    int n = 103;
    int k = 5;
    MemberData.Weights w = MemberData.DISJOINT.weights(n, k, 42);
    float[][] x = w.of(0, 0, all(n));
    int[] sizes = new int[k];
    for (int i = 0; i < n; i++) {
      // exactly one member sees pair i, with weight 1: parts are disjoint and their union is all
      float sum = 0;
      for (int m = 0; m < k; m++) {
        assertTrue(x[i][m] == 0f || x[i][m] == 1f);
        sum += x[i][m];
      }
      assertEquals(1f, sum, "pair " + i);
      sizes[w.memberOf(i)]++;
      assertEquals(1f, x[i][w.memberOf(i)]);
    }
    assertEquals(n, Arrays.stream(sizes).sum());
    assertTrue(
        Arrays.stream(sizes).max().getAsInt() - Arrays.stream(sizes).min().getAsInt() <= 1,
        Arrays.toString(sizes));
    // The same at every step and micro-batch (a pair's member never changes), seeded.
    assertArrayEquals(x[7], w.of(99, 1, new int[] {7})[0]);
    assertArrayEquals(
        MemberData.partition(n, k, 42), MemberData.partition(n, k, 42), "a pure function");
    assertTrue(!Arrays.equals(MemberData.partition(n, k, 42), MemberData.partition(n, k, 43)));
  }

  @Test
  void disjointNeedsAPairPerMember() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> MemberData.DISJOINT.weights(2, 3, 1));
    assertTrue(e.getMessage().contains("--member-data disjoint"), e.getMessage());
  }

  @Test
  void bootstrapResamplesDifferPerMemberAreSeededAndFixed() {
    int n = 400;
    int k = 3;
    MemberData.Weights w = MemberData.BOOTSTRAP.weights(n, k, 7);
    float[][] x = w.of(0, 0, all(n));
    Set<String> columns = new HashSet<>();
    for (int m = 0; m < k; m++) {
      int total = 0;
      int zeros = 0;
      StringBuilder col = new StringBuilder();
      for (int i = 0; i < n; i++) {
        total += (int) x[i][m];
        zeros += x[i][m] == 0 ? 1 : 0;
        col.append((int) x[i][m]).append(',');
      }
      assertEquals(n, total, "member " + m + " draws n pairs with replacement");
      // about 1/e of the split is left out of each resample
      assertTrue(zeros > 0.30 * n && zeros < 0.44 * n, "member " + m + " leaves out " + zeros);
      columns.add(col.toString());
    }
    assertEquals(k, columns.size(), "each member has its own resample");
    // Fixed for the run: later steps see the same counts; the same seed draws the same resample.
    assertArrayEquals(x[11], w.of(500, 1, new int[] {11})[0]);
    assertArrayEquals(x[11], MemberData.BOOTSTRAP.weights(n, k, 7).of(0, 0, new int[] {11})[0]);
    float[] other = MemberData.BOOTSTRAP.weights(n, k, 8).of(0, 0, all(n))[0];
    assertTrue(
        !Arrays.deepEquals(x, MemberData.BOOTSTRAP.weights(n, k, 8).of(0, 0, all(n))),
        "another seed, another resample " + Arrays.toString(other));
    // Member m's resample does not depend on K.
    float[][] x5 = MemberData.BOOTSTRAP.weights(n, 5, 7).of(0, 0, all(n));
    for (int i = 0; i < n; i++) {
      for (int m = 0; m < k; m++) {
        assertEquals(x[i][m], x5[i][m]);
      }
    }
  }

  @Test
  void poissonIsWhatBootstrapAlwaysDrewAndSharedIsNone() {
    int[] pairs = {5, 1, 9, 3};
    assertArrayEquals(
        TrainingRun.bootstrapWeights(42, 3, 1, 4, 3),
        MemberData.POISSON.weights(10, 3, 42).of(3, 1, pairs));
    assertNull(MemberData.SHARED.weights(10, 3, 42).of(0, 0, pairs));
  }

  @Test
  void namesAreTheOptionValues() {
    for (MemberData m : MemberData.values()) {
      assertEquals(m, MemberData.byName(m.id()));
    }
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> MemberData.byName("bagging"));
    assertEquals(
        "--member-data must be shared, poisson, bootstrap or disjoint, got 'bagging'",
        e.getMessage());
  }
}
