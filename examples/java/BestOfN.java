import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.rl.BestOfNRunner;
import dev.rewardensemble.rl.Generation;
import dev.rewardensemble.rl.Sampler;
import dev.rewardensemble.rl.SamplingConfig;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Best-of-n: samples n responses per prompt from a causal-LM policy (temperature 1, top-p 0.9),
 * scores them with a reward ensemble and keeps, per prompt, the one with the highest LCB.
 *
 * <pre>
 * java -cp "target/classes:$(cat target/classpath.txt)" examples/java/BestOfN.java \
 *     POLICY REWARD_MODEL [N] [PROMPT_IDS ...]
 * </pre>
 *
 * POLICY is a {@code LlamaForCausalLM} / {@code GPT2LMHeadModel} checkpoint sharing the reward
 * model's vocabulary; each PROMPT_IDS is a comma-separated list of token ids (default: two short
 * prompts).
 */
public class BestOfN {
  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: BestOfN POLICY REWARD_MODEL [N] [PROMPT_IDS ...]");
      System.exit(2);
    }
    int n = args.length > 2 ? Integer.parseInt(args[2]) : 4;
    List<int[]> prompts =
        args.length > 3
            ? Arrays.stream(args, 3, args.length)
                .map(
                    p ->
                        Arrays.stream(p.split(","))
                            .mapToInt(s -> Integer.parseInt(s.trim()))
                            .toArray())
                .toList()
            : List.of(new int[] {1, 54, 74, 71}, new int[] {1, 89, 266, 70, 283});
    SamplingConfig sampling = SamplingConfig.bestOfN().withMaxNewTokens(16).withSeed(7);
    AggregationConfig lcb = AggregationConfig.lcb(0.5);
    try (RewardModel rm = RewardModel.load(Path.of(args[1]));
        Sampler policy = Sampler.load(Path.of(args[0]), ExecConfig.defaults())) {
      List<List<Generation>> pool = BestOfNRunner.sample(policy, prompts, n, sampling, 16);
      int eos = policy.config().eosTokenId();
      float[][][] members = BestOfNRunner.score(rm, pool, eos, 16); // [prompt][candidate][K]
      List<BestOfNRunner.Result> results = BestOfNRunner.select(rm, pool, members, lcb, true);
      for (int i = 0; i < results.size(); i++) {
        BestOfNRunner.Result r = results.get(i);
        BestOfNRunner.Candidate best = r.best();
        System.out.printf(
            "prompt %d: best of %d is candidate %d, lcb=%.6f, response %s%n",
            i,
            r.candidates().size(),
            r.selected(),
            best.scores().reward(),
            Arrays.toString(best.generation().responseIds()));
      }
    }
  }
}
