package dev.rewardensemble.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.api.Provenance;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.PromptRow;
import dev.rewardensemble.data.PromptRows;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.model.Transformers;
import dev.rewardensemble.rl.KlPenalty;
import dev.rewardensemble.rl.PpoConfig;
import dev.rewardensemble.rl.PpoRun;
import dev.rewardensemble.rl.PpoTrainer;
import dev.rewardensemble.rl.SequenceScorer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme ppo}: PPO finetuning of a policy against a reward model or ensemble. */
@Command(
    name = "ppo",
    mixinStandardHelpOptions = true,
    description = {
      "PPO finetuning of a causal-LM policy against a reward model or ensemble.",
      "Any ensemble kind works as the reward (a LoRA ensemble keeps",
      "all K members in memory once). Defaults are the paper's (Table 4 and 6): rollout batch 64, step batch 32,",
      "2 epochs per rollout, lr 1e-5, 5 warmup steps, KL 0.02, value coefficient 0.1, temperature 0.7, top-p 0.9.",
      "Per-iteration metrics go to RUN_DIR/metrics.jsonl; the final policy to RUN_DIR/policy (Hugging Face layout)."
    })
public final class PpoCommand implements Callable<Integer> {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Option(
      names = "--policy",
      required = true,
      description = "Causal LM checkpoint (the SFT model).")
  Path policy;

  @Option(
      names = "--reward-model",
      required = true,
      description = "Reward model or ensemble (run dir, checkpoint, or base with --lora).")
  Path rewardModel;

  @Option(names = "--lora", split = ",", description = "PEFT adapters over --reward-model.")
  List<Path> lora;

  @Option(
      names = "--prompts",
      required = true,
      description = "JSONL rows {\"prompt\": ..} or {\"input_ids\": [..]}.")
  Path prompts;

  @Option(names = "--out", required = true, description = "Run directory.")
  Path out;

  @Option(
      names = "--iterations",
      defaultValue = "20",
      description = "PPO iterations (rollouts) (default: ${DEFAULT-VALUE}).")
  int iterations;

  @CommandLine.Mixin AggregationOptions aggregation = new AggregationOptions();

  @Option(names = "--rollout-batch", defaultValue = "64")
  int rolloutBatch;

  @Option(names = "--step-batch", defaultValue = "32")
  int stepBatch;

  @Option(names = "--epochs-per-rollout", defaultValue = "2")
  int epochs;

  @Option(names = "--lr", defaultValue = "1e-5")
  double lr;

  @Option(names = "--warmup-steps", defaultValue = "5")
  int warmup;

  @Option(names = "--kl-coef", defaultValue = "0.02")
  double klCoef;

  @Option(
      names = "--kl-estimator",
      defaultValue = "k1",
      description = "k1 or k3 (default: ${DEFAULT-VALUE}).")
  String klEstimator;

  @Option(
      names = "--kl-target",
      description = "Adaptive KL controller target (nats per sequence); off when absent.")
  Double klTarget;

  @Option(names = "--kl-horizon", defaultValue = "10000")
  int klHorizon;

  @Option(names = "--gamma", defaultValue = "1.0")
  double gamma;

  @Option(names = "--lambda-gae", defaultValue = "0.95")
  double lambdaGae;

  @Option(names = "--clip", defaultValue = "0.2")
  double clip;

  @Option(names = "--value-clip", defaultValue = "0.2")
  double valueClip;

  @Option(names = "--value-coef", defaultValue = "0.1")
  double valueCoef;

  @Option(names = "--no-whiten", description = "Do not whiten advantages.")
  boolean noWhiten;

  @Option(
      names = "--missing-eos-penalty",
      defaultValue = "0",
      description = "Subtracted from the score of a response that never ends.")
  double eosPenalty;

  @Option(names = "--temperature", defaultValue = "0.7")
  double temperature;

  @Option(names = "--top-p", defaultValue = "0.9")
  double topP;

  @Option(names = "--max-new-tokens", defaultValue = "300")
  int maxNewTokens;

  @Option(names = "--seed", defaultValue = "42")
  long seed;

  @Option(
      names = "--save-every",
      defaultValue = "0",
      description = "Checkpoint every N iterations.")
  int saveEvery;

  @Option(names = "--keep-checkpoints", defaultValue = "2")
  int keep;

  @Option(names = "--resume", description = "Continue the run in --out from its newest checkpoint.")
  boolean resume;

  @Option(
      names = "--template",
      defaultValue = "alpaca",
      description =
          "Prompt template for text prompts: alpaca, raw or chat; conversational prompts"
              + " (\"messages\") always use the chat template (default: ${DEFAULT-VALUE}).")
  String template;

  @Option(
      names = "--recompute",
      description =
          "Keep only each block's input of the policy and the value model for the backward pass"
              + " and recompute the block there: the same gradients with one block's activations"
              + " instead of every block's, for a second forward of both models in each update. An"
              + " execution choice: a run resumes with or without it.")
  boolean recompute;

  @CommandLine.Mixin RewardTokenOption rewardToken = new RewardTokenOption();

  @CommandLine.Mixin ExecOptions execOptions = new ExecOptions();

  @Override
  public Integer call() throws Exception {
    Outputs.paths()
        .input("--policy", policy)
        .input("--reward-model", rewardModel)
        .inputs("--lora", lora)
        .inputFile("--prompts", prompts)
        .outputDir("--out", out)
        .check();
    // Locked before the models are loaded: a second process on the same --out is refused at once.
    try (dev.rewardensemble.io.DirLock lock = dev.rewardensemble.io.DirLock.runDir(out)) {
      return ppo();
    }
  }

  private Integer ppo() throws Exception {
    KlPenalty.Estimator est =
        switch (klEstimator) {
          case "k1" -> KlPenalty.Estimator.K1;
          case "k3" -> KlPenalty.Estimator.K3;
          default ->
              throw new UserError("--kl-estimator must be k1 or k3, got '" + klEstimator + "'");
        };
    PpoConfig cfg =
        PpoConfig.builder()
            .rolloutBatch(rolloutBatch)
            .stepBatch(stepBatch)
            .epochsPerRollout(epochs)
            .lr(lr)
            .warmupSteps(warmup)
            .klCoef(klCoef)
            .klEstimator(est)
            .adaptiveKl(klTarget == null ? null : new PpoConfig.AdaptiveKl(klTarget, klHorizon))
            .gamma(gamma)
            .lambda(lambdaGae)
            .clipRange(clip)
            .valueClipRange(valueClip)
            .valueCoef(valueCoef)
            .whitenAdvantages(!noWhiten)
            .missingEosPenalty(eosPenalty)
            .temperature(temperature)
            .topP(topP)
            .maxNewTokens(maxNewTokens)
            .seed(seed)
            .build();
    ExecConfig exec = execOptions.config().withRecompute(recompute);
    MemoryCheck.ppo(
            policy, rewardModel, lora, rolloutBatch, maxNewTokens, exec.weights(), recompute)
        .ifPresent(p -> MemoryCheck.require(p, "rme ppo with " + policy));
    // Validated from the headers; the weights stay on disk until streamed into the variables.
    HfCheckpoint.Checkpoint pol = HfCheckpoint.open(policy);
    if (pol.kind() != HfCheckpoint.Kind.CAUSAL_LM) {
      throw new UserError(
          policy
              + ": "
              + pol.architecture()
              + " has no language-model head; PPO needs a causal LM");
    }
    EnsembleModel em =
        lora == null || lora.isEmpty()
            ? null
            : EnsembleModel.load(rewardModel, lora, rewardToken.rule());
    try (RewardModel rm =
        em != null
            ? RewardModel.of(em, exec)
            : RewardModel.load(rewardModel, null, exec, rewardToken.rule())) {
      if (rm.config().vocabSize() != pol.config().vocabSize()) {
        throw new UserError(
            "the policy's vocabulary ("
                + pol.config().vocabSize()
                + ") differs from the reward model's ("
                + rm.config().vocabSize()
                + "): they must share a tokenizer");
      }
      // The value model starts from the reward model's trunk (AlpacaFarm); a SavedModel has no
      // readable weights.
      Map<String, FloatTensor> valueTrunk;
      dev.rewardensemble.config.ModelConfig valueConfig;
      if (Files.isRegularFile(rewardModel.resolve("saved_model.pb"))) {
        System.err.println(
            "rme ppo: the reward model is a SavedModel; the value model starts from the policy's trunk");
        valueConfig = pol.config();
        dev.rewardensemble.io.LazyWeights trunk = new dev.rewardensemble.io.LazyWeights();
        Transformers.parameterShapes(pol.config())
            .keySet()
            .forEach(k -> trunk.putFrom(k, pol.weights(), k));
        valueTrunk = trunk;
      } else {
        EnsembleModel m = em != null ? em : EnsembleModel.load(rewardModel);
        valueConfig = m.config();
        valueTrunk = m.trunkWeights();
      }
      SequenceScorer scorer =
          SequenceScorer.of(
              rm, aggregation.resolve(rm.aggregation()), pol.config().eosTokenId(), stepBatch);
      Path tokPath = policy.resolve("tokenizer.json");
      List<int[]> ids = new ArrayList<>();
      try (Tokenizer tok = Files.isRegularFile(tokPath) ? Tokenizer.load(tokPath) : null) {
        Encoder enc =
            new Encoder(
                tok,
                PromptTemplate.byName(template),
                pol.config().maxPositions() - maxNewTokens,
                OptionalInt.empty(),
                Encoder.Truncation.LEFT);
        for (PromptRow r :
            PromptRows.read(prompts, enc, OptionalInt.of(pol.config().vocabSize()))) {
          ids.add(r.ids());
        }
      }
      ObjectNode prov = JSON.createObjectNode();
      prov.put("policy", policy.toString());
      prov.put("reward_model", rewardModel.toString());
      prov.put("prompts", prompts.toString());
      prov.put(
          "aggregation",
          dev.rewardensemble.ensemble.Diagnostics.label(aggregation.resolve(rm.aggregation())));
      Provenance.addVersions(prov);
      try (PpoTrainer trainer =
          new PpoTrainer(pol.config(), pol.weights(), valueConfig, valueTrunk, scorer, cfg, exec)) {
        ProgressBar bar = new ProgressBar("ppo", "score", "kl");
        Path policyOut =
            PpoRun.run(
                trainer,
                pol.config(),
                Files.isRegularFile(tokPath) ? Optional.of(tokPath) : Optional.empty(),
                ids,
                cfg,
                new PpoRun.Options(out, iterations, saveEvery, keep, resume),
                prov,
                s ->
                    System.err.printf(
                        "%nppo iteration %d: score %.4f %s kl %.3f (coef %.4f) entropy %.3f clip %.3f value loss %.4f approx-kl %.4f len %.1f eos %.2f time %s%n",
                        s.iteration(),
                        s.meanScore(),
                        s.aggregations(),
                        s.kl(),
                        s.klCoef(),
                        s.entropy(),
                        s.clipFraction(),
                        s.valueLoss(),
                        s.approxKl(),
                        s.meanResponseLength(),
                        s.eosFraction(),
                        s.seconds()),
                bar);
        System.err.printf(
            "PPO finished: policy -> %s, metrics -> %s%n", policyOut, out.resolve("metrics.jsonl"));
      }
    }
    return 0;
  }
}
