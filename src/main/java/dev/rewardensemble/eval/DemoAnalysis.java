package dev.rewardensemble.eval;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The demo's statistics over seeds, computed from the per-seed results only (no I/O, no models):
 * means and standard errors, differences paired by seed, and the answers to Q1-Q3 in words.
 */
public final class DemoAnalysis {
  private DemoAnalysis() {}

  /** Mean and standard error (sample std / sqrt(n); NaN for n < 2). */
  public record Stat(double mean, double se) {
    public static Stat of(double[] xs) {
      double m = Arrays.stream(xs).average().orElse(Double.NaN);
      if (xs.length < 2) {
        return new Stat(m, Double.NaN);
      }
      double v = 0;
      for (double x : xs) {
        v += (x - m) * (x - m);
      }
      return new Stat(m, Math.sqrt(v / (xs.length - 1) / xs.length));
    }

    /** {@code "0.512 ± 0.013"}, or just the mean when there is no standard error. */
    public String fmt() {
      return Double.isNaN(se)
          ? String.format(Locale.ROOT, "%.3f", mean)
          : String.format(Locale.ROOT, "%.3f ± %.3f", mean, se);
    }
  }

  /** What a reward is compared with, seed by seed. */
  public enum Versus {
    SINGLE("single"),
    OWN_MEMBERS("own members alone");

    private final String text;

    Versus(String text) {
      this.text = text;
    }

    @Override
    public String toString() {
      return text;
    }
  }

  /**
   * A difference paired by seed at n = {@code n}: {@code reward} minus what it is compared with.
   *
   * @param win the win-rate difference over seeds
   * @param gold the gold-score difference over seeds
   */
  public record Paired(MethodAgg reward, Versus versus, int n, Stat win, Stat gold) {}

  /** The analysis the report prints. */
  public record Analysis(List<Paired> paired, String answers) {}

  public static Analysis of(BestOfNResults bon, List<PpoPhase.PpoCurve> ppo) {
    return new Analysis(paired(bon), answers(bon, ppo));
  }

  /** {@code x[i] - y[i]} over seeds, as mean and standard error. */
  public static Stat diff(double[] x, double[] y) {
    double[] d = new double[x.length];
    for (int i = 0; i < d.length; i++) {
      d[i] = x[i] - y[i];
    }
    return Stat.of(d);
  }

  /**
   * At the largest n, every reward against the single model (mean aggregation) and every ensemble
   * against its own members used alone, paired by seed.
   */
  public static List<Paired> paired(BestOfNResults bon) {
    int last = bon.last();
    DemoMethod single = bon.single();
    AggregationConfig mean = AggregationConfig.mean();
    List<Paired> out = new ArrayList<>();
    for (DemoMethod mt : bon.methods()) {
      BestOfNResults.Members alone = bon.members().get(mt);
      for (AggregationConfig a : DemoMethod.AGGREGATIONS) {
        double[] w = bon.win(mt, a, last), g = bon.gold(mt, a, last);
        double[] ws = bon.win(single, mean, last), gs = bon.gold(single, mean, last);
        double[] wa = new double[w.length], ga = new double[w.length];
        double[] dws = new double[w.length], dgs = new double[w.length];
        for (int sd = 0; sd < w.length; sd++) {
          dws[sd] = w[sd] - ws[sd];
          dgs[sd] = g[sd] - gs[sd];
          wa[sd] = w[sd] - alone.win()[sd][last];
          ga[sd] = g[sd] - alone.gold()[sd][last];
        }
        if (mt.kind() != EnsembleKind.SINGLE) {
          out.add(
              new Paired(mt.with(a), Versus.SINGLE, bon.ns()[last], Stat.of(dws), Stat.of(dgs)));
        }
        if (mt.ensemble()) {
          out.add(
              new Paired(mt.with(a), Versus.OWN_MEMBERS, bon.ns()[last], Stat.of(wa), Stat.of(ga)));
        }
      }
    }
    return out;
  }

  /** How a paired difference reads: positive or negative only beyond two standard errors. */
  public static String verdict(Stat d) {
    if (Double.isNaN(d.se())) {
      return d.mean() > 0
          ? "positive (one seed: no standard error, so not a conclusion)"
          : "not positive (one seed: no standard error)";
    }
    if (d.mean() > 2 * d.se()) {
      return "positive by more than two standard errors";
    }
    if (d.mean() < -2 * d.se()) {
      return "negative by more than two standard errors";
    }
    return "within two standard errors of zero";
  }

  /**
   * The index of the n with the highest mean win rate of {@code m} (mean aggregation); the first on
   * ties.
   */
  public static int peak(BestOfNResults bon, DemoMethod m) {
    AggregationConfig mean = AggregationConfig.mean();
    int bi = 0;
    for (int ni = 0; ni < bon.ns().length; ni++) {
      if (Stat.of(bon.win(m, mean, ni)).mean() > Stat.of(bon.win(m, mean, bi)).mean()) {
        bi = ni;
      }
    }
    return bi;
  }

  /** The answers to Q1-Q3 in words (markdown). */
  public static String answers(BestOfNResults bon, List<PpoPhase.PpoCurve> ppo) {
    StringBuilder a = new StringBuilder();
    int last = bon.last();
    int[] ns = bon.ns();
    int nMax = ns[last];
    AggregationConfig mean = AggregationConfig.mean();
    DemoMethod single = bon.single();
    // Q1: each ensemble (mean) vs single.
    a.append(String.format(Locale.ROOT, "**Q1 (Best-of-n, n = %d).** ", nMax));
    MethodAgg best = null;
    double bestWin = Double.NEGATIVE_INFINITY;
    DemoMethod lora = null;
    for (DemoMethod mt : bon.methods()) {
      if (!mt.ensemble() || mt.leverRow()) { // lever rows: their own section
        continue;
      }
      if (mt.kind() == EnsembleKind.LORA) {
        lora = mt;
      }
      for (AggregationConfig ag : DemoMethod.AGGREGATIONS) {
        double w = Stat.of(bon.win(mt, ag, last)).mean();
        if (w > bestWin) {
          bestWin = w;
          best = mt.with(ag);
        }
      }
      Stat d = diff(bon.win(mt, mean, last), bon.win(single, mean, last));
      a.append(
          String.format(
              Locale.ROOT,
              "%s (mean) vs single: win-rate difference %s, %s. ",
              mt.name(),
              d.fmt(),
              verdict(d)));
    }
    if (lora != null) {
      Stat ctl =
          diff(bon.win(lora, mean, last), bon.win(bon.find(EnsembleKind.LORA, 1), mean, last));
      a.append(
          String.format(
              Locale.ROOT,
              "The LoRA ensemble vs its K = 1 control (same data, so the effect of ensembling alone): %s, %s. ",
              ctl.fmt(),
              verdict(ctl)));
    }
    for (DemoMethod mt : bon.methods()) {
      if (!mt.warm()) {
        continue;
      }
      DemoMethod src =
          bon.methods().stream()
              .filter(m -> m.name().equals(mt.warmSource()))
              .findFirst()
              .orElse(null);
      Stat vs = diff(bon.win(mt, mean, last), bon.win(single, mean, last));
      a.append(
          String.format(
              Locale.ROOT,
              "%s (weight average, one model's inference cost) vs single: %s, %s",
              mt.name(),
              vs.fmt(),
              verdict(vs)));
      if (src != null) {
        Stat own = diff(bon.win(mt, mean, last), bon.win(src, mean, last));
        a.append(
            String.format(
                Locale.ROOT, "; vs %s (mean): %s, %s", src.name(), own.fmt(), verdict(own)));
      }
      a.append(". ");
    }
    a.append("Peak of the win-rate curve over n (mean aggregation): ");
    boolean peakBeforeEnd = false;
    for (DemoMethod mt : bon.methods()) {
      if (mt.leverRow()) {
        continue;
      }
      int bi = peak(bon, mt);
      peakBeforeEnd |= bi < ns.length - 1;
      a.append(
          String.format(
              Locale.ROOT,
              "%s %s at n = %d; ",
              mt.name(),
              Stat.of(bon.win(mt, mean, bi)).fmt(),
              ns[bi]));
    }
    a.setLength(a.length() - 2);
    a.append(
        peakBeforeEnd
            ? ". Where the peak is below the largest n, choosing harder against the proxy lowered the gold win rate: over-optimisation.\n\n"
            : ".\n\n");
    if (!ppo.isEmpty()) {
      a.append("**Q1 (PPO).** Final win rate vs SFT: ");
      for (PpoPhase.PpoCurve c : ppo) {
        PpoPhase.PpoPoint p = c.lastPoint();
        a.append(
            String.format(Locale.ROOT, "%s %.3f (gold %.3f); ", c.reward(), p.winRate(), p.gold()));
      }
      a.append(
          ppo.get(0).seeds() > 1
              ? "means over "
                  + ppo.get(0).seeds()
                  + " PPO seeds; read differences against the standard errors in the PPO table.\n\n"
              : "one seed and few iterations, so differences are indicative only.\n\n");
    }
    a.append(
        String.format(
            Locale.ROOT,
            "**Q2.** Highest Best-of-n win rate at n = %d among the ensembles: %s (%.3f; single: %s). ",
            nMax,
            best == null ? "-" : best.toString(),
            bestWin,
            Stat.of(bon.win(single, mean, last)).fmt()));
    a.append(
        "Differences between ensembles should be read against the standard errors in the tables above.\n\n");
    a.append("**Q3.** LCB minus mean (win rate, paired by seed): ");
    for (DemoMethod mt : bon.methods()) {
      if (!mt.ensemble() || mt.leverRow()) {
        continue;
      }
      for (double beta : new double[] {0.1, 0.5}) {
        Stat d = diff(bon.win(mt, AggregationConfig.lcb(beta), last), bon.win(mt, mean, last));
        a.append(
            String.format(
                Locale.ROOT, "%s LCB %.1f: %s (%s); ", mt.name(), beta, d.fmt(), verdict(d)));
      }
    }
    a.setLength(a.length() - 2);
    a.append(
        ".\n\nA difference counts as real here only when it exceeds two standard errors over seeds; with few seeds"
            + " and one small world, treat the rest as noise.\n");
    return a.toString();
  }
}
