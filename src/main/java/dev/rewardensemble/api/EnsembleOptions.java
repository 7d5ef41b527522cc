package dev.rewardensemble.api;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleSpec;
import dev.rewardensemble.lora.LoraConfig;
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
    int referenceSize) {

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
