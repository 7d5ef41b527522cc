package dev.rewardensemble.ensemble;

import java.util.Optional;

/**
 * What an ensemble is, apart from its weights: its kind, its size K, the default aggregation of its
 * members and, once measured, their per-member normalisation. Validated on construction: this is
 * the one place K is checked ({@code >= 1}; 1 for {@link EnsembleKind#SINGLE}; a normalisation of
 * exactly K members). Everything downstream (graphs, trainers, exporters) takes K from a spec and
 * does not check it again.
 *
 * <p>Built once per training run from the command's options ({@code api.EnsembleOptions#spec()}),
 * written to {@code ensemble.json} ({@link EnsembleModel#writeManifest}) and read back from it on
 * load, where the manifest's {@code k} must match the member directories, the heads and the
 * normalisation it describes.
 *
 * @param k ensemble members K (reward heads of a single or linear model)
 * @param aggregation default aggregation (null: the mean)
 * @param normalization per-member standardisation, when measured (null: none)
 */
public record EnsembleSpec(
    EnsembleKind kind,
    int k,
    AggregationConfig aggregation,
    Optional<Normalization> normalization) {

  public EnsembleSpec {
    if (kind == null) {
      throw new IllegalArgumentException(
          "ensemble kind must be single, independent, linear or lora");
    }
    if (k < 1) {
      throw new IllegalArgumentException("ensemble size K must be >= 1, got " + k);
    }
    if (kind == EnsembleKind.SINGLE && k != 1) {
      throw new IllegalArgumentException("a single reward model has K = 1, got K = " + k);
    }
    if (aggregation == null) {
      aggregation = AggregationConfig.mean();
    }
    if (normalization == null) {
      normalization = Optional.empty();
    }
    if (normalization.isPresent() && normalization.get().mean().length != k) {
      throw new IllegalArgumentException(
          "normalization has "
              + normalization.get().mean().length
              + " members, the ensemble K = "
              + k);
    }
  }

  /** {@code kind} with K members, mean aggregation, no normalisation. */
  public static EnsembleSpec of(EnsembleKind kind, int k) {
    return new EnsembleSpec(kind, k, AggregationConfig.mean(), Optional.empty());
  }

  /**
   * A model with {@code heads} reward heads on one trunk: single for one head, linear otherwise.
   */
  public static EnsembleSpec heads(int heads) {
    return of(heads == 1 ? EnsembleKind.SINGLE : EnsembleKind.LINEAR, heads);
  }

  /** The same ensemble with the normalisation measured for it (null: none). */
  public EnsembleSpec withNormalization(Normalization norm) {
    return new EnsembleSpec(kind, k, aggregation, Optional.ofNullable(norm));
  }

  /** The same ensemble with another default aggregation. */
  public EnsembleSpec withAggregation(AggregationConfig agg) {
    return new EnsembleSpec(kind, k, agg, normalization);
  }
}
