package dev.rewardensemble.eval;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.rl.BestOfN;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYErrorRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.jfree.data.xy.YIntervalSeries;
import org.jfree.data.xy.YIntervalSeriesCollection;

/** The demo's PNG plots (JFreeChart, headless). */
final class DemoPlots {
  private DemoPlots() {}

  static {
    System.setProperty("java.awt.headless", "true");
  }

  /** The mean over seeds of {@code perSeed[seed][ni]}. */
  private static double mean(double[][] perSeed, int ni) {
    double s = 0;
    for (double[] v : perSeed) {
      s += v[ni];
    }
    return s / perSeed.length;
  }

  private static void save(JFreeChart chart, Path file) throws IOException {
    save(chart, file, new XYLineAndShapeRenderer(true, true));
  }

  /** Lines with error bars (the data is a {@link YIntervalSeriesCollection}). */
  private static void saveWithErrorBars(JFreeChart chart, Path file) throws IOException {
    XYErrorRenderer r = new XYErrorRenderer();
    r.setDefaultLinesVisible(true);
    r.setDrawXError(false);
    save(chart, file, r);
  }

  /** An interval series point: mean ± standard error (no bar when the error is NaN). */
  private static void add(YIntervalSeries s, double x, double mean, double se) {
    double e = Double.isNaN(se) ? 0 : se;
    s.add(x, mean, mean - e, mean + e);
  }

  private static void save(JFreeChart chart, Path file, XYLineAndShapeRenderer r)
      throws IOException {
    XYPlot plot = chart.getXYPlot();
    plot.setRenderer(r);
    plot.setBackgroundPaint(java.awt.Color.WHITE);
    plot.setDomainGridlinePaint(java.awt.Color.LIGHT_GRAY);
    plot.setRangeGridlinePaint(java.awt.Color.LIGHT_GRAY);
    if (plot.getRangeAxis() instanceof org.jfree.chart.axis.NumberAxis na) {
      na.setAutoRangeIncludesZero(false);
    }
    chart.setAntiAlias(true);
    Files.createDirectories(file.toAbsolutePath().getParent());
    Path tmp = dev.rewardensemble.io.TempPaths.newFile(file);
    try {
      ChartUtils.saveChartAsPNG(tmp.toFile(), chart, 900, 600);
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static JFreeChart chart(String title, String x, String y, XYDataset data) {
    return ChartFactory.createXYLineChart(
        title, x, y, data, PlotOrientation.VERTICAL, true, false, false);
  }

  /**
   * Figure 2a: Best-of-n win rate vs n (log axis) per method, one aggregation, with bars of ± one
   * hierarchical standard error.
   */
  static void winVsN(Path file, BestOfNResults bon, AggregationConfig agg) throws IOException {
    int[] ns = bon.ns();
    YIntervalSeriesCollection data = new YIntervalSeriesCollection();
    for (DemoMethod m : bon.methods()) {
      if (m.leverRow()) {
        continue; // the levers have their own table
      }
      YIntervalSeries s = new YIntervalSeries(m.name());
      for (int i = 0; i < ns.length; i++) {
        DemoAnalysis.Stat st = bon.stat(bon.win(m, agg, i));
        add(s, ns[i], st.mean(), st.se());
      }
      data.addSeries(s);
    }
    JFreeChart c =
        chart(
            "Best-of-n: win rate vs SFT (gold judge), " + MethodAgg.label(agg) + " aggregation",
            "n",
            "win rate",
            data);
    LogAxis axis = new LogAxis("n");
    axis.setBase(2);
    c.getXYPlot().setDomainAxis(axis);
    saveWithErrorBars(c, file);
  }

  /** Over-optimisation: gold and proxy (mean aggregation) vs the Best-of-n KL. */
  static void goldProxyVsKl(Path file, BestOfNResults bon) throws IOException {
    int[] ns = bon.ns();
    XYSeriesCollection data = new XYSeriesCollection();
    for (DemoMethod m : bon.methods()) {
      if (m.leverRow()) {
        continue; // the levers have their own table
      }
      BestOfNResults.Curves c = bon.of(m, AggregationConfig.mean());
      XYSeries g = new XYSeries(m.name() + " gold");
      XYSeries p = new XYSeries(m.name() + " proxy (std.)");
      for (int i = 0; i < ns.length; i++) {
        g.add(BestOfN.kl(ns[i]), mean(c.gold(), i));
        p.add(BestOfN.kl(ns[i]), mean(c.proxy(), i));
      }
      data.addSeries(g);
      data.addSeries(p);
    }
    save(
        chart(
            "Best-of-n: gold and proxy reward vs KL", "KL(best-of-n || SFT), nats", "reward", data),
        file);
  }

  /** Figures 3-4: LCB vs mean, win rate vs n for each ensemble and aggregation. */
  static void lcbVsMean(Path file, BestOfNResults bon) throws IOException {
    int[] ns = bon.ns();
    XYSeriesCollection data = new XYSeriesCollection();
    for (DemoMethod m : bon.methods()) {
      if (!m.ensemble() || m.leverRow()) {
        continue;
      }
      for (AggregationConfig a : DemoMethod.AGGREGATIONS) {
        XYSeries s = new XYSeries(m.with(a).toString());
        for (int i = 0; i < ns.length; i++) {
          s.add(ns[i], mean(bon.of(m, a).win(), i));
        }
        data.addSeries(s);
      }
    }
    JFreeChart c =
        chart("Best-of-n: LCB vs mean aggregation (win rate vs SFT)", "n", "win rate", data);
    LogAxis axis = new LogAxis("n");
    axis.setBase(2);
    c.getXYPlot().setDomainAxis(axis);
    save(c, file);
  }

  /** Figure 2b: PPO win rate vs iteration, with bars of ± one standard error over runs. */
  static void ppoWin(Path file, List<PpoPhase.PpoCurve> ppo) throws IOException {
    YIntervalSeriesCollection data = new YIntervalSeriesCollection();
    for (PpoPhase.PpoCurve c : ppo) {
      YIntervalSeries s = new YIntervalSeries(c.reward().toString());
      c.points().forEach(p -> add(s, p.iteration(), p.winRate(), p.winRateSe()));
      data.addSeries(s);
    }
    saveWithErrorBars(
        chart(
            "PPO: win rate vs SFT (gold judge)" + (ppo.isEmpty() ? " — PPO not run" : ""),
            "PPO iteration",
            "win rate",
            data),
        file);
  }

  /** PPO over-optimisation: gold and proxy vs KL. */
  static void ppoVsKl(Path file, List<PpoPhase.PpoCurve> ppo) throws IOException {
    XYSeriesCollection data = new XYSeriesCollection();
    for (PpoPhase.PpoCurve c : ppo) {
      XYSeries g = new XYSeries(c.reward() + " gold", false);
      XYSeries p = new XYSeries(c.reward() + " proxy", false);
      c.points()
          .forEach(
              pt -> {
                g.add(pt.kl(), pt.gold());
                p.add(pt.kl(), pt.proxy());
              });
      data.addSeries(g);
      data.addSeries(p);
    }
    save(
        chart(
            "PPO: gold and proxy reward vs KL" + (ppo.isEmpty() ? " — PPO not run" : ""),
            "KL (rollout estimate, nats)",
            "reward",
            data),
        file);
  }
}
