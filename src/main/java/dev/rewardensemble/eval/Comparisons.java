package dev.rewardensemble.eval;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import org.apache.commons.math3.distribution.NormalDistribution;
import org.apache.commons.math3.distribution.TDistribution;

/**
 * One question's comparisons in the demo's answers (a family), and Holm's step-down correction over
 * them: each verdict the answers print is a 95% test of its own, and a question that makes several
 * can pass some by chance; Holm keeps the family-wise error at 5% without assuming the comparisons
 * independent (they share the single model and the worlds).
 *
 * <p>A comparison's p-value is two-sided, from Student's t with the difference's degrees of freedom
 * ({@link DemoAnalysis.Stat#df}; the normal distribution when unknown). Comparisons without a
 * standard error (one seed) are printed but are not tests and are left out of the family.
 */
final class Comparisons {
  /** Holm's family-wise error rate. */
  static final double ALPHA = 0.05;

  /**
   * One printed comparison.
   *
   * @param label what was compared, as the answers name it
   * @param stat the difference
   * @param win a win-rate difference (below {@link DemoAnalysis#MIN_WIN_DIFFERENCE} it is
   *     negligible even when kept)
   */
  record Comparison(String label, DemoAnalysis.Stat stat, boolean win) {
    /** Two-sided p-value of the difference being zero; NaN without a standard error. */
    double p() {
      double se = stat.se();
      if (Double.isNaN(se) || Double.isNaN(stat.mean())) {
        return Double.NaN;
      }
      if (se == 0) {
        return stat.mean() == 0 ? 1 : 0;
      }
      double t = Math.abs(stat.mean()) / se;
      double upper =
          stat.df() > 0
              ? 1 - new TDistribution(null, stat.df()).cumulativeProbability(t)
              : 1 - new NormalDistribution(null, 0, 1).cumulativeProbability(t);
      return Math.min(1, 2 * upper);
    }

    boolean negligible() {
      return win && Math.abs(stat.mean()) < DemoAnalysis.MIN_WIN_DIFFERENCE;
    }
  }

  private final String name;
  private final List<Comparison> all = new ArrayList<>();

  /** A family called {@code name} in the report ("Q1 (Best-of-n)"). */
  Comparisons(String name) {
    this.name = name;
  }

  String name() {
    return name;
  }

  /** Records a win-rate comparison and returns its {@link DemoAnalysis#winVerdict}. */
  String winVerdict(String label, DemoAnalysis.Stat d) {
    all.add(new Comparison(label, d, true));
    return DemoAnalysis.winVerdict(d);
  }

  /** Records a comparison of another quantity and returns its {@link DemoAnalysis#verdict}. */
  String verdict(String label, DemoAnalysis.Stat d) {
    all.add(new Comparison(label, d, false));
    return DemoAnalysis.verdict(d);
  }

  /** The comparisons that are tests (with a standard error), in the order they were printed. */
  List<Comparison> tests() {
    return all.stream().filter(c -> !Double.isNaN(c.p())).toList();
  }

  /**
   * The tests Holm's step-down procedure rejects at {@link #ALPHA}: sorted by p-value, the k-th
   * smallest (from 0) is kept while {@code p <= ALPHA / (m - k)}; the first that is not stops it.
   * In the order they were printed, and only those its own verdict resolves too (the verdicts never
   * take fewer than two standard errors, where the normal p-value would take 1.96).
   */
  List<Comparison> kept() {
    List<Comparison> tests = tests();
    List<Comparison> sorted =
        tests.stream().sorted(Comparator.comparingDouble(Comparison::p)).toList();
    int m = sorted.size();
    List<Comparison> rejected = new ArrayList<>();
    for (int k = 0; k < m; k++) {
      if (sorted.get(k).p() > ALPHA / (m - k)) {
        break;
      }
      rejected.add(sorted.get(k));
    }
    return tests.stream()
        .filter(rejected::contains)
        .filter(c -> Math.abs(c.stat().mean()) > c.stat().threshold() * c.stat().se())
        .toList();
  }

  /** {@code "Q1 (Best-of-n), 7 tests: none"} or the kept ones with their p-values. */
  String summary() {
    List<Comparison> kept = kept();
    int m = tests().size();
    StringBuilder b =
        new StringBuilder(
            String.format(Locale.ROOT, "%s, %d test%s: ", name, m, m == 1 ? "" : "s"));
    if (kept.isEmpty()) {
      return b.append(m == 0 ? "nothing to correct" : "none kept").toString();
    }
    for (int i = 0; i < kept.size(); i++) {
      Comparison c = kept.get(i);
      b.append(i == 0 ? "" : "; ")
          .append(
              String.format(
                  Locale.ROOT,
                  "%s (%+.3f, p = %s%s)",
                  c.label(),
                  c.stat().mean(),
                  pText(c.p()),
                  c.negligible() ? ", negligible" : ""));
    }
    return b.toString();
  }

  static String pText(double p) {
    return p < 0.0001 ? "<0.0001" : String.format(Locale.ROOT, "%.4f", p);
  }
}
