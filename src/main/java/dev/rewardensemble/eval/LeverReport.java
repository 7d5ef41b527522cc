package dev.rewardensemble.eval;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The report's sections on the diversity levers (issue #19 item 2: each lever row's member
 * correlation, pair accuracy and paired Best-of-n gains) and on cost (item 4: which cheap ensemble
 * reaches the independent ensemble's gain at what measured fraction of its training time, scoring
 * time and inference memory). Pure: reads the run's results and {@link DemoCost}.
 *
 * <p>Every paired gain comes from the analysis's paired rows ({@link DemoAnalysis#paired}, {@link
 * DemoAnalysis#ppoPaired}) or from the same two-stage statistic over the worlds ({@link
 * BestOfNResults#diff}, {@link DemoAnalysis#paired(double[], double[], int[])}), so a change of the
 * paired statistic changes these tables too.
 */
final class LeverReport {
  private LeverReport() {}

  /** The goal's bounds: at most this share of the independent ensemble's training time ... */
  static final double GOAL_TRAIN = 0.5;

  /** ... and of its inference memory. */
  static final double GOAL_MEMORY = 1.0 / 3;

  /**
   * A shared-trunk ensemble of K members holds one trunk and K heads against the independent
   * ensemble's K trunks and K heads, so it can never be at exactly a third: a row within 1% above
   * the bound is reported as near it, with the bytes over, and does not meet the goal.
   */
  static final double NEAR = 1.01;

  /** One method's line of the levers table. */
  record LeverLine(
      DemoMethod method,
      DemoMethod base,
      double correlation,
      DemoAnalysis.Stat pairAccuracy,
      DemoAnalysis.Stat win,
      DemoAnalysis.Stat vsSingle,
      DemoAnalysis.Stat vsOwnMembers,
      DemoAnalysis.Stat vsBase) {}

  /**
   * One method's line of the cost table; fractions are of the independent ensemble's (NaN without
   * one).
   *
   * @param vsSingle paired Best-of-n win-rate gain over the single model at the largest n (mean)
   * @param vsIndependent paired difference to the independent ensemble at the largest n (mean)
   * @param ppoVsSingle final PPO win rate minus the single model's, paired by run (mean
   *     aggregation; null: not run in PPO)
   * @param ppoVsIndependent the same against the independent ensemble's runs (null: either not run)
   * @param ppoGainReached a candidate run in PPO whose mean PPO gain is at least the independent
   *     ensemble's
   */
  record CostLine(
      DemoMethod method,
      DemoCost.Cost cost,
      double trainFraction,
      double scoreFraction,
      double memoryFraction,
      DemoAnalysis.Stat vsSingle,
      DemoAnalysis.Stat vsIndependent,
      DemoAnalysis.Stat ppoVsSingle,
      DemoAnalysis.Stat ppoVsIndependent,
      boolean candidate,
      boolean gainReached,
      boolean ppoGainReached,
      boolean trainOk,
      boolean memoryOk,
      long bytesOverBound) {
    /**
     * Issue #19's goal: the independent ensemble's Best-of-n gain, and its PPO gain when the row
     * ran in PPO (a row not run in PPO is judged on Best-of-n alone, and the statement says so),
     * within both cost bounds.
     */
    boolean meetsGoal() {
      return candidate && gainReached && ppoGoalOk() && trainOk && memoryOk;
    }

    /**
     * The goal's PPO part: the PPO gain reached, or no PPO comparison with the independent ensemble
     * (either not run in PPO), when the row is judged on Best-of-n alone.
     */
    boolean ppoGoalOk() {
      return ppoVsIndependent == null || ppoGainReached;
    }

    /** The row ran in PPO (with the mean aggregation). */
    boolean ranPpo() {
      return ppoVsSingle != null;
    }

    /** Within 1% above the memory bound (see {@link #NEAR}). */
    boolean memoryNear() {
      return candidate && !memoryOk && memoryFraction <= GOAL_MEMORY * NEAR;
    }
  }

  private static DemoAnalysis.Stat paired(DemoReport r, DemoMethod m, DemoAnalysis.Versus versus) {
    for (DemoAnalysis.Paired p : r.analysis().paired()) {
      if (p.reward().method().equals(m)
          && p.versus() == versus
          && p.reward().agg().equals(AggregationConfig.mean())) {
        return p.win();
      }
    }
    return null;
  }

  private static DemoMethod byName(BestOfNResults bon, String name) {
    return bon.methods().stream()
        .filter(m -> m.name().equals(name) && m.lever() == null)
        .findFirst()
        .orElse(null);
  }

  /** The independent ensemble of the run (K = the settings' k), or null. */
  static DemoMethod independent(DemoReport r) {
    return byName(r.bon(), "independent-" + r.s().k());
  }

  /** The levers table: the independent, linear and LoRA rows, then every lever row. */
  static List<LeverLine> leverLines(DemoReport r) {
    BestOfNResults bon = r.bon();
    int last = bon.last();
    AggregationConfig mean = AggregationConfig.mean();
    List<LeverLine> out = new ArrayList<>();
    for (DemoMethod m : bon.methods()) {
      boolean reference =
          m.lever() == null
              && m.ensemble()
              && (m.kind() == EnsembleKind.INDEPENDENT
                  || m.kind() == EnsembleKind.LINEAR
                  || m.kind() == EnsembleKind.LORA);
      if (!reference && m.lever() == null) {
        continue;
      }
      DemoMethod base = m.lever() == null ? null : byName(bon, m.lever().baseName(r.s().k()));
      out.add(
          new LeverLine(
              m,
              base,
              r.correlation(m),
              DemoAnalysis.Stat.of(bon.of(m, mean).pairAccuracy()),
              DemoAnalysis.Stat.of(bon.win(m, mean, last)),
              paired(r, m, DemoAnalysis.Versus.SINGLE),
              paired(r, m, DemoAnalysis.Versus.OWN_MEMBERS),
              base == null
                  ? null
                  : bon.diff(bon.win(m, mean, last), bon.win(base, mean, last)).stat()));
    }
    return out;
  }

  /**
   * A method that can meet the goal: a shared-trunk ensemble (linear or LoRA, K >= 2) or the WARM
   * average of one.
   */
  static boolean candidate(DemoMethod m) {
    boolean shared = m.kind() == EnsembleKind.LINEAR || m.kind() == EnsembleKind.LORA;
    return shared && (m.ensemble() || m.warm());
  }

  /** The cost table: every method with a measured cost. */
  static List<CostLine> costLines(DemoReport r) {
    BestOfNResults bon = r.bon();
    int last = bon.last();
    AggregationConfig mean = AggregationConfig.mean();
    DemoMethod ind = independent(r);
    DemoCost.Cost ic = ind == null ? null : r.cost().of(ind);
    DemoAnalysis.Stat indGain = ind == null ? null : paired(r, ind, DemoAnalysis.Versus.SINGLE);
    DemoAnalysis.Stat indPpo = ind == null ? null : ppoVsSingle(r, ind);
    List<CostLine> out = new ArrayList<>();
    for (DemoMethod m : bon.methods()) {
      DemoCost.Cost c = r.cost().of(m);
      if (c == null) {
        continue;
      }
      DemoAnalysis.Stat vsSingle = paired(r, m, DemoAnalysis.Versus.SINGLE);
      DemoAnalysis.Stat vsInd =
          ind == null || m.equals(ind)
              ? null
              : bon.diff(bon.win(m, mean, last), bon.win(ind, mean, last)).stat();
      double tf = ic == null ? Double.NaN : c.trainSeconds() / ic.trainSeconds();
      double sf = ic == null ? Double.NaN : c.scoreSeconds() / ic.scoreSeconds();
      double mf = ic == null ? Double.NaN : (double) c.variableBytes() / ic.variableBytes();
      boolean cand = ind != null && candidate(m);
      boolean gain = cand && vsSingle != null && vsSingle.mean() >= indGain.mean();
      DemoAnalysis.Stat ppo = ppoVsSingle(r, m);
      DemoAnalysis.Stat ppoInd = m.equals(ind) ? null : ppoPaired(r, m, ind);
      boolean ppoGain = cand && ppo != null && indPpo != null && ppo.mean() >= indPpo.mean();
      out.add(
          new CostLine(
              m,
              c,
              tf,
              sf,
              mf,
              vsSingle,
              vsInd,
              ppo,
              ppoInd,
              cand,
              gain,
              ppoGain,
              cand && tf <= GOAL_TRAIN,
              cand && mf <= GOAL_MEMORY,
              ic == null
                  ? 0
                  : (long) Math.ceil(c.variableBytes() - ic.variableBytes() * GOAL_MEMORY)));
    }
    return out;
  }

  /**
   * {@code m}'s final PPO win rate minus the single model's, paired by run (mean aggregation): the
   * analysis's row of the PPO paired table; null for the single model and for rows not run in PPO.
   */
  private static DemoAnalysis.Stat ppoVsSingle(DemoReport r, DemoMethod m) {
    for (DemoAnalysis.PpoPaired p : r.analysis().ppoPaired()) {
      if (p.at().equals("final")
          && p.reward().method().equals(m)
          && p.reward().agg().equals(AggregationConfig.mean())) {
        return p.win().stat();
      }
    }
    return null;
  }

  /**
   * {@code m}'s final PPO win rate minus {@code other}'s, paired by run (same world, reward-model
   * seed and PPO seed; mean aggregation), or null if either did not run in PPO.
   */
  private static DemoAnalysis.Stat ppoPaired(DemoReport r, DemoMethod m, DemoMethod other) {
    PpoPhase.PpoRuns mine = ppoRuns(r, m), theirs = ppoRuns(r, other);
    if (mine == null || theirs == null) {
      return null;
    }
    int last = mine.points() - 1;
    // the same floor as the differences to the single model ({@link DemoAnalysis.PpoPaired})
    return DemoAnalysis.floorSe(
            DemoAnalysis.paired(mine.win(last), theirs.win(last), mine.world()),
            DemoAnalysis.ppoSeFloor(r.analysis().ppoPaired(), "final", false))
        .stat();
  }

  private static PpoPhase.PpoRuns ppoRuns(DemoReport r, DemoMethod m) {
    if (m == null) {
      return null;
    }
    for (PpoPhase.PpoRuns runs : r.ppo().rewards()) {
      if (runs.reward().method().equals(m)
          && runs.reward().agg().equals(AggregationConfig.mean())) {
        return runs;
      }
    }
    return null;
  }

  private static String f3(double x) {
    return Double.isNaN(x) ? "—" : String.format(Locale.ROOT, "%.3f", x);
  }

  /**
   * {@code "<gain vs single> (<gain> vs <independent> paired)<joiner><fractions of training time,
   * scoring time and inference memory>"}: one statement of the answer's sentences.
   */
  private static String gainAndCost(CostLine l, String independent, String joiner) {
    return String.format(
        Locale.ROOT,
        "%s (%s vs %s paired)%s%s of the training time, %s of the scoring time and %s of the"
            + " inference memory",
        l.vsSingle().fmt(),
        fmt(l.vsIndependent()),
        independent,
        joiner,
        f2(l.trainFraction()),
        f2(l.scoreFraction()),
        f2(l.memoryFraction()));
  }

  private static String f2(double x) {
    return Double.isNaN(x) ? "—" : String.format(Locale.ROOT, "%.2f", x);
  }

  private static String fmt(DemoAnalysis.Stat s) {
    return s == null ? "—" : s.fmt();
  }

  private static String mib(long bytes) {
    return String.format(Locale.ROOT, "%.2f", bytes / (1024.0 * 1024.0));
  }

  /** The settings' bullet on the lever rows. */
  static String methodsNote(DemoSettings s) {
    if (s.levers().isEmpty()) {
      return "- lever rows: none (`--levers none`)\n";
    }
    StringBuilder b = new StringBuilder("- lever rows (issue #19's diversity levers, `--levers ");
    b.append(String.join(",", s.levers().stream().map(DemoLever::id).toList()));
    b.append(
        "`): each is its base row (`linear-K` or `lora-K`, same seed, data and settings) with one"
            + " change; the rows that change LoRA phase 2 only start from their base's phase 1 of"
            + " the same seed (copied, then trained with resume), so they differ from `lora-K` in"
            + " phase 2 alone, and their training time is charged that phase 1's measured"
            + " seconds:");
    for (DemoLever l : s.levers()) {
      b.append(" `")
          .append(l.rowName(s.k()))
          .append("` (")
          .append(l.describe(s.k()))
          .append(l.reusesPhase1() ? "; phase 1 of " + l.baseName(s.k()) : "")
          .append(");");
    }
    b.setLength(b.length() - 1);
    if (s.ppoIterations() == 0 || s.ppoLevers().isEmpty()) {
      b.append(". Lever rows are not run in PPO\n");
    } else if (s.ppoLevers().size() == s.levers().size()) {
      b.append(". Every lever row also runs in PPO (mean aggregation)\n");
    } else {
      b.append(". Also run in PPO (mean aggregation): ")
          .append(
              s.ppoLevers().stream()
                  .map(l -> "`" + l.rowName(s.k()) + "`")
                  .collect(Collectors.joining(", ")))
          .append("; the other lever rows are not\n");
    }
    return b.toString();
  }

  /** The markdown section on the lever rows (empty without lever rows). */
  static String levers(DemoReport r) {
    if (r.s().levers().isEmpty()) {
      return "";
    }
    int nMax = r.bon().ns()[r.bon().last()];
    StringBuilder md = new StringBuilder("\n## Diversity levers (issue #19)\n\n");
    md.append(
        String.format(
            Locale.ROOT,
            "Each lever row is its base row with one change (see Settings). Mean aggregation; win"
                + " rate vs SFT at n = %d; gains are win-rate differences paired by seed (the"
                + " paired table above), against the single model, against the row's own members"
                + " used alone, and against its base row; the last column is the final PPO win rate"
                + " minus the single model's, paired by run (rows run in PPO).%n%n",
            nMax));
    md.append(
        "| method | lever | K | phase 1 | member correlation | pair accuracy | win rate | vs single"
            + " | vs own members alone | vs base | PPO vs single (final) |\n"
            + "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (LeverLine l : leverLines(r)) {
      DemoMethod m = l.method();
      String phase1 =
          m.kind() != EnsembleKind.LORA
              ? "—"
              : m.lever() != null && m.lever().reusesPhase1()
                  ? "reused (" + m.lever().baseName(r.s().k()) + ")"
                  : "own";
      md.append(
          String.format(
              Locale.ROOT,
              "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |%n",
              m.name(),
              m.lever() == null ? "— (reference)" : m.lever().describe(r.s().k()),
              m.k(),
              phase1,
              f3(l.correlation()),
              l.pairAccuracy().fmt(),
              l.win().fmt(),
              fmt(l.vsSingle()),
              fmt(l.vsOwnMembers()),
              l.base() == null ? "—" : fmt(l.vsBase()) + " (" + l.base().name() + ")",
              ppoCell(r, m, ppoVsSingle(r, m))));
    }
    Verdicts v = verdicts(r);
    if (!v.text().isEmpty()) {
      md.append("\nThe lever rows' gains, each against its t threshold: ")
          .append(v.text())
          .append(
              ". With Holm's correction over the lever rows' comparisons (family-wise error 5%): ")
          .append(v.family().summary())
          .append(".\n");
    }
    return md.toString();
  }

  /** The lever rows' gains with their verdicts in words, and the same comparisons as a family. */
  private record Verdicts(String text, Comparisons family) {}

  /**
   * The lever rows' paired Best-of-n gains (vs single, vs own members alone, vs base) with their
   * verdicts (empty text when the run has no lever row), each recorded in the returned family.
   */
  private static Verdicts verdicts(DemoReport r) {
    Comparisons family = new Comparisons("Levers (Best-of-n)");
    List<String> parts = new ArrayList<>();
    for (LeverLine l : leverLines(r)) {
      DemoMethod m = l.method();
      if (m.lever() == null) {
        continue;
      }
      List<String> vs = new ArrayList<>();
      verdict(vs, family, m, "single", l.vsSingle());
      verdict(vs, family, m, "own members", l.vsOwnMembers());
      if (l.base() != null) {
        verdict(vs, family, m, l.base().name(), l.vsBase());
      }
      if (!vs.isEmpty()) {
        parts.add("`" + m.name() + "` " + String.join("; ", vs));
      }
    }
    return new Verdicts(String.join(". ", parts), family);
  }

  /** Adds {@code "vs <versus> <d>, <verdict>"} to {@code out} and {@code d} to {@code family}. */
  private static void verdict(
      List<String> out, Comparisons family, DemoMethod m, String versus, DemoAnalysis.Stat d) {
    if (d != null) {
      out.add(
          "vs " + versus + " " + d.fmt() + ", " + family.winVerdict(m.name() + " vs " + versus, d));
    }
  }

  /** The lever rows' comparisons as a Holm family, or null when the run has no lever row. */
  static Comparisons family(DemoReport r) {
    if (r.s().levers().isEmpty()) {
      return null;
    }
    return verdicts(r).family();
  }

  /** The markdown section on cost and the goal (empty when nothing was measured). */
  static String cost(DemoReport r) {
    List<CostLine> lines = costLines(r);
    if (lines.isEmpty()) {
      return "";
    }
    DemoMethod ind = independent(r);
    int nMax = r.bon().ns()[r.bon().last()];
    StringBuilder md = new StringBuilder("\n## Cost (measured)\n\n");
    md.append(
        "Measured in this run, summed over seeds: training = wall time of the method's own"
            + " `RewardTraining.train` calls (data reading, normalisation and diagnostics included)"
            + " plus the measured seconds of work it reuses (a lever row's borrowed LoRA phase 1;"
            + " a WARM model's source ensemble, its own part being the merge); scoring = wall time"
            + " of `RewardModel.score` on the whole Best-of-n pool (loading apart); inference"
            + " memory = bytes of the variables of the scoring model actually loaded"
            + " (`RewardModel.variableBytes`, float32 = 4 bytes). Fractions are of "
            + (ind == null ? "the independent ensemble's (not run)" : ind.name() + "'s")
            + ". Timings are wall times on a shared machine: read the fractions, which were"
            + " measured side by side, seed by seed, in one process.\n\n");
    md.append(
        String.format(
            Locale.ROOT,
            "| method | training s | × ind. | scoring s | × ind. | inference MiB | × ind. |"
                + " Best-of-n gain vs single (n = %d) | vs %s | PPO gain vs single (final) | vs"
                + " %s | goal |%n|---|---|---|---|---|---|---|---|---|---|---|---|%n",
            nMax,
            ind == null ? "independent" : ind.name(),
            ind == null ? "independent" : ind.name()));
    for (CostLine l : lines) {
      DemoCost.Cost c = l.cost();
      md.append(
          String.format(
              Locale.ROOT,
              "| %s | %.1f | %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %s |%n",
              l.method().name(),
              c.trainSeconds(),
              f2(l.trainFraction()),
              c.scoreSeconds(),
              f2(l.scoreFraction()),
              mib(c.variableBytes()),
              f2(l.memoryFraction()),
              fmt(l.vsSingle()),
              fmt(l.vsIndependent()),
              ppoCell(r, l.method(), l.ppoVsSingle()),
              fmt(l.ppoVsIndependent()),
              goal(l)));
    }
    md.append("\n").append(statement(r, lines)).append("\n");
    return md.toString();
  }

  /**
   * A PPO gain's cell ({@code ppoVsSingle}: {@code m}'s final gain over the single model, null when
   * not run): the paired gain, "—" for the single model itself or without PPO, or "not run".
   */
  private static String ppoCell(DemoReport r, DemoMethod m, DemoAnalysis.Stat ppoVsSingle) {
    if (ppoVsSingle != null) {
      return ppoVsSingle.fmt();
    }
    return m.kind() == EnsembleKind.SINGLE || r.ppo().rewards().isEmpty() ? "—" : "not run";
  }

  private static String goal(CostLine l) {
    if (!l.candidate()) {
      return "—";
    }
    return (l.gainReached() ? "gain ✓" : "gain ✗")
        + ", "
        + (!l.ranPpo() ? "PPO not run" : l.ppoGainReached() ? "PPO gain ✓" : "PPO gain ✗")
        + ", "
        + (l.trainOk() ? "train ✓" : "train ✗")
        + ", "
        + (l.memoryOk()
            ? "memory ✓"
            : l.memoryNear()
                ? String.format(Locale.ROOT, "memory ≈ (%.3f)", l.memoryFraction())
                : "memory ✗");
  }

  /** The cost statement in words: who reaches the independent ensemble's gain, at what cost. */
  static String statement(DemoReport r, List<CostLine> lines) {
    DemoMethod ind = independent(r);
    if (ind == null) {
      return "**Cost statement.** No independent ensemble ran, so there is nothing to compare with.\n";
    }
    CostLine il = lines.stream().filter(l -> l.method().equals(ind)).findFirst().orElse(null);
    DemoAnalysis.Stat ig = il == null ? null : il.vsSingle();
    if (il == null || ig == null) {
      return "**Cost statement.** The independent ensemble's cost or gain was not measured.\n";
    }
    int nMax = r.bon().ns()[r.bon().last()];
    StringBuilder a = new StringBuilder("**Cost statement.** ");
    a.append(
        String.format(
            Locale.ROOT,
            "%s gains %s win rate over the single model at n = %d (Best-of-n, mean aggregation,"
                + " paired by seed) for %.1f s of training, %.1f s of scoring and %s MiB of"
                + " inference memory. ",
            ind.name(),
            ig.fmt(),
            nMax,
            il.cost().trainSeconds(),
            il.cost().scoreSeconds(),
            mib(il.cost().variableBytes())));
    List<CostLine> reach = lines.stream().filter(l -> l.candidate() && l.gainReached()).toList();
    if (reach.isEmpty()) {
      CostLine best = null;
      for (CostLine l : lines) {
        if (l.candidate()
            && l.vsSingle() != null
            && (best == null || l.vsSingle().mean() > best.vsSingle().mean())) {
          best = l;
        }
      }
      a.append("No shared-trunk ensemble reaches that gain");
      if (best != null) {
        a.append("; the closest is ")
            .append(best.method().name())
            .append(" at ")
            .append(gainAndCost(best, ind.name(), ", for "));
      }
      a.append(". ");
    } else {
      a.append("Shared-trunk ensembles whose mean gain is at least that: ");
      for (CostLine l : reach) {
        a.append(l.method().name())
            .append(' ')
            .append(gainAndCost(l, ind.name(), " at "))
            .append("; ");
      }
      a.setLength(a.length() - 2);
      a.append(
          ". A mean at least as high is not a resolved difference: read the paired difference to "
              + ind.name()
              + " against its standard error. ");
    }
    List<CostLine> goal = lines.stream().filter(CostLine::meetsGoal).toList();
    a.append(
        String.format(
            Locale.ROOT,
            "**Goal** (issue #19: a shared-trunk ensemble with a paired gain over the single model"
                + " at n = %d, and in PPO where it ran, at least %s's, at no more than %.0f%% of its"
                + " training time and %.0f%% of its inference memory): ",
            nMax,
            ind.name(),
            100 * GOAL_TRAIN,
            100 * GOAL_MEMORY));
    if (goal.isEmpty()) {
      long cheap = lines.stream().filter(l -> l.candidate() && l.trainOk() && l.memoryOk()).count();
      a.append(
          String.format(
              Locale.ROOT,
              "not met in this run: %d shared-trunk row(s) are within both cost bounds, %d reach"
                  + " the Best-of-n gain, none meets the whole goal.",
              cheap,
              reach.size()));
      List<CostLine> near =
          lines.stream()
              .filter(l -> l.gainReached() && l.ppoGoalOk() && l.trainOk() && l.memoryNear())
              .toList();
      if (!near.isEmpty()) {
        a.append(" Near it: ");
        for (CostLine l : near) {
          a.append(
              String.format(
                  Locale.ROOT,
                  "%s reaches the gain (%s; %s vs %s paired) at %s of the training time with"
                      + " %.3f of the inference memory, %d bytes over a third (its %d heads"
                      + " against one trunk); ",
                  l.method().name(),
                  l.vsSingle().fmt(),
                  fmt(l.vsIndependent()),
                  ind.name(),
                  f2(l.trainFraction()),
                  l.memoryFraction(),
                  l.bytesOverBound(),
                  l.method().k()));
          DemoLever lever = l.method().lever();
          DemoMethod base = lever == null ? null : byName(r.bon(), lever.baseName(r.s().k()));
          CostLine bl =
              base == null
                  ? null
                  : lines.stream().filter(x -> x.method().equals(base)).findFirst().orElse(null);
          if (bl != null && !bl.gainReached()) {
            a.setLength(a.length() - 2);
            a.append(
                String.format(
                    Locale.ROOT,
                    ", where its base %s does not (%s): the lever (%s) made that difference; ",
                    base.name(),
                    fmt(bl.vsSingle()),
                    lever.describe(r.s().k())));
          }
        }
        a.setLength(a.length() - 2);
        a.append(".");
      }
    } else {
      a.append("met by ");
      for (CostLine l : goal) {
        a.append(l.method().name());
        if (!l.ranPpo() && !r.ppo().rewards().isEmpty()) {
          a.append(" (on Best-of-n alone: not run in PPO)");
        }
        DemoLever lever = l.method().lever();
        if (lever != null) {
          DemoMethod base = byName(r.bon(), lever.baseName(r.s().k()));
          CostLine bl =
              base == null
                  ? null
                  : lines.stream().filter(x -> x.method().equals(base)).findFirst().orElse(null);
          if (bl != null && !bl.gainReached()) {
            a.append(
                String.format(
                    Locale.ROOT,
                    " (the lever made the difference: %s, whose base %s gains %s)",
                    lever.describe(r.s().k()),
                    base.name(),
                    fmt(bl.vsSingle())));
          } else if (bl != null) {
            a.append(" (its base " + base.name() + " meets the gain bound too)");
          }
        }
        a.append("; ");
      }
      a.setLength(a.length() - 2);
      a.append(".");
    }
    a.append(' ').append(ppoStatement(r, lines, il, ind));
    return a.append("\n").toString();
  }

  /**
   * The statement's PPO part: the independent ensemble's PPO gain over the single model and each
   * shared-trunk ensemble's, paired by run, and which of them reach it at what cost.
   */
  private static String ppoStatement(
      DemoReport r, List<CostLine> lines, CostLine il, DemoMethod ind) {
    if (r.ppo().rewards().isEmpty()) {
      return "PPO was not run, so the statement covers Best-of-n only.";
    }
    if (!il.ranPpo()) {
      return ind.name() + " was not run in PPO, so the goal is judged on Best-of-n alone.";
    }
    StringBuilder a =
        new StringBuilder(
            String.format(
                Locale.ROOT,
                "**PPO** (final evaluation, mean aggregation, paired by run): %s gains %s win rate"
                    + " over the single model",
                ind.name(),
                il.ppoVsSingle().fmt()));
    List<CostLine> ran = lines.stream().filter(l -> l.candidate() && l.ranPpo()).toList();
    if (ran.isEmpty()) {
      a.append("; no shared-trunk ensemble was run in PPO.");
    } else {
      a.append("; the shared-trunk ensembles run in PPO: ")
          .append(
              ran.stream()
                  .map(
                      l ->
                          String.format(
                              Locale.ROOT,
                              "%s %s (%s vs %s paired)",
                              l.method().name(),
                              l.ppoVsSingle().fmt(),
                              fmt(l.ppoVsIndependent()),
                              ind.name()))
                  .collect(Collectors.joining(", ")));
      List<CostLine> reach = ran.stream().filter(CostLine::ppoGainReached).toList();
      if (reach.isEmpty()) {
        a.append(". None reaches ").append(ind.name()).append("'s mean PPO gain.");
      } else {
        a.append(". Reaching ")
            .append(ind.name())
            .append("'s mean PPO gain: ")
            .append(
                reach.stream()
                    .map(
                        l ->
                            String.format(
                                Locale.ROOT,
                                "%s at %s of its training time and %s of its inference memory",
                                l.method().name(),
                                f2(l.trainFraction()),
                                f2(l.memoryFraction())))
                    .collect(Collectors.joining(", ")));
        a.append(
            " (a mean at least as high, not a resolved difference: read the paired difference to "
                + ind.name()
                + ").");
      }
    }
    List<String> notRun =
        lines.stream()
            .filter(l -> l.candidate() && !l.ranPpo())
            .map(l -> l.method().name())
            .toList();
    if (!notRun.isEmpty()) {
      a.append(" Not run in PPO, so judged on Best-of-n alone: ")
          .append(String.join(", ", notRun))
          .append('.');
    }
    return a.toString();
  }

  static String leversCsv(DemoReport r) {
    StringBuilder csv =
        new StringBuilder(
            "method,lever,k,base,member_correlation,pair_accuracy_mean,pair_accuracy_se,win_mean,"
                + "win_se,vs_single_mean,vs_single_se,vs_own_members_mean,vs_own_members_se,"
                + "vs_base_mean,vs_base_se\n");
    for (LeverLine l : leverLines(r)) {
      csv.append(
          String.format(
              Locale.ROOT,
              "%s,%s,%d,%s,%.6f,%.6f,%.6f,%.6f,%.6f,%s,%s,%s%n",
              l.method().name(),
              l.method().lever() == null ? "" : l.method().lever().id(),
              l.method().k(),
              l.base() == null ? "" : l.base().name(),
              l.correlation(),
              l.pairAccuracy().mean(),
              l.pairAccuracy().se(),
              l.win().mean(),
              l.win().se(),
              pair(l.vsSingle()),
              pair(l.vsOwnMembers()),
              pair(l.vsBase())));
    }
    return csv.toString();
  }

  private static String pair(DemoAnalysis.Stat s) {
    return s == null ? "NaN,NaN" : String.format(Locale.ROOT, "%.6f,%.6f", s.mean(), s.se());
  }

  static String costCsv(DemoReport r) {
    StringBuilder csv =
        new StringBuilder(
            "method,seeds,train_seconds,own_train_seconds,reused_train_seconds,phase1_seconds,"
                + "load_seconds,score_seconds,variable_bytes,train_fraction,score_fraction,"
                + "memory_fraction,vs_single_mean,vs_single_se,vs_independent_mean,"
                + "vs_independent_se,ppo_vs_single_mean,ppo_vs_single_se,ppo_vs_independent_mean,"
                + "ppo_vs_independent_se,meets_goal\n");
    for (CostLine l : costLines(r)) {
      DemoCost.Cost c = l.cost();
      csv.append(
          String.format(
              Locale.ROOT,
              "%s,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%d,%.6f,%.6f,%.6f,%s,%s,%s,%s,%b%n",
              l.method().name(),
              c.seeds(),
              c.trainSeconds(),
              c.ownTrainSeconds(),
              c.reusedTrainSeconds(),
              c.phase1Seconds(),
              c.loadSeconds(),
              c.scoreSeconds(),
              c.variableBytes(),
              l.trainFraction(),
              l.scoreFraction(),
              l.memoryFraction(),
              pair(l.vsSingle()),
              pair(l.vsIndependent()),
              pair(l.ppoVsSingle()),
              pair(l.ppoVsIndependent()),
              l.meetsGoal()));
    }
    return csv.toString();
  }

  /** {@code results.json}'s {@code levers} and {@code cost}. */
  static void json(ObjectNode root, DemoReport r) {
    ArrayNode lv = root.putArray("levers");
    for (LeverLine l : leverLines(r)) {
      ObjectNode o = lv.addObject();
      o.put("method", l.method().name());
      o.put("lever", l.method().lever() == null ? null : l.method().lever().id());
      o.put("k", l.method().k());
      o.put("base", l.base() == null ? null : l.base().name());
      o.put("member_correlation", l.correlation());
      o.put("pair_accuracy_mean", l.pairAccuracy().mean());
      o.put("win_mean", l.win().mean());
      stat(o, "vs_single", l.vsSingle());
      stat(o, "vs_own_members", l.vsOwnMembers());
      stat(o, "vs_base", l.vsBase());
    }
    ArrayNode cj = root.putArray("cost");
    List<CostLine> lines = costLines(r);
    for (CostLine l : lines) {
      DemoCost.Cost c = l.cost();
      ObjectNode o = cj.addObject();
      o.put("method", l.method().name());
      o.put("seeds", c.seeds());
      o.put("train_seconds", c.trainSeconds());
      o.put("own_train_seconds", c.ownTrainSeconds());
      o.put("reused_train_seconds", c.reusedTrainSeconds());
      o.put("phase1_seconds", c.phase1Seconds());
      o.put("load_seconds", c.loadSeconds());
      o.put("score_seconds", c.scoreSeconds());
      o.put("variable_bytes", c.variableBytes());
      o.put("train_fraction", l.trainFraction());
      o.put("score_fraction", l.scoreFraction());
      o.put("memory_fraction", l.memoryFraction());
      stat(o, "vs_single", l.vsSingle());
      stat(o, "vs_independent", l.vsIndependent());
      stat(o, "ppo_vs_single", l.ppoVsSingle());
      stat(o, "ppo_vs_independent", l.ppoVsIndependent());
      o.put("meets_goal", l.meetsGoal());
    }
    root.put("cost_statement", lines.isEmpty() ? "" : statement(r, lines));
  }

  private static void stat(ObjectNode o, String key, DemoAnalysis.Stat s) {
    o.put(key + "_mean", s == null ? Double.NaN : s.mean());
    o.put(key + "_se", s == null ? Double.NaN : s.se());
  }
}
