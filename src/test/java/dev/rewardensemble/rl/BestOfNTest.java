package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.ensemble.AggregationConfig;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class BestOfNTest {

  @Test
  void picksTheArgmaxUnderEachAggregation() {
    // Three candidates, three members: the mean prefers c0, the LCB (which punishes disagreement)
    // c1, min c1.
    float[][] members = {{3f, -1f, 4f}, {1.5f, 1.4f, 1.6f}, {0f, 0f, 0f}};
    int[] want = {0, 1, 1, 0};
    AggregationConfig[] aggs = {
      AggregationConfig.mean(),
      AggregationConfig.lcb(1.0),
      AggregationConfig.min(),
      AggregationConfig.uwo(0.01)
    };
    for (int a = 0; a < aggs.length; a++) {
      double[] s = new double[members.length];
      for (int i = 0; i < s.length; i++) {
        s[i] = aggs[a].apply(members[i]);
      }
      assertEquals(want[a], BestOfN.argmax(s), aggs[a].toString());
    }
  }

  @Test
  void exactExpectationEqualsEnumerationOfAllSubsets() {
    SplittableRandom rng = new SplittableRandom(3);
    int m = 9;
    double[] select = new double[m];
    double[] value = new double[m];
    for (int i = 0; i < m; i++) {
      select[i] = Math.floor(rng.nextDouble() * 5); // ties on purpose
      value[i] = rng.nextDouble();
    }
    for (int n = 1; n <= m; n++) {
      double sum = 0;
      int count = 0;
      for (int mask = 0; mask < (1 << m); mask++) {
        if (Integer.bitCount(mask) != n) {
          continue;
        }
        int best = -1;
        for (int i = 0; i < m; i++) {
          if ((mask & (1 << i)) != 0 && (best < 0 || select[i] > select[best])) {
            best = i;
          }
        }
        sum += value[best];
        count++;
      }
      assertEquals(sum / count, BestOfN.expected(select, value, n), 1e-12, "n = " + n);
    }
  }

  @Test
  void expectedSelectedScoreRisesWithNAndKlIsAnalytic() {
    SplittableRandom rng = new SplittableRandom(5);
    double[] s = new double[200];
    for (int i = 0; i < s.length; i++) {
      s[i] = rng.nextGaussian();
    }
    double prev = Double.NEGATIVE_INFINITY;
    for (int n : new int[] {1, 2, 4, 8, 16, 50, 100, 200}) {
      double e = BestOfN.expected(s, s, n);
      assertTrue(e > prev, "n = " + n);
      prev = e;
    }
    double mean = java.util.Arrays.stream(s).average().orElseThrow();
    assertEquals(mean, BestOfN.expected(s, s, 1), 1e-12);
    assertEquals(
        java.util.Arrays.stream(s).max().orElseThrow(), BestOfN.expected(s, s, 200), 1e-12);
    assertEquals(0.0, BestOfN.kl(1), 1e-15);
    assertEquals(Math.log(50) - 49.0 / 50, BestOfN.kl(50), 1e-15);
  }

  @Test
  void aRankingSortsOnceForEveryValueAndNAndTheSharedWeightsStayUnchanged() {
    SplittableRandom rng = new SplittableRandom(9);
    double[] select = new double[50];
    double[] value = new double[50];
    for (int i = 0; i < select.length; i++) {
      select[i] = Math.floor(rng.nextDouble() * 10); // ties: the earlier candidate wins
      value[i] = rng.nextGaussian();
    }
    int[] ranking = BestOfN.ranking(select);
    assertEquals(BestOfN.argmax(select), ranking[ranking.length - 1], "the best ranks last");
    for (int n : new int[] {1, 3, 17, 50}) {
      assertEquals(
          BestOfN.expected(select, value, n), BestOfN.expected(ranking, value, n), 0.0, "n " + n);
    }
    // rankWeights hands out a copy: changing it changes no later expectation.
    double before = BestOfN.expected(ranking, value, 3);
    java.util.Arrays.fill(BestOfN.rankWeights(50, 3), 7.0);
    assertEquals(before, BestOfN.expected(ranking, value, 3), 0.0);
    double total = java.util.Arrays.stream(BestOfN.rankWeights(50, 3)).sum();
    assertEquals(1.0, total, 1e-12, "the weights are a distribution over ranks");
  }
}
