package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class ComparisonsTest {
  private static DemoAnalysis.Stat z(double z) {
    return new DemoAnalysis.Stat(0.05 * z, 0.05, 0); // df unknown: the normal distribution
  }

  @Test
  void pValuesAreTwoSidedFromStudentTWithTheDifferencesDegreesOfFreedom() {
    Comparisons.Comparison normal = new Comparisons.Comparison("a", z(1.959964), true);
    assertEquals(0.05, normal.p(), 1e-6);
    // the two-sided 95% t quantile for 3 df (the demo's 4 worlds) gives p = 0.05 too
    Comparisons.Comparison t3 =
        new Comparisons.Comparison("b", new DemoAnalysis.Stat(-3.182446, 1, 3), true);
    assertEquals(0.05, t3.p(), 1e-6);
    assertTrue(Double.isNaN(new Comparisons.Comparison("c", z(Double.NaN), true).p()));
    assertTrue(
        Double.isNaN(
            new Comparisons.Comparison("d", new DemoAnalysis.Stat(0.1, Double.NaN, 0), true).p()));
  }

  @Test
  void holmKeepsTheSmallestPValuesUntilTheFirstAboveItsStep() {
    Comparisons f = new Comparisons("Q1 (Best-of-n)");
    f.winVerdict("p 0.0278", z(2.2)); // passes at 5% alone, not at 0.05 / 2 in third place
    f.winVerdict("p 0.0027", z(3.0)); // 0.0027 <= 0.05 / 4
    f.winVerdict("p 0.317", z(1.0));
    f.winVerdict("p 0.0124", z(2.5)); // 0.0124 <= 0.05 / 3
    f.winVerdict("one seed", new DemoAnalysis.Stat(0.3, Double.NaN, 0)); // not a test
    assertEquals(4, f.tests().size());
    assertEquals(
        List.of("p 0.0027", "p 0.0124"),
        f.kept().stream().map(Comparisons.Comparison::label).toList(),
        "in the order printed");
    String s = f.summary();
    assertTrue(s.startsWith("Q1 (Best-of-n), 4 tests: p 0.0027 (+0.150, p = 0.0027)"), s);

    // A kept win-rate difference below the minimum effect is marked negligible.
    Comparisons tiny = new Comparisons("Q3");
    tiny.winVerdict("small", new DemoAnalysis.Stat(0.004, 0.0005, 0));
    tiny.verdict("proxy", new DemoAnalysis.Stat(0.004, 0.0005, 0));
    assertEquals(
        "Q3, 2 tests: small (+0.004, p = <0.0001, negligible); proxy (+0.004, p = <0.0001)",
        tiny.summary());
    Comparisons none = new Comparisons("Q2");
    none.winVerdict("x", z(1.5));
    assertEquals("Q2, 1 test: none kept", none.summary());
    assertEquals("Q2, 0 tests: nothing to correct", new Comparisons("Q2").summary());
  }

  @Test
  void holmIsNeverLessStrictThanEachTestAlone() {
    // Every kept test passes its own verdict; with one test Holm is the test itself.
    Comparisons one = new Comparisons("Q2");
    one.winVerdict("just", z(2.05));
    assertEquals(1, one.kept().size());
    Comparisons two = new Comparisons("Q2");
    two.winVerdict("just", z(2.05));
    two.winVerdict("far", z(1.0));
    assertEquals(0, two.kept().size(), "0.040 > 0.05 / 2");
    // p = 0.049 passes 5%, but the verdicts never take fewer than two standard errors
    Comparisons edge = new Comparisons("Q2");
    edge.winVerdict("edge", z(1.97));
    assertEquals(0, edge.kept().size());
    assertTrue(DemoAnalysis.winVerdict(z(1.97)).startsWith("within two standard errors"));
  }
}
