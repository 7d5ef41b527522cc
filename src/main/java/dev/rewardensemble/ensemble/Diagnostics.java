package dev.rewardensemble.ensemble;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Ensemble diagnostics on held-out preference pairs: accuracy of each member and of each
 * aggregation, the pairwise correlation of members' rewards (shared-trunk members tend to be
 * near-identical, which would make an ensemble useless), and accuracy as a function of the members'
 * disagreement about the pair.
 *
 * @param memberAccuracy {@code [K]} fraction of pairs with {@code r_k(chosen) > r_k(rejected)}
 * @param aggregationAccuracy by aggregation label (e.g. {@code lcb(0.5)})
 * @param correlation {@code [K][K]} Pearson correlation of raw member rewards over all responses
 * @param disagreementBins accuracy of the mean aggregation in quartiles of disagreement, lowest
 *     first
 */
public record Diagnostics(
    int pairs,
    double[] memberAccuracy,
    Map<String, Double> aggregationAccuracy,
    double[][] correlation,
    double meanOffDiagonalCorrelation,
    List<Bin> disagreementBins) {

  /**
   * One disagreement quartile: pairs whose members' margins {@code r_k(c) - r_k(r)} have a
   * (population) std in {@code [low, high]}.
   */
  public record Bin(double low, double high, int pairs, double accuracy) {}

  /**
   * The aggregations reported by default: mean, LCB with beta 0.1 and 0.5, min, UWO with lambda 1.
   */
  public static List<AggregationConfig> defaultAggregations() {
    return List.of(
        AggregationConfig.mean(),
        AggregationConfig.lcb(0.1),
        AggregationConfig.lcb(0.5),
        AggregationConfig.min(),
        AggregationConfig.uwo(1.0));
  }

  public static String label(AggregationConfig a) {
    return switch (a.rule()) {
      case MEAN -> "mean";
      case MIN -> "min";
      case LCB -> "lcb(" + a.beta() + ")";
      case UWO -> "uwo(" + a.lambda() + ")";
    };
  }

  /**
   * @param chosen raw member rewards of the chosen responses {@code [N][K]}
   * @param rejected raw member rewards of the rejected responses {@code [N][K]}
   * @param norm per-member standardisation applied before aggregation, if any
   */
  public static Diagnostics compute(
      List<float[]> chosen,
      List<float[]> rejected,
      Optional<Normalization> norm,
      List<AggregationConfig> aggs) {
    int n = chosen.size();
    if (n == 0 || rejected.size() != n) {
      throw new IllegalArgumentException(
          "diagnostics need the same positive number of chosen and rejected rows");
    }
    int k = chosen.get(0).length;
    double[] memberAcc = new double[k];
    Map<String, Double> aggAcc = new LinkedHashMap<>();
    double[] disagreement = new double[n];
    boolean[] meanCorrect = new boolean[n];
    for (AggregationConfig a : aggs) {
      aggAcc.put(label(a), 0.0);
    }
    for (int i = 0; i < n; i++) {
      float[] c = chosen.get(i);
      float[] r = rejected.get(i);
      float[] margins = new float[k];
      for (int m = 0; m < k; m++) {
        if (c[m] > r[m]) {
          memberAcc[m]++;
        }
        margins[m] = c[m] - r[m];
      }
      disagreement[i] = Aggregation.std(margins);
      float[] cz = norm.map(z -> z.apply(c)).orElse(c);
      float[] rz = norm.map(z -> z.apply(r)).orElse(r);
      for (AggregationConfig a : aggs) {
        if (a.apply(cz) > a.apply(rz)) {
          aggAcc.merge(label(a), 1.0, Double::sum);
        }
      }
      meanCorrect[i] = Aggregation.mean(cz) > Aggregation.mean(rz);
    }
    for (int m = 0; m < k; m++) {
      memberAcc[m] /= n;
    }
    aggAcc.replaceAll((key, v) -> v / n);

    List<float[]> all = new ArrayList<>(chosen);
    all.addAll(rejected);
    double[][] corr = correlation(all, k);
    double off = 0;
    int offCount = 0;
    for (int a = 0; a < k; a++) {
      for (int b = a + 1; b < k; b++) {
        off += corr[a][b];
        offCount++;
      }
    }

    Integer[] order = new Integer[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (x, y) -> Double.compare(disagreement[x], disagreement[y]));
    List<Bin> bins = new ArrayList<>();
    int quartiles = Math.min(4, n);
    for (int q = 0; q < quartiles; q++) {
      int from = q * n / quartiles;
      int to = (q + 1) * n / quartiles;
      int correct = 0;
      for (int j = from; j < to; j++) {
        if (meanCorrect[order[j]]) {
          correct++;
        }
      }
      bins.add(
          new Bin(
              disagreement[order[from]],
              disagreement[order[to - 1]],
              to - from,
              (double) correct / (to - from)));
    }
    return new Diagnostics(n, memberAcc, aggAcc, corr, offCount == 0 ? 1.0 : off / offCount, bins);
  }

  /** Pearson correlation matrix of the K columns of {@code rows}. */
  static double[][] correlation(List<float[]> rows, int k) {
    int n = rows.size();
    double[] mean = new double[k];
    for (float[] r : rows) {
      for (int m = 0; m < k; m++) {
        mean[m] += r[m];
      }
    }
    for (int m = 0; m < k; m++) {
      mean[m] /= n;
    }
    double[][] cov = new double[k][k];
    for (float[] r : rows) {
      for (int a = 0; a < k; a++) {
        for (int b = a; b < k; b++) {
          cov[a][b] += (r[a] - mean[a]) * (r[b] - mean[b]);
        }
      }
    }
    double[][] corr = new double[k][k];
    for (int a = 0; a < k; a++) {
      for (int b = a; b < k; b++) {
        double d = Math.sqrt(cov[a][a] * cov[b][b]);
        corr[a][b] = corr[b][a] = d == 0 ? (a == b ? 1 : 0) : cov[a][b] / d;
      }
    }
    return corr;
  }
}
