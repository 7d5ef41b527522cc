package dev.rewardensemble.cli;

import com.fasterxml.jackson.databind.JsonNode;
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
import dev.rewardensemble.rl.Generation;
import dev.rewardensemble.rl.Sampler;
import dev.rewardensemble.rl.SamplingConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code rme eval}: a policy's answers in AlpacaEval's and MT-Bench's formats, optionally judged by
 * a reward model.
 */
@Command(
    name = "eval",
    mixinStandardHelpOptions = true,
    description = {
      "Answer an evaluation set with a policy, in AlpacaEval and MT-Bench formats, optionally judged.",
      "Prompt rows: {\"prompt\": ..} or AlpacaEval's {\"instruction\": .., \"input\": ..} or MT-Bench questions",
      "{\"question_id\": .., \"turns\": [..]} (the first turn is answered). Writes OUT/alpaca_eval.json",
      "([{instruction, output, generator}]) and OUT/mt_bench_answers.jsonl (question_id, answer_id, model_id,",
      "choices[0].turns). With --judge, any reward model or ensemble (e.g. an imported Hugging Face reward model)",
      "scores every answer; with --reference (an alpaca_eval.json of another model) the win rate against it",
      "(ties count one half) is computed: OUT/judged.jsonl and OUT/summary.json."
    })
public final class EvalCommand implements Callable<Integer> {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Option(names = "--policy", required = true, description = "Causal LM checkpoint to evaluate.")
  Path policy;

  @Option(
      names = "--prompts",
      required = true,
      description = "Evaluation prompts (JSONL or JSON array).")
  Path prompts;

  @Option(names = "--out", required = true, description = "Output directory.")
  Path out;

  @Option(
      names = "--generator",
      description =
          "Model name written as generator / model_id (default: the policy directory's name).")
  String generator;

  @Option(names = "--judge", description = "Reward model or ensemble that judges the answers.")
  Path judge;

  @Option(names = "--judge-lora", split = ",", description = "PEFT adapters over --judge.")
  List<Path> judgeLora;

  @Option(
      names = "--reference",
      description =
          "AlpacaEval-format outputs of a reference model (same instructions) to compute the win rate against.")
  Path reference;

  @CommandLine.Mixin AggregationOptions aggregation = new AggregationOptions();

  @Option(names = "--max-new-tokens", defaultValue = "300")
  int maxNewTokens;

  @Option(
      names = "--greedy",
      description =
          "Greedy decoding (default: temperature 0.7, top-p 0.9 as in the paper's PPO decoding).")
  boolean greedy;

  @Option(names = "--temperature", defaultValue = "0.7")
  double temperature;

  @Option(names = "--top-p", defaultValue = "0.9")
  double topP;

  @Option(names = "--seed", defaultValue = "42")
  long seed;

  @Option(names = "--batch-size", defaultValue = "16")
  int batchSize;

  @Option(
      names = "--template",
      defaultValue = "alpaca",
      description =
          "Prompt template: alpaca, raw or chat; conversational prompts (\"messages\") always"
              + " use the chat template (default: ${DEFAULT-VALUE}).")
  String template;

  @CommandLine.Mixin RewardTokenOption rewardToken = new RewardTokenOption();

  @CommandLine.Mixin ExecOptions execOptions = new ExecOptions();

  @Override
  public Integer call() throws Exception {
    Outputs.paths()
        .input("--policy", policy)
        .inputFile("--prompts", prompts)
        .input("--judge", judge)
        .inputs("--judge-lora", judgeLora)
        .inputFile("--reference", reference)
        .outputFilesIn(
            "--out",
            out,
            "alpaca_eval.json",
            "mt_bench_answers.jsonl",
            "judged.jsonl",
            "summary.json")
        .check();
    ExecConfig exec = execOptions.config();
    SamplingConfig cfg =
        greedy
            ? SamplingConfig.greedy(maxNewTokens)
            : new SamplingConfig(maxNewTokens, false, temperature, topP, 0, seed, true);
    String name =
        generator != null
            ? generator
            : policy.toAbsolutePath().normalize().getFileName().toString();
    List<PromptRow> rows;
    List<String> answers = new ArrayList<>();
    List<int[]> answerIds = new ArrayList<>();
    MemoryCheck.generate(policy, batchSize, maxNewTokens, exec.weights())
        .ifPresent(p -> MemoryCheck.require(p, "rme eval with " + policy));
    try (Sampler sampler = Sampler.load(policy, exec)) {
      Path tokPath =
          sampler
              .tokenizer()
              .orElseThrow(
                  () ->
                      new UserError(
                          policy + " has no tokenizer.json: rme eval writes text answers"));
      try (Tokenizer tok = Tokenizer.load(tokPath)) {
        int maxPrompt = sampler.config().maxPositions() - maxNewTokens;
        if (maxPrompt < 1) {
          throw new UserError("--max-new-tokens " + maxNewTokens + " leaves no room for a prompt");
        }
        Encoder enc =
            new Encoder(
                tok,
                PromptTemplate.byName(template),
                maxPrompt,
                OptionalInt.empty(),
                Encoder.Truncation.LEFT);
        rows = PromptRows.read(prompts, enc, OptionalInt.of(sampler.config().vocabSize()));
        List<int[]> ids = new ArrayList<>();
        rows.forEach(r -> ids.add(r.ids()));
        int eos = sampler.config().eosTokenId();
        for (Generation g : sampler.generate(ids, cfg, batchSize)) {
          int[] r = g.responseIds();
          int end = r.length > 0 && r[r.length - 1] == eos ? r.length - 1 : r.length;
          answerIds.add(Arrays.copyOf(r, end));
          answers.add(tok.decode(Arrays.copyOf(r, end)));
        }
      }
    }
    ArrayNode alpaca = JSON.createArrayNode();
    List<String> mtBench = new ArrayList<>();
    long now = System.currentTimeMillis() / 1000;
    for (int i = 0; i < rows.size(); i++) {
      PromptRow p = rows.get(i);
      ObjectNode a = alpaca.addObject();
      a.put("instruction", instruction(p));
      if (p.original().hasNonNull("input")) {
        a.set("input", p.original().get("input"));
      }
      a.put("output", answers.get(i));
      a.put("generator", name);
      ObjectNode m = JSON.createObjectNode();
      m.set(
          "question_id",
          p.original().has("question_id")
              ? p.original().get("question_id")
              : JSON.valueToTree(p.line()));
      m.put("answer_id", name + "-" + p.line());
      m.put("model_id", name);
      ObjectNode choice = m.putArray("choices").addObject();
      choice.put("index", 0);
      choice.putArray("turns").add(answers.get(i));
      m.put("tstamp", now);
      mtBench.add(JSON.writeValueAsString(m));
    }
    Files.createDirectories(out);
    Outputs.writeLines(
        out.resolve("alpaca_eval.json"),
        List.of(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(alpaca)));
    Outputs.writeLines(out.resolve("mt_bench_answers.jsonl"), mtBench);
    System.err.printf(
        "%d answers by %s -> %s (alpaca_eval.json, mt_bench_answers.jsonl)%n",
        rows.size(), name, out);
    if (judge != null) {
      judge(rows, answers, exec);
    } else if (reference != null) {
      throw new UserError("--reference needs --judge");
    }
    return 0;
  }

  private static String instruction(PromptRow p) {
    JsonNode o = p.original();
    for (String k : List.of("instruction", "prompt")) {
      if (o.hasNonNull(k)) {
        return o.get(k).asText();
      }
    }
    if (o.has("turns")) {
      return o.get("turns").get(0).asText();
    }
    return p.text();
  }

  private void judge(List<PromptRow> rows, List<String> answers, ExecConfig exec) throws Exception {
    MemoryCheck.score(judge, judgeLora, batchSize, null, exec.weights())
        .ifPresent(p -> MemoryCheck.require(p, "rme eval's judge " + judge));
    try (RewardModel rm = RewardModel.load(judge, judgeLora, exec, rewardToken.rule())) {
      Path tokPath =
          rm.tokenizer()
              .orElseThrow(
                  () ->
                      new UserError(
                          judge
                              + " has no tokenizer.json: the judge must tokenize the answers itself"));
      AggregationConfig agg = aggregation.resolve(rm.aggregation());
      List<String> refs = reference == null ? null : readReference(reference, rows);
      try (Tokenizer tok = Tokenizer.load(tokPath)) {
        Encoder enc =
            new Encoder(
                tok,
                PromptTemplate.byName(template),
                rm.config().maxPositions(),
                OptionalInt.empty(),
                Encoder.Truncation.LEFT);
        List<int[]> seqs = new ArrayList<>();
        for (int i = 0; i < rows.size(); i++) {
          String input =
              rows.get(i).original().hasNonNull("input")
                  ? rows.get(i).original().get("input").asText()
                  : "";
          seqs.add(enc.encode(instruction(rows.get(i)), input, answers.get(i)).ids());
          if (refs != null) {
            seqs.add(enc.encode(instruction(rows.get(i)), input, refs.get(i)).ids());
          }
        }
        float[][] raw = rm.score(seqs, batchSize);
        int step = refs == null ? 1 : 2;
        List<String> judged = new ArrayList<>();
        double sum = 0;
        double wins = 0;
        for (int i = 0; i < rows.size(); i++) {
          MemberScores s = rm.aggregate(raw[i * step], agg);
          sum += s.reward();
          ObjectNode j = JSON.createObjectNode();
          j.put("instruction", instruction(rows.get(i)));
          j.put("output", answers.get(i));
          j.put("reward", s.reward());
          if (s.members().length > 1) {
            j.set("members", JSON.valueToTree(s.members()));
          }
          if (refs != null) {
            double r = rm.aggregate(raw[i * step + 1], agg).reward();
            // Identical answers, or rewards equal up to float noise from batching, are ties.
            boolean tie =
                answers.get(i).equals(refs.get(i))
                    || Math.abs(s.reward() - r)
                        <= 1e-6 * Math.max(1, Math.max(Math.abs(s.reward()), Math.abs(r)));
            double w = tie ? 0.5 : s.reward() > r ? 1 : 0;
            wins += w;
            j.put("reference_output", refs.get(i));
            j.put("reference_reward", r);
            j.put("win", w);
          }
          judged.add(JSON.writeValueAsString(j));
        }
        Outputs.writeLines(out.resolve("judged.jsonl"), judged);
        ObjectNode summary = JSON.createObjectNode();
        summary.put("prompts", rows.size());
        summary.put("judge", judge.toString());
        summary.put("aggregation", dev.rewardensemble.ensemble.Diagnostics.label(agg));
        summary.put("mean_reward", sum / rows.size());
        if (refs != null) {
          summary.put("reference", reference.toString());
          summary.put("win_rate", wins / rows.size());
        }
        Outputs.writeLines(
            out.resolve("summary.json"),
            List.of(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(summary)));
        System.err.printf(
            "judged by %s: mean reward %.4f%s%n",
            judge,
            sum / rows.size(),
            refs == null
                ? ""
                : String.format(", win rate vs %s %.3f (ties 1/2)", reference, wins / rows.size()));
      }
    }
  }

  /** The reference model's outputs in prompt order, matched by instruction. */
  private static List<String> readReference(Path file, List<PromptRow> rows) throws Exception {
    JsonNode ref;
    try {
      ref = JSON.readTree(file.toFile());
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new UserError(
          file
              + ": invalid JSON at line "
              + e.getLocation().getLineNr()
              + ": "
              + e.getOriginalMessage());
    }
    if (ref == null || !ref.isArray()) {
      throw new UserError(file + ": expected an AlpacaEval JSON array of {instruction, output}");
    }
    java.util.Map<String, String> byInstruction = new java.util.HashMap<>();
    for (int i = 0; i < ref.size(); i++) {
      JsonNode r = ref.get(i);
      if (!r.hasNonNull("instruction") || !r.hasNonNull("output")) {
        throw new UserError(file + ": element " + i + ": needs \"instruction\" and \"output\"");
      }
      byInstruction.put(r.get("instruction").asText(), r.get("output").asText());
    }
    List<String> out = new ArrayList<>();
    for (PromptRow p : rows) {
      String o = byInstruction.get(instruction(p));
      if (o == null) {
        throw new UserError(file + ": no reference output for the instruction of line " + p.line());
      }
      out.add(o);
    }
    return out;
  }
}
