package dev.rewardensemble.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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

/**
 * {@code rme best-of-n}: n samples per prompt, scored by a reward model or ensemble, the best kept.
 */
@Command(
    name = "best-of-n",
    mixinStandardHelpOptions = true,
    description = {
      "Best-of-n: sample n responses per prompt, keep the one the reward model or ensemble scores best.",
      "For each prompt, n samples from the policy (defaults: the paper's temperature 1.0,",
      "top-p 0.9), scored in batches by a reward model or ensemble with the chosen aggregation; the best is kept.",
      "Output rows (input order): prompt, response, response_ids, index, reward, and members/mean/std for",
      "ensembles. The summary gives the expected reward of Best-of-n' for n' = 1, 2, 4, .., n from the same pool",
      "(exact over all subsets) and the analytic KL log n - (n-1)/n."
    })
public final class BestOfNCommand implements Callable<Integer> {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Option(
      names = "--policy",
      description =
          "Causal LM checkpoint (LlamaForCausalLM / GPT2LMHeadModel); not needed with --pool-in.")
  Path policy;

  @Option(
      names = "--pool-in",
      description =
          "Re-rank an existing pool (a --candidates-out file) instead of sampling: the same candidates scored by another reward model or aggregation.")
  Path poolIn;

  @Option(
      names = "--reward-model",
      required = true,
      description =
          "Reward model or ensemble (run dir, checkpoint, SavedModel, or base with --lora).")
  Path rewardModel;

  @Option(names = "--lora", split = ",", description = "PEFT adapters over --reward-model.")
  List<Path> lora;

  @Option(
      names = "--prompts",
      description =
          "JSONL rows {\"prompt\": ..} or {\"input_ids\": [..]} (required unless --pool-in).")
  Path prompts;

  @Option(
      names = "--n",
      defaultValue = "16",
      description = "Samples per prompt (default: ${DEFAULT-VALUE}).")
  int n;

  @Option(
      names = "--out",
      description = "Selected responses, JSONL, or - for standard output (the default).")
  Path out;

  @Option(
      names = "--candidates-out",
      description = "Every candidate with all members' rewards, JSONL.")
  Path candidatesOut;

  @Option(names = "--summary", description = "Summary JSON (expected reward against n, KL).")
  Path summary;

  @CommandLine.Mixin AggregationOptions aggregation = new AggregationOptions();

  @Option(
      names = "--no-normalize",
      description = "Aggregate raw member rewards even when the ensemble stores a normalisation.")
  boolean noNormalize;

  @Option(
      names = "--temperature",
      defaultValue = "1.0",
      description = "Sampling temperature (default: ${DEFAULT-VALUE}).")
  double temperature;

  @Option(
      names = "--top-p",
      defaultValue = "0.9",
      description = "Nucleus sampling (default: ${DEFAULT-VALUE}).")
  double topP;

  @Option(
      names = "--top-k",
      defaultValue = "0",
      description = "Top-k, 0 = off (default: ${DEFAULT-VALUE}).")
  int topK;

  @Option(
      names = "--max-new-tokens",
      defaultValue = "300",
      description = "Longest response (default: ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(
      names = "--seed",
      defaultValue = "42",
      description = "Sampling seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(
      names = "--batch-size",
      defaultValue = "16",
      description = "Sequences per Session.run (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--template",
      defaultValue = "alpaca",
      description =
          "Prompt template for text prompts: alpaca, raw or chat; conversational prompts"
              + " (\"messages\") always use the chat template (default: ${DEFAULT-VALUE}).")
  String template;

  @Option(names = "--tokenizer", description = "tokenizer.json (default: the policy's).")
  Path tokenizer;

  @CommandLine.Mixin RewardTokenOption rewardToken = new RewardTokenOption();

  @CommandLine.Mixin ExecOptions execOptions = new ExecOptions();

  @Override
  public Integer call() throws Exception {
    Outputs.paths()
        .input("--policy", policy)
        .inputFile("--pool-in", poolIn)
        .input("--reward-model", rewardModel)
        .inputs("--lora", lora)
        .inputFile("--prompts", prompts)
        .inputFile("--tokenizer", tokenizer)
        .outputFile("--out", out)
        .outputFile("--candidates-out", candidatesOut)
        .outputFile("--summary", summary)
        .check();
    if (n < 1) {
      throw new UserError("--n must be >= 1, got " + n);
    }
    if (batchSize < 1) {
      throw new UserError("--batch-size must be >= 1, got " + batchSize);
    }
    SamplingConfig cfg =
        new SamplingConfig(maxNewTokens, false, temperature, topP, topK, seed, true);
    ExecConfig exec = execOptions.config();
    if (poolIn == null && (policy == null || prompts == null)) {
      throw new UserError(
          "--policy and --prompts are required unless --pool-in re-ranks an existing pool");
    }
    MemoryCheck.requireAll(
        "rme best-of-n",
        List.of(
            MemoryCheck.score(rewardModel, lora, batchSize, null, exec.weights()),
            poolIn != null
                ? java.util.Optional.empty()
                : MemoryCheck.generate(policy, batchSize, maxNewTokens, exec.weights())),
        List.of("reward model", "policy"));
    try (RewardModel rm = RewardModel.load(rewardModel, lora, exec, rewardToken.rule())) {
      AggregationConfig agg = aggregation.resolve(rm.aggregation());
      List<PromptInfo> infos = new ArrayList<>();
      List<List<Generation>> pool;
      int eosId;
      Path tokPath;
      long t0 = System.nanoTime();
      if (poolIn != null) {
        Pool read = readPool(poolIn, rm.config().vocabSize());
        pool = read.pool();
        infos = read.infos();
        eosId = read.eosId();
        n = pool.get(0).size();
        tokPath = tokenizer != null ? tokenizer : rm.tokenizer().orElse(null);
      } else {
        try (Sampler sampler = Sampler.load(policy, exec)) {
          if (rm.config().vocabSize() != sampler.config().vocabSize()) {
            throw new UserError(
                "the policy's vocabulary ("
                    + sampler.config().vocabSize()
                    + ") differs from the reward model's ("
                    + rm.config().vocabSize()
                    + "): they must share a tokenizer");
          }
          int maxPrompt = sampler.config().maxPositions() - maxNewTokens;
          if (maxPrompt < 1) {
            throw new UserError(
                "--max-new-tokens "
                    + maxNewTokens
                    + " leaves no room for a prompt in the policy's "
                    + sampler.config().maxPositions()
                    + " positions");
          }
          tokPath = tokenizer != null ? tokenizer : sampler.tokenizer().orElse(null);
          eosId = sampler.config().eosTokenId();
          try (Tokenizer tok = tokPath == null ? null : Tokenizer.load(tokPath)) {
            Encoder enc =
                new Encoder(
                    tok,
                    PromptTemplate.byName(template),
                    maxPrompt,
                    OptionalInt.empty(),
                    Encoder.Truncation.ERROR);
            List<int[]> ids = new ArrayList<>();
            for (PromptRow r :
                PromptRows.read(prompts, enc, OptionalInt.of(sampler.config().vocabSize()))) {
              ids.add(r.ids());
              infos.add(new PromptInfo(r.line(), r.original().get("id"), r.text()));
            }
            pool = BestOfNRunner.sample(sampler, ids, n, cfg, batchSize);
          }
        }
      }
      long t1 = System.nanoTime();
      float[][][] members = BestOfNRunner.score(rm, pool, eosId, batchSize);
      long t2 = System.nanoTime();
      List<BestOfNRunner.Result> results =
          BestOfNRunner.select(rm, pool, members, agg, !noNormalize);
      try (Tokenizer tok = tokPath == null ? null : Tokenizer.load(tokPath)) {
        List<String> lines = new ArrayList<>();
        List<String> candLines = new ArrayList<>();
        for (int i = 0; i < results.size(); i++) {
          BestOfNRunner.Result r = results.get(i);
          lines.add(JSON.writeValueAsString(row(infos.get(i), r.best(), r.selected(), tok, eosId)));
          if (candidatesOut != null) {
            for (int j = 0; j < r.candidates().size(); j++) {
              ObjectNode c = row(infos.get(i), r.candidates().get(j), j, tok, eosId);
              c.put("selected", j == r.selected());
              candLines.add(JSON.writeValueAsString(c));
            }
          }
        }
        Outputs.writeLines(out, lines);
        if (candidatesOut != null) {
          Outputs.writeLines(candidatesOut, candLines);
        }
      }
      ObjectNode s = summarize(results, results.size(), (t1 - t0) / 1e9, (t2 - t1) / 1e9);
      s.put("aggregation", dev.rewardensemble.ensemble.Diagnostics.label(agg));
      if (summary != null) {
        Outputs.writeLines(
            summary, List.of(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(s)));
      }
      System.err.printf(
          "best-of-%d over %d prompts (%s): mean selected reward %.4f, mean sample reward %.4f, KL %.4f nats%n",
          n,
          results.size(),
          s.get("aggregation").asText(),
          s.get("mean_selected_reward").asDouble(),
          s.get("mean_sample_reward").asDouble(),
          BestOfN.kl(n));
      System.err.printf("  expected reward by n (same pool): %s%n", s.get("expected_reward_by_n"));
      System.err.printf(
          "  %s %.1f s, scoring %.1f s%n",
          poolIn != null ? "reading the pool" : "sampling", (t1 - t0) / 1e9, (t2 - t1) / 1e9);
    }
    return 0;
  }

  /** What an output row says about its prompt. */
  private record PromptInfo(int line, JsonNode id, String text) {}

  private static ObjectNode row(
      PromptInfo p, BestOfNRunner.Candidate c, int index, Tokenizer tok, int eosId) {
    ObjectNode o = JSON.createObjectNode();
    if (p.id() != null) {
      o.set("id", p.id());
    }
    o.put("line", p.line());
    int[] promptIds = c.generation().promptIds();
    o.put("prompt", p.text() != null ? p.text() : tok != null ? tok.decode(promptIds) : null);
    int[] resp = c.generation().responseIds();
    int end = resp.length > 0 && resp[resp.length - 1] == eosId ? resp.length - 1 : resp.length;
    o.put("response", tok == null ? null : tok.decode(java.util.Arrays.copyOf(resp, end)));
    o.set("prompt_ids", JSON.valueToTree(promptIds));
    o.set("response_ids", JSON.valueToTree(resp));
    o.set("token_logprobs", JSON.valueToTree(c.generation().tokenLogprobs()));
    o.put("eos_token_id", eosId);
    o.put("index", index);
    o.put("finished", c.generation().finished());
    MemberScores s = c.scores();
    o.put("reward", (float) s.reward());
    if (s.members().length > 1) {
      o.set("members", JSON.valueToTree(s.members()));
      o.put("mean", (float) s.mean());
      o.put("std", (float) s.std());
    }
    return o;
  }

  /** A pool read back from a {@code --candidates-out} file. */
  private record Pool(List<List<Generation>> pool, List<PromptInfo> infos, int eosId) {}

  private static Pool readPool(Path file, int vocab) throws java.io.IOException {
    java.util.LinkedHashMap<Integer, List<Generation>> byLine = new java.util.LinkedHashMap<>();
    java.util.Map<Integer, PromptInfo> infos = new java.util.HashMap<>();
    int eos = -1;
    int lineNo = 0;
    for (String line : java.nio.file.Files.readAllLines(file)) {
      lineNo++;
      if (line.isBlank()) {
        continue;
      }
      JsonNode r;
      try {
        r = JSON.readTree(line);
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new UserError(file + ":" + lineNo + ": invalid JSON: " + e.getOriginalMessage());
      }
      for (String key :
          List.of("line", "prompt_ids", "response_ids", "token_logprobs", "eos_token_id")) {
        if (!r.has(key)) {
          throw new UserError(
              file
                  + ":"
                  + lineNo
                  + ": "
                  + key
                  + ": missing (not a --candidates-out file of rme best-of-n)");
        }
      }
      int[] promptIds = JSON.convertValue(r.get("prompt_ids"), int[].class);
      int[] resp = JSON.convertValue(r.get("response_ids"), int[].class);
      float[] lps = JSON.convertValue(r.get("token_logprobs"), float[].class);
      for (int id : promptIds) {
        if (id < 0 || id >= vocab) {
          throw new UserError(
              file
                  + ":"
                  + lineNo
                  + ": prompt_ids: token "
                  + id
                  + " outside the reward model's vocabulary");
        }
      }
      eos = r.get("eos_token_id").asInt();
      int pl = r.get("line").asInt();
      byLine
          .computeIfAbsent(pl, k -> new ArrayList<>())
          .add(new Generation(promptIds, resp, lps, r.path("finished").asBoolean(false)));
      infos.putIfAbsent(
          pl,
          new PromptInfo(
              pl, r.get("id"), r.path("prompt").isTextual() ? r.get("prompt").asText() : null));
    }
    if (byLine.isEmpty()) {
      throw new UserError(file + ": no candidates");
    }
    int size = -1;
    List<List<Generation>> pool = new ArrayList<>();
    List<PromptInfo> info = new ArrayList<>();
    for (var e : byLine.entrySet()) {
      if (size >= 0 && e.getValue().size() != size) {
        throw new UserError(
            file
                + ": prompt of line "
                + e.getKey()
                + " has "
                + e.getValue().size()
                + " candidates, the first has "
                + size
                + " (every prompt needs the same pool size)");
      }
      size = e.getValue().size();
      pool.add(e.getValue());
      info.add(infos.get(e.getKey()));
    }
    return new Pool(pool, info, eos);
  }

  private ObjectNode summarize(
      List<BestOfNRunner.Result> results, int prompts, double sampleSeconds, double scoreSeconds) {
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
