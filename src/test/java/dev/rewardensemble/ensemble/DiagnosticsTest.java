package dev.rewardensemble.ensemble;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class DiagnosticsTest {
  static final double EPS = 1e-12;

  /**
   * Four pairs, two members. Member margins (chosen - rejected): pair 0 (2, 2), pair 1 (1, -3),
   * pair 2 (-1, -1), pair 3 (4, 0): member 0 is right on pairs 0, 1, 3; member 1 only on pair 0 (a
   * tie is wrong).
   */
  static final List<float[]> CHOSEN =
      List.of(new float[] {3, 3}, new float[] {1, -2}, new float[] {0, 0}, new float[] {5, 1});

  static final List<float[]> REJECTED =
      List.of(new float[] {1, 1}, new float[] {0, 1}, new float[] {1, 1}, new float[] {1, 1});

  @Test
  void accuraciesOfMembersAndAggregations() {
    Diagnostics d =
        Diagnostics.compute(CHOSEN, REJECTED, Optional.empty(), Diagnostics.defaultAggregations());
    assertEquals(4, d.pairs());
    assertArrayEquals(new double[] {0.75, 0.25}, d.memberAccuracy(), EPS);
    // mean of the members: chosen 3, -0.5, 0, 3 vs rejected 1, 0.5, 1, 1 -> right on pairs 0 and 3
    // lcb(0.5): chosen 3, -2, 0, 2 vs rejected 1, 0, 1, 1 -> pairs 0, 3; min: 3,-2,0,1 vs 1,0,1,1
    // -> pair 0
    // uwo(1): chosen 3, -2.75, 0, -1 vs rejected 1, 0.25, 1, 1 -> pair 0
    assertEquals(
        Map.of("mean", 0.5, "lcb(0.1)", 0.5, "lcb(0.5)", 0.5, "min", 0.25, "uwo(1.0)", 0.25),
        d.aggregationAccuracy());
    assertEquals(
        List.of("mean", "lcb(0.1)", "lcb(0.5)", "min", "uwo(1.0)"),
        List.copyOf(d.aggregationAccuracy().keySet()));
  }

  @Test
  void correlationOfMembersOverAllResponses() {
    // identical members correlate 1, opposite members -1
    List<float[]> c =
        List.of(new float[] {1, 1, -1}, new float[] {2, 2, -2}, new float[] {4, 4, -4});
    List<float[]> r =
        List.of(new float[] {0, 0, 0}, new float[] {3, 3, -3}, new float[] {1, 1, -1});
    Diagnostics d = Diagnostics.compute(c, r, Optional.empty(), List.of(AggregationConfig.mean()));
    assertEquals(1, d.correlation()[0][1], 1e-9);
    assertEquals(-1, d.correlation()[0][2], 1e-9);
    assertEquals(1, d.correlation()[2][2], 1e-9);
    assertEquals((1 - 1 - 1) / 3.0, d.meanOffDiagonalCorrelation(), 1e-9);
    // hand-computed Pearson of the example: member 0 = (3,1,0,5,1,0,1,1), member 1 =
    // (3,-2,0,1,1,1,1,1)
    Diagnostics e =
        Diagnostics.compute(CHOSEN, REJECTED, Optional.empty(), List.of(AggregationConfig.mean()));
    double[] x = {3, 1, 0, 5, 1, 0, 1, 1};
    double[] y = {3, -2, 0, 1, 1, 1, 1, 1};
    assertEquals(pearson(x, y), e.correlation()[0][1], 1e-9);
    assertEquals(e.correlation()[0][1], e.meanOffDiagonalCorrelation(), EPS);
  }

  @Test
  void accuracyByDisagreementQuartile() {
    Diagnostics d =
        Diagnostics.compute(CHOSEN, REJECTED, Optional.empty(), List.of(AggregationConfig.mean()));
    // std of the margins: pair 0 0, pair 1 2, pair 2 0, pair 3 2; the sort is stable: 0, 2, 1, 3
    List<Diagnostics.Bin> bins = d.disagreementBins();
    assertEquals(4, bins.size());
    assertEquals(new Diagnostics.Bin(0, 0, 1, 1.0), bins.get(0)); // pair 0: mean right
    assertEquals(new Diagnostics.Bin(0, 0, 1, 0.0), bins.get(1)); // pair 2: wrong
    assertEquals(new Diagnostics.Bin(2, 2, 1, 0.0), bins.get(2)); // pair 1: wrong
    assertEquals(new Diagnostics.Bin(2, 2, 1, 1.0), bins.get(3)); // pair 3: right
  }

  @Test
  void normalisationIsAppliedBeforeAggregatingButNotToMembers() {
    // member 1's scale is 100x: without normalisation it decides the mean alone
    List<float[]> c = List.of(new float[] {1, -100});
    List<float[]> r = List.of(new float[] {0, 0});
    Diagnostics raw =
        Diagnostics.compute(c, r, Optional.empty(), List.of(AggregationConfig.mean()));
    assertEquals(0.0, raw.aggregationAccuracy().get("mean"));
    Normalization z = new Normalization(new float[] {0, 0}, new float[] {0.1f, 1000}, 10);
    Diagnostics norm = Diagnostics.compute(c, r, Optional.of(z), List.of(AggregationConfig.mean()));
    assertEquals(1.0, norm.aggregationAccuracy().get("mean"));
    assertArrayEquals(raw.memberAccuracy(), norm.memberAccuracy(), EPS);
    assertEquals(1, norm.disagreementBins().size());
  }

  @Test
  void mismatchedInputsAreRejected() {
    assertThrows(
        IllegalArgumentException.class,
        () ->
            Diagnostics.compute(
                CHOSEN,
                REJECTED.subList(0, 3),
                Optional.empty(),
                Diagnostics.defaultAggregations()));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            Diagnostics.compute(
                List.of(), List.of(), Optional.empty(), Diagnostics.defaultAggregations()));
  }

  static double pearson(double[] x, double[] y) {
    double mx = 0;
    double my = 0;
    for (int i = 0; i < x.length; i++) {
      mx += x[i] / x.length;
      my += y[i] / y.length;
    }
    double sxy = 0;
    double sxx = 0;
    double syy = 0;
    for (int i = 0; i < x.length; i++) {
      sxy += (x[i] - mx) * (y[i] - my);
      sxx += (x[i] - mx) * (x[i] - mx);
      syy += (y[i] - my) * (y[i] - my);
    }
    return sxy / Math.sqrt(sxx * syy);
  }
}
