package dev.rewardensemble.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.PromptRow;
import dev.rewardensemble.data.PromptRows;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.MemberScores;
import dev.rewardensemble.rl.BestOfN;
import dev.rewardensemble.rl.BestOfNRunner;
import dev.rewardensemble.rl.Generation;
import dev.rewardensemble.rl.Sampler;
import dev.rewardensemble.rl.SamplingConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme best-of-n}: n samples per prompt, scored by a reward model or ensemble, the best kept. */
@Command(
    name = "best-of-n",
    mixinStandardHelpOptions = true,
    description = {
      "Best-of-n sampling: for each prompt, n samples from the policy (defaults: the paper's temperature 1.0,",
      "top-p 0.9), scored in batches by a reward model or ensemble with the chosen aggregation; the best is kept.",
      "Output rows (input order): prompt, response, response_ids, index, reward, and members/mean/std for",
      "ensembles. The summary gives the expected reward of Best-of-n' for n' = 1, 2, 4, .., n from the same pool",
      "(exact over all subsets) and the analytic KL log n - (n-1)/n."
    })
public final class BestOfNCommand implements Callable<Integer> {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Option(names = "--policy", required = true, description = "Causal LM checkpoint (LlamaForCausalLM / GPT2LMHeadModel).")
  Path policy;

  @Option(names = "--reward-model", required = true, description = "Reward model or ensemble (run dir, checkpoint, SavedModel, or base with --lora).")
  Path rewardModel;

  @Option(names = "--lora", split = ",", description = "PEFT adapters over --reward-model.")
  List<Path> lora;

  @Option(names = "--prompts", required = true, description = "JSONL rows {\"prompt\": ..} or {\"input_ids\": [..]}.")
  Path prompts;

  @Option(names = "--n", defaultValue = "16", description = "Samples per prompt (default: ${DEFAULT-VALUE}).")
  int n;

  @Option(names = "--out", description = "Selected responses, JSONL (default: standard output).")
  Path out;

  @Option(names = "--candidates-out", description = "Every candidate with all members' rewards, JSONL.")
  Path candidatesOut;

  @Option(names = "--summary", description = "Summary JSON (expected reward against n, KL).")
  Path summary;

  @CommandLine.Mixin AggregationOptions aggregation = new AggregationOptions();

  @Option(names = "--no-normalize", description = "Aggregate raw member rewards even when the ensemble stores a normalisation.")
  boolean noNormalize;

  @Option(names = "--temperature", defaultValue = "1.0", description = "Sampling temperature (default: ${DEFAULT-VALUE}).")
  double temperature;

  @Option(names = "--top-p", defaultValue = "0.9", description = "Nucleus sampling (default: ${DEFAULT-VALUE}).")
  double topP;

  @Option(names = "--top-k", defaultValue = "0", description = "Top-k, 0 = off (default: ${DEFAULT-VALUE}).")
  int topK;

  @Option(names = "--max-new-tokens", defaultValue = "300", description = "Longest response (default: ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(names = "--seed", defaultValue = "42", description = "Sampling seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--batch-size", defaultValue = "16", description = "Sequences per Session.run (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(names = "--template", defaultValue = "alpaca", description = "Prompt template for text prompts (default: ${DEFAULT-VALUE}).")
  String template;

  @Option(names = "--tokenizer", description = "tokenizer.json (default: the policy's).")
  Path tokenizer;

  @Option(names = "--threads", defaultValue = "0", description = "Intra-op threads (0 = all cores).")
  int threads;

  @Override
  public Integer call() throws Exception {
    if (n < 1) {
      throw new UserError("--n must be >= 1, got " + n);
    }
    if (batchSize < 1) {
      throw new UserError("--batch-size must be >= 1, got " + batchSize);
    }
    SamplingConfig cfg = new SamplingConfig(maxNewTokens, false, temperature, topP, topK, seed, true);
    ExecConfig exec = new ExecConfig(threads, 0, false);
    try (Sampler sampler = Sampler.load(policy, exec);
        RewardModel rm = lora == null || lora.isEmpty() ? RewardModel.load(rewardModel, exec)
            : RewardModel.loadWithAdapters(rewardModel, lora, exec)) {
      if (rm.config().vocabSize() != sampler.config().vocabSize()) {
        throw new UserError("the policy's vocabulary (" + sampler.config().vocabSize() + ") differs from the reward model's ("
            + rm.config().vocabSize() + "): they must share a tokenizer");
      }
      AggregationConfig agg = aggregation.resolve(rm.aggregation());
      int maxPrompt = sampler.config().maxPositions() - maxNewTokens;
      if (maxPrompt < 1) {
        throw new UserError("--max-new-tokens " + maxNewTokens + " leaves no room for a prompt in the policy's "
            + sampler.config().maxPositions() + " positions");
      }
      Path tokPath = tokenizer != null ? tokenizer : sampler.tokenizer().orElse(null);
      try (Tokenizer tok = tokPath == null ? null : Tokenizer.load(tokPath)) {
        Encoder enc = new Encoder(tok, PromptTemplate.byName(template), maxPrompt, OptionalInt.empty(), Encoder.Truncation.ERROR);
        List<PromptRow> rows = PromptRows.read(prompts, enc, OptionalInt.of(sampler.config().vocabSize()));
        List<int[]> ids = new ArrayList<>();
        rows.forEach(r -> ids.add(r.ids()));
        long t0 = System.nanoTime();
        List<List<Generation>> pool = BestOfNRunner.sample(sampler, ids, n, cfg, batchSize);
        long t1 = System.nanoTime();
        float[][][] members = BestOfNRunner.score(rm, pool, sampler.config().eosTokenId(), batchSize);
        long t2 = System.nanoTime();
        List<BestOfNRunner.Result> results = BestOfNRunner.select(rm, pool, members, agg, !noNormalize);
        List<String> lines = new ArrayList<>();
        List<String> candLines = new ArrayList<>();
        for (int i = 0; i < rows.size(); i++) {
          BestOfNRunner.Result r = results.get(i);
          lines.add(JSON.writeValueAsString(row(rows.get(i), r.best(), r.selected(), tok)));
          if (candidatesOut != null) {
            for (int j = 0; j < r.candidates().size(); j++) {
              ObjectNode c = row(rows.get(i), r.candidates().get(j), j, tok);
              c.put("selected", j == r.selected());
              candLines.add(JSON.writeValueAsString(c));
            }
          }
        }
        Outputs.writeLines(out, lines);
        if (candidatesOut != null) {
          Outputs.writeLines(candidatesOut, candLines);
        }
        ObjectNode s = summarize(results, rows.size(), (t1 - t0) / 1e9, (t2 - t1) / 1e9);
        s.put("aggregation", dev.rewardensemble.ensemble.Diagnostics.label(agg));
        if (summary != null) {
          Outputs.writeLines(summary, List.of(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(s)));
        }
        System.err.printf("best-of-%d over %d prompts (%s): mean selected reward %.4f, mean sample reward %.4f, KL %.4f nats%n",
            n, rows.size(), s.get("aggregation").asText(), s.get("mean_selected_reward").asDouble(),
            s.get("mean_sample_reward").asDouble(), BestOfN.kl(n));
        System.err.printf("  expected reward by n (same pool): %s%n", s.get("expected_reward_by_n"));
        System.err.printf("  sampling %.1f s, scoring %.1f s%n", (t1 - t0) / 1e9, (t2 - t1) / 1e9);
      }
    }
    return 0;
  }

  private static ObjectNode row(PromptRow p, BestOfNRunner.Candidate c, int index, Tokenizer tok) {
    ObjectNode o = JSON.createObjectNode();
    if (p.original().has("id")) {
      o.set("id", p.original().get("id"));
    }
    o.put("line", p.line());
    o.put("prompt", p.text() != null ? p.text() : tok != null ? tok.decode(p.ids()) : null);
    int[] resp = c.generation().responseIds();
    o.put("response", tok == null ? null : tok.decode(resp));
    ArrayNode ids = o.putArray("response_ids");
    for (int id : resp) {
      ids.add(id);
    }
    o.put("index", index);
    o.put("finished", c.generation().finished());
    MemberScores s = c.scores();
    o.put("reward", (float) s.reward());
    if (s.members().length > 1) {
      ArrayNode m = o.putArray("members");
      for (float v : s.members()) {
        m.add(v);
      }
      o.put("mean", (float) s.mean());
      o.put("std", (float) s.std());
    }
    return o;
  }

  private ObjectNode summarize(List<BestOfNRunner.Result> results, int prompts, double sampleSeconds, double scoreSeconds) {
    ObjectNode s = JSON.createObjectNode();
    s.put("n", n);
    s.put("prompts", prompts);
    s.put("kl_analytic", BestOfN.kl(n));
    double selected = 0;
    double sample = 0;
    for (BestOfNRunner.Result r : results) {
      selected += r.best().scores().reward();
      for (BestOfNRunner.Candidate c : r.candidates()) {
        sample += c.scores().reward() / r.candidates().size();
      }
    }
    s.put("mean_selected_reward", selected / prompts);
    s.put("mean_sample_reward", sample / prompts);
    ObjectNode byN = s.putObject("expected_reward_by_n");
    for (int k = 1; k <= n; k *= 2) {
      byN.put(Integer.toString(k), expectedAt(results, k));
    }
    if (Integer.bitCount(n) != 1) {
      byN.put(Integer.toString(n), expectedAt(results, n));
    }
    s.put("sampling_seconds", sampleSeconds);
    s.put("scoring_seconds", scoreSeconds);
    return s;
  }

  private static double expectedAt(List<BestOfNRunner.Result> results, int k) {
    double sum = 0;
    for (BestOfNRunner.Result r : results) {
      double[] scores = r.candidates().stream().mapToDouble(c -> c.scores().reward()).toArray();
      sum += BestOfN.expected(scores, scores, k);
    }
    return sum / results.size();
  }
}
