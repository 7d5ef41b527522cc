package dev.rewardensemble.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.PromptRow;
import dev.rewardensemble.data.PromptRows;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.rl.Generation;
import dev.rewardensemble.rl.Sampler;
import dev.rewardensemble.rl.SamplingConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme generate}: one sampled response per prompt row, same order. */
@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description = {
      "Generate responses with a causal LM checkpoint (LlamaForCausalLM, Qwen2ForCausalLM,"
          + " Qwen3ForCausalLM, MistralForCausalLM, Gemma2ForCausalLM or GPT2LMHeadModel).",
      "Input rows: {\"input_ids\": [..]} or {\"prompt\": \"..\"[, \"input\": \"..\"]} (text is formatted with",
      "the prompt template and tokenized with the model's tokenizer.json).",
      "Output rows, in input order: {\"line\", \"prompt\", \"response\", \"response_ids\", \"token_logprobs\",",
      "\"finished\"} (plus \"id\" when the input row has one). prompt/response are text (null without a",
      "tokenizer); token_logprobs are log p of each response id under the unmodified model; finished",
      "means the response ended with EOS (which is in response_ids but not in the response text)."
    })
public final class GenerateCommand implements Callable<Integer> {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Option(
      names = "--model",
      required = true,
      description = "Hugging Face causal-LM checkpoint directory.")
  Path model;

  @Option(names = "--prompts", required = true, description = "Input JSONL file of prompts.")
  Path prompts;

  @Option(
      names = "--out",
      description = "Output JSONL file, or - for standard output (the default).")
  Path out;

  @Option(
      names = "--max-new-tokens",
      required = true,
      description = "Most tokens generated per prompt.")
  int maxNewTokens;

  @Option(
      names = "--greedy",
      description = "Take the most likely token (no sampling options allowed).")
  boolean greedy;

  @Option(names = "--temperature", description = "Divides the logits (default 1.0).")
  Double temperature;

  @Option(names = "--top-p", description = "Nucleus mass in (0, 1] (default 1.0 = off).")
  Double topP;

  @Option(names = "--top-k", description = "Keep the k most likely tokens (default 0 = off).")
  Integer topK;

  @Option(names = "--seed", description = "Seed of the draws (required unless --greedy).")
  Long seed;

  @Option(names = "--ignore-eos", description = "Keep generating after the end-of-sequence token.")
  boolean ignoreEos;

  @Option(
      names = "--batch-size",
      defaultValue = "16",
      description = "Prompts per Session.run (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--tokenizer",
      description = "tokenizer.json (default: the one in the model directory).")
  Path tokenizer;

  @Option(
      names = "--template",
      defaultValue = "alpaca",
      description =
          "Prompt template for text rows: alpaca, raw or chat (the tokenizer's chat template, as a"
              + " user/assistant conversation); conversational rows (\"messages\") always use the"
              + " chat template (default: ${DEFAULT-VALUE}).")
  String template;

  @CommandLine.Mixin ExecOptions execOptions = new ExecOptions();

  @Override
  public Integer call() throws Exception {
    Outputs.paths()
        .input("--model", model)
        .inputFile("--prompts", prompts)
        .inputFile("--tokenizer", tokenizer)
        .outputFile("--out", out)
        .check();
    if (batchSize < 1) {
      throw new UserError("--batch-size must be >= 1, got " + batchSize);
    }
    if (maxNewTokens < 1) {
      throw new UserError("--max-new-tokens must be >= 1, got " + maxNewTokens);
    }
    if (greedy && (temperature != null || topP != null || topK != null)) {
      throw new UserError("--greedy cannot be combined with --temperature, --top-p or --top-k");
    }
    if (!greedy && seed == null) {
      throw new UserError("--seed is required when sampling (or use --greedy)");
    }
    SamplingConfig cfg =
        new SamplingConfig(
            maxNewTokens,
            greedy,
            temperature == null ? 1.0 : temperature,
            topP == null ? 1.0 : topP,
            topK == null ? 0 : topK,
            seed == null ? 0L : seed,
            !ignoreEos);
    PromptTemplate tmpl = PromptTemplate.byName(template);
    MemoryCheck.generate(model, batchSize, maxNewTokens, execOptions.config().weights())
        .ifPresent(p -> MemoryCheck.require(p, "rme generate with " + model));
    try (Sampler sampler = Sampler.load(model, execOptions.config())) {
      int maxPrompt = sampler.config().maxPositions() - maxNewTokens;
      if (maxPrompt < 1) {
        throw new UserError(
            "--max-new-tokens "
                + maxNewTokens
                + " leaves no room for a prompt in the model's "
                + sampler.config().maxPositions()
                + " positions");
      }
      Path tokPath = tokenizer != null ? tokenizer : sampler.tokenizer().orElse(null);
      try (Tokenizer tok = tokPath == null ? null : Tokenizer.load(tokPath)) {
        Encoder enc =
            new Encoder(tok, tmpl, maxPrompt, OptionalInt.empty(), Encoder.Truncation.ERROR);
        List<PromptRow> rows =
            PromptRows.read(prompts, enc, OptionalInt.of(sampler.config().vocabSize()));
        List<int[]> ids = new ArrayList<>(rows.size());
        rows.forEach(r -> ids.add(r.ids()));
        List<Generation> gens = sampler.generate(ids, cfg, batchSize);
        List<String> lines = new ArrayList<>(rows.size());
        int finished = 0;
        long tokens = 0;
        for (int i = 0; i < rows.size(); i++) {
          Generation g = gens.get(i);
          finished += g.finished() ? 1 : 0;
          tokens += g.responseIds().length;
          lines.add(JSON.writeValueAsString(row(rows.get(i), g, tok)));
        }
        Outputs.writeLines(out, lines);
        if (!Outputs.isStdout(out)) {
          System.err.printf(
              "generated %d responses (%d tokens, %d ended with EOS) -> %s%n",
              rows.size(), tokens, finished, out);
        }
      }
    }
    return 0;
  }

  private static ObjectNode row(PromptRow in, Generation g, Tokenizer tok) {
    ObjectNode o = JSON.createObjectNode();
    if (in.original().has("id")) {
      o.set("id", in.original().get("id"));
    }
    o.put("line", in.line());
    String prompt = in.text() != null ? in.text() : tok != null ? tok.decode(in.ids()) : null;
    o.put("prompt", prompt);
    int[] text =
        g.finished() ? Arrays.copyOf(g.responseIds(), g.responseIds().length - 1) : g.responseIds();
    o.put("response", tok == null ? null : tok.decode(text));
    ArrayNode ids = o.putArray("response_ids");
    for (int id : g.responseIds()) {
      ids.add(id);
    }
    ArrayNode lps = o.putArray("token_logprobs");
    for (float lp : g.tokenLogprobs()) {
      lps.add(lp);
    }
    o.put("finished", g.finished());
    return o;
  }
}
