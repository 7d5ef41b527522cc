package dev.rewardensemble.rl;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleScorer;
import dev.rewardensemble.ensemble.MemberScores;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Best-of-n with a reward model or ensemble: sample a pool of n candidates per prompt once, score
 * every candidate of every prompt in large batches (all K members per {@code Session.run}), and
 * keep the best under a chosen aggregation. The same pool can be re-ranked by several reward
 * models, aggregations and n (see {@link BestOfN#expected}).
 */
public final class BestOfNRunner {
  private BestOfNRunner() {}

  /** One scored candidate. */
  public record Candidate(Generation generation, MemberScores scores) {}

  /** One prompt's candidates, in sampling order, and the index of the selected one. */
  public record Result(int[] promptIds, List<Candidate> candidates, int selected) {
    public Candidate best() {
      return candidates.get(selected);
    }
  }

  /**
   * Samples {@code n} candidates for every prompt: prompt i's candidates are requests {@code i*n ..
   * i*n+n-1}, each with its own random stream, so the pool is reproducible from the seed.
   */
  public static List<List<Generation>> sample(
      Sampler sampler, List<int[]> prompts, int n, SamplingConfig cfg, int batchSize) {
    if (n < 1) {
      throw new IllegalArgumentException("n must be >= 1, got " + n);
    }
    List<int[]> requests = new ArrayList<>(prompts.size() * n);
    for (int[] p : prompts) {
      for (int j = 0; j < n; j++) {
        requests.add(p);
      }
    }
    List<Generation> flat = sampler.generate(requests, cfg, batchSize);
    List<List<Generation>> pool = new ArrayList<>(prompts.size());
    for (int i = 0; i < prompts.size(); i++) {
      pool.add(List.copyOf(flat.subList(i * n, (i + 1) * n)));
    }
    return pool;
  }

  /**
   * The sequence a reward model scores for a candidate: prompt ids then response ids without a
   * trailing EOS (reward models are trained on prompt + response), cut from the left to {@code
   * maxLength} so the response is kept.
   */
  public static int[] scoredSequence(int[] prompt, int[] response, int eosId, int maxLength) {
    int r = response.length;
    if (r > 0 && eosId >= 0 && response[r - 1] == eosId) {
      r--;
    }
    int[] seq = new int[prompt.length + r];
    System.arraycopy(prompt, 0, seq, 0, prompt.length);
    System.arraycopy(response, 0, seq, prompt.length, r);
    if (seq.length == 0) {
      throw new IllegalArgumentException("empty prompt and response");
    }
    return seq.length <= maxLength
        ? seq
        : Arrays.copyOfRange(seq, seq.length - maxLength, seq.length);
  }

  /** Raw member rewards {@code [prompt][candidate][K]} of a pool, scored in batches. */
  public static float[][][] score(
      EnsembleScorer rm, List<List<Generation>> pool, int eosId, int batchSize) {
    List<int[]> seqs = new ArrayList<>();
    for (List<Generation> cands : pool) {
      for (Generation g : cands) {
        seqs.add(scoredSequence(g.promptIds(), g.responseIds(), eosId, rm.config().maxPositions()));
      }
    }
    float[][] flat = rm.score(seqs, batchSize);
    float[][][] out = new float[pool.size()][][];
    int at = 0;
    for (int i = 0; i < pool.size(); i++) {
      out[i] = new float[pool.get(i).size()][];
      for (int j = 0; j < out[i].length; j++) {
        out[i][j] = flat[at++];
      }
    }
    return out;
  }

  /** Aggregates scored candidates and selects the best of each prompt. */
  public static List<Result> select(
      EnsembleScorer rm,
      List<List<Generation>> pool,
      float[][][] members,
      AggregationConfig agg,
      boolean normalize) {
    List<Result> out = new ArrayList<>(pool.size());
    for (int i = 0; i < pool.size(); i++) {
      List<Candidate> cands = new ArrayList<>();
      double[] s = new double[pool.get(i).size()];
      for (int j = 0; j < s.length; j++) {
        MemberScores ms =
            normalize ? rm.aggregate(members[i][j], agg) : rm.aggregateRaw(members[i][j], agg);
        cands.add(new Candidate(pool.get(i).get(j), ms));
        s[j] = ms.reward();
      }
      out.add(new Result(pool.get(i).get(0).promptIds(), cands, BestOfN.argmax(s)));
    }
    return out;
  }
}
