package dev.rewardensemble.ensemble;

import java.util.Optional;

/**
 * One sequence's ensemble prediction: the members' raw rewards, their standardised values when a
 * {@link Normalization} is applied, and the mean, population std and aggregated reward computed
 * from the standardised values (from the raw ones without normalisation).
 */
public record MemberScores(
    float[] members, float[] standardized, double mean, double std, double reward) {

  /** Aggregates raw member rewards, standardising them first when {@code norm} is present. */
  public static MemberScores of(float[] raw, Optional<Normalization> norm, AggregationConfig agg) {
    float[] used = norm.map(n -> n.apply(raw)).orElse(raw);
    return new MemberScores(
        raw,
        norm.isPresent() ? used : null,
        Aggregation.mean(used),
        Aggregation.std(used),
        agg.apply(used));
  }
}
