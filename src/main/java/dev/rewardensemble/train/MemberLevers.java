package dev.rewardensemble.train;

import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.RewardHeads;

/**
 * What makes the K members of one training run (heads on one trunk, or LoRA adapters and heads)
 * differ besides their initialisation, for {@link TrainingRun.Spec}.
 *
 * @param data which pairs each member learns from ({@link MemberData})
 * @param priorScale beta of a randomized prior: member k's reward is its trained head plus {@code
 *     beta} times a fixed random head ({@link RewardHeads#prior}), folded into the saved head; 0:
 *     none
 * @param priorSeed the prior heads' seed (the same in every phase of a run, so that LoRA phase 2
 *     continues phase 1's prior)
 * @param diversityWeight lambda of the LoRA diversity regulariser (0: none)
 * @param loraRanks LoRA: each member's adapter rank when they differ (null: all the same); the
 *     graph applies them, the run records them in its fingerprint
 */
public record MemberLevers(
    MemberData data,
    double priorScale,
    long priorSeed,
    double diversityWeight,
    java.util.List<Integer> loraRanks) {

  public MemberLevers(MemberData data, double priorScale, long priorSeed, double diversityWeight) {
    this(data, priorScale, priorSeed, diversityWeight, null);
  }

  public MemberLevers {
    loraRanks = loraRanks == null ? null : java.util.List.copyOf(loraRanks);
    if (data == null) {
      throw new IllegalArgumentException("member data must be given");
    }
    if (!(Double.isFinite(priorScale) && priorScale >= 0)) {
      throw new IllegalArgumentException(
          "--prior-scale must be finite and >= 0, got " + priorScale);
    }
    if (!(Double.isFinite(diversityWeight) && diversityWeight >= 0)) {
      throw new IllegalArgumentException(
          "--diversity-weight must be finite and >= 0, got " + diversityWeight);
    }
  }

  /** Nothing: every member on every pair, no prior, no regulariser. */
  public static MemberLevers none() {
    return new MemberLevers(MemberData.SHARED, 0, 0, 0);
  }

  /** Only per-member data. */
  public static MemberLevers of(MemberData data) {
    return new MemberLevers(data, 0, 0, 0);
  }

  /** Poisson(1) per batch ({@code --bootstrap}) or nothing. */
  public static MemberLevers bootstrap(boolean bootstrap) {
    return of(bootstrap ? MemberData.POISSON : MemberData.SHARED);
  }

  public MemberLevers withData(MemberData d) {
    return new MemberLevers(d, priorScale, priorSeed, diversityWeight, loraRanks);
  }

  public MemberLevers withPrior(double scale, long seed) {
    return new MemberLevers(data, scale, seed, diversityWeight, loraRanks);
  }

  public MemberLevers withDiversityWeight(double lambda) {
    return new MemberLevers(data, priorScale, priorSeed, lambda, loraRanks);
  }

  /** With each member's LoRA rank ({@code null} or equal ranks: none recorded). */
  public MemberLevers withLoraRanks(int[] ranks) {
    return new MemberLevers(
        data,
        priorScale,
        priorSeed,
        diversityWeight,
        ranks == null ? null : java.util.Arrays.stream(ranks).boxed().toList());
  }

  /** The prior {@code beta * P} of {@code k} heads of width {@code hidden}, or null for none. */
  public FloatTensor prior(int k, int hidden) {
    return priorScale == 0 ? null : RewardHeads.prior(k, hidden, priorSeed, priorScale);
  }
}
