package dev.rewardensemble.rl;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleScorer;
import dev.rewardensemble.ensemble.MemberScores;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;

/**
 * The reward a policy optimiser sees for a (prompt, response) pair: members' rewards and their
 * aggregation. Backed by a reward model or ensemble ({@link #of(EnsembleScorer, AggregationConfig,
 * int, int)}), or by a plain function for toy tasks with a known reward ({@link #function}).
 */
public interface SequenceScorer {
  /** Scores of each pair, in order. {@code responses} exclude any trailing EOS. */
  List<MemberScores> score(List<int[]> prompts, List<int[]> responses);

  /** A reward model or ensemble, aggregated with {@code agg} (its stored normalisation applied). */
  static SequenceScorer of(EnsembleScorer rm, AggregationConfig agg, int eosId, int batchSize) {
    return (prompts, responses) -> {
      List<int[]> seqs = new ArrayList<>(prompts.size());
      for (int i = 0; i < prompts.size(); i++) {
        seqs.add(
            BestOfNRunner.scoredSequence(
                prompts.get(i), responses.get(i), eosId, rm.config().maxPositions()));
      }
      float[][] m = rm.score(seqs, batchSize);
      List<MemberScores> out = new ArrayList<>(m.length);
      for (float[] row : m) {
        out.add(rm.aggregate(row, agg));
      }
      return out;
    };
  }

  /** A known reward function of (prompt, response): one member. */
  static SequenceScorer function(BiFunction<int[], int[], Double> f) {
    return (prompts, responses) -> {
      List<MemberScores> out = new ArrayList<>(prompts.size());
      for (int i = 0; i < prompts.size(); i++) {
        float r = f.apply(prompts.get(i), responses.get(i)).floatValue();
        out.add(new MemberScores(new float[] {r}, null, r, 0, r));
      }
      return out;
    };
  }
}
