package dev.rewardensemble.ensemble;

import dev.rewardensemble.config.ModelConfig;
import java.util.List;

/**
 * A reward model or ensemble as Best-of-n and PPO see it: raw member rewards of token sequences and
 * their aggregation. {@code api.RewardModel} implements it; {@code rl} depends on this interface
 * instead of on {@code api}, so the package graph stays acyclic.
 */
public interface EnsembleScorer {
  /** The scored trunk's configuration (its positions bound a sequence's length). */
  ModelConfig config();

  /**
   * Raw member rewards {@code [N][K]} of {@code sequences}, in input order, scored in batches of at
   * most {@code batchSize}.
   */
  float[][] score(List<int[]> sequences, int batchSize);

  /** Aggregates one sequence's raw member rewards with the model's stored normalisation. */
  MemberScores aggregate(float[] raw, AggregationConfig agg);

  /** Aggregates without normalisation even when the model has it. */
  MemberScores aggregateRaw(float[] raw, AggregationConfig agg);
}
