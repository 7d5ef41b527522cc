package dev.rewardensemble.eval;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What each method of the demo cost, measured as it ran (no estimates): training wall time per
 * seed, the wall time of scoring the Best-of-n pool ({@code RewardModel.score} alone, loading
 * apart) and the bytes of the variables of the scoring model actually loaded ({@code
 * RewardModel.variableBytes}). Filled by the phases through {@link PhaseTimer#cost()} (from several
 * threads when units run at once); read by the report.
 *
 * <p>A row that reuses another's work counts it: a lever row that starts from {@code lora-K}'s
 * phase 1 is charged that phase 1's measured seconds of the same seed, a WARM model its source
 * ensemble's training seconds plus the merge, so that every training time is what the method costs
 * on its own.
 */
final class DemoCost {
  private final Map<String, Acc> rows = new LinkedHashMap<>();

  /**
   * One method's measured cost, summed over the seeds it ran.
   *
   * @param ownTrainSeconds wall time of its own training calls (for WARM: the merges)
   * @param reusedTrainSeconds measured seconds of the work it reused (another row's phase 1, or a
   *     WARM model's source ensemble)
   * @param phase1Seconds a LoRA row's phase 1 (data reading included), part of its own seconds
   * @param loadSeconds loading the scoring model
   * @param scoreSeconds scoring the pool
   * @param variableBytes the largest over seeds of the loaded scoring model's variable bytes
   * @param seeds seeds scored
   */
  record Cost(
      double ownTrainSeconds,
      double reusedTrainSeconds,
      double phase1Seconds,
      double loadSeconds,
      double scoreSeconds,
      long variableBytes,
      int seeds) {
    /** What training the method costs on its own: its own seconds and what it reused. */
    double trainSeconds() {
      return ownTrainSeconds + reusedTrainSeconds;
    }
  }

  private static final class Acc {
    double own, reused, phase1, load, score;
    long bytes;
    int seeds;
  }

  private Acc acc(DemoMethod m) {
    return rows.computeIfAbsent(m.name(), n -> new Acc());
  }

  /** {@code m}'s own training (or merge) took {@code seconds} (one seed). */
  synchronized void trained(DemoMethod m, double seconds) {
    Acc a = acc(m);
    a.own += seconds;
  }

  /** Of {@code m}'s own training (one seed), LoRA phase 1 took {@code seconds}. */
  synchronized void phase1(DemoMethod m, double seconds) {
    Acc a = acc(m);
    a.phase1 += seconds;
  }

  /** {@code m} reused work measured at {@code seconds} (charged to its training). */
  synchronized void reused(DemoMethod m, double seconds) {
    acc(m).reused += seconds;
  }

  /** {@code m}'s model was loaded and scored the pool once. */
  synchronized void scored(DemoMethod m, double loadSeconds, double scoreSeconds, long bytes) {
    Acc a = acc(m);
    a.load += loadSeconds;
    a.score += scoreSeconds;
    a.bytes = Math.max(a.bytes, bytes);
    a.seeds++;
  }

  /** {@code m}'s cost, or null if nothing was measured for it. */
  synchronized Cost of(DemoMethod m) {
    Acc a = rows.get(m.name());
    return a == null
        ? null
        : new Cost(a.own, a.reused, a.phase1, a.load, a.score, a.bytes, a.seeds);
  }
}
