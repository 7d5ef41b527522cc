package dev.rewardensemble.api;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleSpec;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.train.MemberData;
import dev.rewardensemble.train.Schedule;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Which ensemble {@code rme train-rm} builds and how, validated on construction; kind and K by
 * {@link EnsembleSpec} ({@link #spec()}).
 *
 * @param k members (1 for {@link EnsembleKind#SINGLE})
 * @param bootstrap linear and LoRA phase 1: each head trained on its own Poisson(1) resample of
 *     every batch (Ahmed et al. 2024), so that shared-trunk members stay diverse
 * @param lora adapters of the LoRA ensemble's phase 2 (null: {@link LoraConfig#defaults})
 * @param phase1Fraction LoRA: share of the training split used for phase 1 (full finetune as a
 *     linear ensemble); the rest trains the adapters
 * @param phase1Data LoRA: a separate preference file for phase 1 (then all of {@code --data} is
 *     phase 2); null to split {@code --data}
 * @param loraLr phase 2's learning rate (the paper's 5e-5)
 * @param loraSchedule phase 2's schedule (the paper's constant)
 * @param aggregation default aggregation stored with the ensemble
 * @param normalize measure per-member mean and std on the training responses and standardise
 *     members before aggregation
 * @param referenceSize most training responses used to measure the normalisation
 * @param memberData which pairs each member learns from where the members train apart: the linear
 *     ensemble's run, the LoRA ensemble's phase 2 ({@link MemberData}; {@code --member-data}). For
 *     a linear ensemble {@code bootstrap} is {@link MemberData#POISSON}
 * @param priorScale beta of a randomized prior (Osband et al. 2018): each member's reward is its
 *     trained head plus beta times a fixed random head on the same final hidden state, in every
 *     phase; the saved heads hold the sum, so scoring, export and serving are unchanged; 0: none
 * @param diversityWeight lambda of the LoRA phase 2 diversity regulariser ({@code
 *     train.LoraDiversity}: the nuclear norm of the members' normalised, stacked {@code lora_A}
 *     maximised); 0: none
 * @param loraRanks LoRA: one adapter rank per member (null: every member {@code lora.rank()}); the
 *     adapters are stacked at the largest rank, which {@code lora.rank()} must be, and each member
 *     is saved as a PEFT adapter of its own rank
 */
public record EnsembleOptions(
    EnsembleKind kind,
    int k,
    boolean bootstrap,
    LoraConfig lora,
    double phase1Fraction,
    Path phase1Data,
    double loraLr,
    Schedule.Kind loraSchedule,
    AggregationConfig aggregation,
    boolean normalize,
    int referenceSize,
    MemberData memberData,
    double priorScale,
    double diversityWeight,
    java.util.List<Integer> loraRanks) {

  /** Options without the diversity levers (every member on every phase-2 pair, no prior). */
  public EnsembleOptions(
      EnsembleKind kind,
      int k,
      boolean bootstrap,
      LoraConfig lora,
      double phase1Fraction,
      Path phase1Data,
      double loraLr,
      Schedule.Kind loraSchedule,
      AggregationConfig aggregation,
      boolean normalize,
      int referenceSize) {
    this(
        kind,
        k,
        bootstrap,
        lora,
        phase1Fraction,
        phase1Data,
        loraLr,
        loraSchedule,
        aggregation,
        normalize,
        referenceSize,
        MemberData.SHARED,
        0,
        0,
        null);
  }

  public EnsembleOptions {
    // Kind and K are validated in one place, the spec.
    aggregation = new EnsembleSpec(kind, k, aggregation, Optional.empty()).aggregation();
    if (!(phase1Fraction > 0 && phase1Fraction < 1)) {
      throw new IllegalArgumentException(
          "--phase1-fraction must be in (0, 1), got " + phase1Fraction);
    }
    if (!(loraLr > 0 && Double.isFinite(loraLr))) {
      throw new IllegalArgumentException("--lora-lr must be > 0, got " + loraLr);
    }
    if (referenceSize < 2) {
      throw new IllegalArgumentException(
          "normalisation reference size must be >= 2, got " + referenceSize);
    }
    if (memberData == null) {
      memberData = MemberData.SHARED;
    }
    if (memberData != MemberData.SHARED
        && kind != EnsembleKind.LINEAR
        && kind != EnsembleKind.LORA) {
      throw new IllegalArgumentException(
          "--member-data "
              + memberData.id()
              + " applies to the shared-trunk ensembles (--ensemble linear or lora), not "
              + kind.id());
    }
    if (kind == EnsembleKind.LINEAR
        && bootstrap
        && memberData != MemberData.SHARED
        && memberData != MemberData.POISSON) {
      throw new IllegalArgumentException(
          "--bootstrap is --member-data poisson for a linear ensemble: it cannot be combined with"
              + " --member-data "
              + memberData.id());
    }
    if (!(Double.isFinite(priorScale) && priorScale >= 0)) {
      throw new IllegalArgumentException(
          "--prior-scale must be finite and >= 0, got " + priorScale);
    }
    if (!(Double.isFinite(diversityWeight) && diversityWeight >= 0)) {
      throw new IllegalArgumentException(
          "--diversity-weight must be finite and >= 0, got " + diversityWeight);
    }
    if (loraRanks != null) {
      loraRanks = java.util.List.copyOf(loraRanks);
      if (kind != EnsembleKind.LORA) {
        throw new IllegalArgumentException(
            "--lora-rank with one rank per member needs --ensemble lora, got " + kind.id());
      }
      if (loraRanks.size() != k) {
        throw new IllegalArgumentException(
            "--lora-rank gives "
                + loraRanks.size()
                + " ranks for "
                + k
                + " members (--k): give one rank, or one per member");
      }
      for (int r : loraRanks) {
        if (r < 1) {
          throw new IllegalArgumentException("--lora-rank values must be >= 1, got " + r);
        }
      }
      int max = loraRanks.stream().mapToInt(Integer::intValue).max().orElseThrow();
      if (lora != null && lora.rank() != max) {
        throw new IllegalArgumentException(
            "per-member LoRA ranks "
                + loraRanks
                + " are stacked at the largest, "
                + max
                + ", but the LoRA configuration has rank "
                + lora.rank());
      }
    }
    if (diversityWeight != 0 && loraRanks != null && loraRanks.stream().distinct().count() > 1) {
      throw new IllegalArgumentException(
          "--diversity-weight cannot be combined with per-member --lora-rank values yet: the"
              + " regulariser would also move the columns a member of lower rank does not use");
    }
    if (diversityWeight != 0 && (kind != EnsembleKind.LORA || k < 2)) {
      throw new IllegalArgumentException(
          "--diversity-weight acts on the members' LoRA adapters: it needs --ensemble lora with"
              + " --k >= 2, got "
              + kind.id()
              + " with k = "
              + k);
    }
  }

  /**
   * The data of the linear ensemble's heads (its one run) or of the LoRA ensemble's phase 2: {@link
   * #memberData}, or {@link MemberData#POISSON} for a linear ensemble with {@code bootstrap}.
   */
  public MemberData membersData() {
    // --bootstrap has always resampled the one run of a single model or a linear ensemble.
    return bootstrap && (kind == EnsembleKind.LINEAR || kind == EnsembleKind.SINGLE)
        ? MemberData.POISSON
        : memberData;
  }

  /** These options with the diversity levers set. */
  public EnsembleOptions withLevers(
      MemberData memberData, double priorScale, double diversityWeight) {
    return new EnsembleOptions(
        kind,
        k,
        bootstrap,
        lora,
        phase1Fraction,
        phase1Data,
        loraLr,
        loraSchedule,
        aggregation,
        normalize,
        referenceSize,
        memberData,
        priorScale,
        diversityWeight,
        loraRanks);
  }

  /** These options with a LoRA rank per member (null: all {@code lora.rank()}). */
  public EnsembleOptions withLoraRanks(java.util.List<Integer> ranks) {
    return new EnsembleOptions(
        kind,
        k,
        bootstrap,
        lora,
        phase1Fraction,
        phase1Data,
        loraLr,
        loraSchedule,
        aggregation,
        normalize,
        referenceSize,
        memberData,
        priorScale,
        diversityWeight,
        ranks);
  }

  /** The members' ranks when they differ, else null (every member {@code lora.rank()}). */
  public int[] memberRanks() {
    if (loraRanks == null || loraRanks.stream().distinct().count() <= 1) {
      return null;
    }
    return loraRanks.stream().mapToInt(Integer::intValue).toArray();
  }

  /**
   * What the run trains: kind, K and default aggregation (normalisation is measured after
   * training).
   */
  public EnsembleSpec spec() {
    return new EnsembleSpec(kind, k, aggregation, Optional.empty());
  }

  /** A single reward model. */
  public static EnsembleOptions single() {
    return new EnsembleOptions(
        EnsembleKind.SINGLE,
        1,
        false,
        null,
        0.5,
        null,
        5e-5,
        Schedule.Kind.CONSTANT,
        AggregationConfig.mean(),
        true,
        2048);
  }

  /** An ensemble of {@code kind} with K members and the paper's settings. */
  public static EnsembleOptions of(EnsembleKind kind, int k) {
    return new EnsembleOptions(
        kind,
        kind == EnsembleKind.SINGLE ? 1 : k,
        false,
        null,
        0.5,
        null,
        5e-5,
        Schedule.Kind.CONSTANT,
        AggregationConfig.mean(),
        true,
        2048);
  }
}
