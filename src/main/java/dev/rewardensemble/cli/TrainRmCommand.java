package dev.rewardensemble.cli;

import dev.rewardensemble.api.EnsembleOptions;
import dev.rewardensemble.api.RewardTraining;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.Recomputation;
import dev.rewardensemble.data.PreferenceFormat;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.MemoryPlan;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme train-rm}: Bradley-Terry reward-model training. */
@Command(
    name = "train-rm",
    mixinStandardHelpOptions = true,
    description = {
      "Train a reward model on preference pairs with the Bradley-Terry loss.",
      "Defaults are the paper's (lr 3e-6, 1 epoch, grad accumulation 2, warmup 0.03, cosine, weight decay 0);",
      "--lora switches to its LoRA settings (lr 5e-5, constant)."
    })
public final class TrainRmCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      description = "Base: Hugging Face checkpoint dir, run dir, or tf-graphs/*.json preset.")
  Path model;

  @Option(
      names = "--data",
      required = true,
      description =
          "Preference data: AlpacaFarm (JSON array or JSONL), TRL or pre-tokenized JSONL.")
  Path data;

  @Option(names = "--out", required = true, description = "Run directory.")
  Path out;

  @Option(
      names = "--format",
      defaultValue = "auto",
      description = "Data format: auto, alpaca_farm, trl, tokenized (default: ${DEFAULT-VALUE}).")
  String format;

  @Option(
      names = "--lora",
      description = "Use the paper's LoRA training defaults (lr 5e-5, constant schedule).")
  boolean lora;

  @Option(names = "--epochs", description = "Passes over the training split (default 1).")
  Integer epochs;

  @Option(names = "--steps", description = "Optimizer steps; overrides --epochs.")
  Integer steps;

  @Option(
      names = "--batch-size",
      description = "Pairs per micro-batch (default 8); a step uses batch-size x grad-accum pairs.")
  Integer batchSize;

  @Option(names = "--grad-accum", description = "Micro-batches per optimizer step (default 2).")
  Integer gradAccum;

  @Option(names = "--lr", description = "Peak learning rate (default 3e-6; 5e-5 with --lora).")
  Double lr;

  @Option(names = "--weight-decay", description = "AdamW decoupled weight decay (default 0).")
  Double weightDecay;

  @Option(
      names = "--schedule",
      description = "cosine or constant (default cosine; constant with --lora).")
  String schedule;

  @Option(
      names = "--warmup-ratio",
      description = "Fraction of steps with linear warmup (default 0.03).")
  Double warmupRatio;

  @Option(
      names = "--max-grad-norm",
      description = "Global gradient-norm clipping, 0 = off (default 1.0).")
  Double maxGradNorm;

  @Option(names = "--eval-fraction", description = "Held-out fraction, 0 = no split (default 0.1).")
  Double evalFraction;

  @Option(
      names = "--eval-every",
      description = "Evaluate every N steps (default: only at the end).")
  Integer evalEvery;

  @Option(
      names = "--save-every",
      description = "Checkpoint every N steps (default: only the final model).")
  Integer saveEvery;

  @Option(names = "--keep-checkpoints", description = "Newest checkpoints kept (default 2).")
  Integer keepCheckpoints;

  @Option(
      names = "--centering",
      description = "Reward-centering coefficient: adds coef * mean((r_c + r_r)^2) (default 0).")
  Double centering;

  @Option(
      names = "--swa",
      paramLabel = "FRACTION",
      description =
          "Stochastic weight averaging: save the mean of the weights after each of the last"
              + " FRACTION of the optimizer steps (every phase), the learning rate held from the"
              + " window's first step; 0 = off (default 0).")
  Double swa;

  @Option(
      names = "--max-length",
      defaultValue = "0",
      description =
          "Longest sequence; the prompt is cut from the left (default: the model's positions).")
  int maxLength;

  @Option(
      names = "--seed",
      description = "Seed of head initialisation, data order and split (default 42).")
  Long seed;

  @Option(
      names = "--ensemble",
      defaultValue = "single",
      description = "single, independent, linear or lora (default: ${DEFAULT-VALUE}).")
  String ensemble;

  @Option(
      names = "--k",
      description = "Ensemble members K (default 3 for ensembles, 1 for single).")
  Integer k;

  @Option(
      names = "--bootstrap",
      description =
          "linear / LoRA phase 1: each head trains on its own Poisson(1) bootstrap resample of every"
              + " batch (for linear the same as --member-data poisson).")
  boolean bootstrap;

  @Option(
      names = "--member-data",
      defaultValue = "shared",
      description =
          "Which pairs each member learns from, in the linear ensemble's run and the LoRA"
              + " ensemble's phase 2: shared (all), poisson (fresh Poisson(1) counts every batch),"
              + " bootstrap (its own resample of the split, fixed for the run) or disjoint (its own"
              + " 1/K part of the split) (default: ${DEFAULT-VALUE}).")
  String memberData;

  @Option(
      names = "--prior-scale",
      defaultValue = "0",
      description =
          "Randomized prior: each member's reward is its trained head plus this times a fixed,"
              + " seeded random head on the same hidden state, folded into the saved head"
              + " (default: ${DEFAULT-VALUE}, none).")
  double priorScale;

  @Option(
      names = "--diversity-weight",
      defaultValue = "0",
      description =
          "LoRA: weight of a regulariser that maximises the nuclear norm of the members' stacked,"
              + " normalised lora_A matrices, pushing the adapters apart (default: ${DEFAULT-VALUE},"
              + " none).")
  double diversityWeight;

  @Option(
      names = "--phase1-fraction",
      defaultValue = "0.5",
      description = "LoRA: share of the training split for phase 1 (default: ${DEFAULT-VALUE}).")
  double phase1Fraction;

  @Option(
      names = "--phase1-data",
      description = "LoRA: separate preference file for phase 1 (then all of --data is phase 2).")
  Path phase1Data;

  @Option(
      names = "--lora-rank",
      defaultValue = "8",
      split = ",",
      description =
          "LoRA rank r, or one per member (e.g. 4,8,16 for --k 3: each member its own rank, saved"
              + " as a PEFT adapter of that rank) (default: ${DEFAULT-VALUE}).")
  List<Integer> loraRank;

  @Option(
      names = "--lora-alpha",
      defaultValue = "16",
      description = "LoRA alpha; scaling alpha/r (default: ${DEFAULT-VALUE}).")
  double loraAlpha;

  @Option(
      names = "--lora-dropout",
      defaultValue = "0.05",
      description = "Dropout on the adapters' input in training (default: ${DEFAULT-VALUE}).")
  double loraDropout;

  @Option(
      names = "--lora-targets",
      split = ",",
      description =
          "Modules: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj (Llama, Qwen2, Qwen3, Mistral, Gemma 2) or c_attn,c_proj,c_fc (GPT-2); default all.")
  List<String> loraTargets;

  @Option(
      names = "--lora-layers",
      defaultValue = "0",
      description =
          "Adapters only in the top N blocks (0 = all): lower blocks run once for all members.")
  int loraLayers;

  @Option(
      names = "--lora-lr",
      defaultValue = "5e-5",
      description = "LoRA phase 2 learning rate (default: ${DEFAULT-VALUE}, the paper's).")
  double loraLr;

  @Option(
      names = "--lora-schedule",
      defaultValue = "constant",
      description = "LoRA phase 2 schedule (default: ${DEFAULT-VALUE}).")
  String loraSchedule;

  @CommandLine.Mixin AggregationOptions aggregation = new AggregationOptions();

  @Option(
      names = "--no-normalize",
      description = "Do not store a per-member normalisation measured on the training responses.")
  boolean noNormalize;

  @Option(
      names = "--tokenizer",
      description = "tokenizer.json for text data (default: the model's).")
  Path tokenizer;

  @Option(
      names = "--template",
      defaultValue = "alpaca",
      description =
          "Prompt template for text rows: alpaca, raw or chat (the tokenizer's chat template, as a"
              + " user/assistant conversation); conversational rows (chosen/rejected message lists)"
              + " always use the chat template (default: ${DEFAULT-VALUE}).")
  String template;

  @Option(
      names = "--skip-bad-rows",
      description = "Skip and count malformed rows instead of stopping at the first.")
  boolean skipBadRows;

  @Option(names = "--resume", description = "Continue the run in --out from its newest checkpoint.")
  boolean resume;

  @Option(
      names = "--recompute",
      arity = "0..1",
      fallbackValue = "all",
      defaultValue = "none",
      paramLabel = "all|auto|N|none",
      description =
          "Keep only the input of the lowest blocks for the backward pass and recompute them"
              + " there: the same gradients with one block's activations instead of each"
              + " recomputed block's, for a second forward of those blocks. Alone or 'all': every"
              + " block; N: the lowest N; 'auto': the fewest that make the memory plan fit here"
              + " (none if it fits as it is). An execution choice: a run resumes with or without"
              + " it. Default: ${DEFAULT-VALUE}.")
  String recompute;

  @CommandLine.Mixin RewardTokenOption rewardToken = new RewardTokenOption();

  @CommandLine.Mixin ExecOptions execOptions = new ExecOptions();

  @Override
  public Integer call() throws Exception {
    Outputs.paths()
        .input("--model", model)
        .inputFile("--data", data)
        .inputFile("--phase1-data", phase1Data)
        .inputFile("--tokenizer", tokenizer)
        .outputDir("--out", out)
        .check();
    // Locked before anything is loaded: a second process on the same --out is refused at once.
    try (dev.rewardensemble.io.DirLock lock = dev.rewardensemble.io.DirLock.runDir(out)) {
      return train();
    }
  }

  private Integer train() throws Exception {
    TrainConfig d = lora ? TrainConfig.loraDefaults() : TrainConfig.defaults();
    Schedule.Kind kind = d.schedule();
    if (schedule != null) {
      kind =
          switch (schedule) {
            case "cosine" -> Schedule.Kind.COSINE;
            case "constant" -> Schedule.Kind.CONSTANT;
            default ->
                throw new UserError(
                    "--schedule must be cosine or constant, got '" + schedule + "'");
          };
    }
    TrainConfig tc =
        d.toBuilder()
            .epochs(or(epochs, d.epochs()))
            .steps(or(steps, d.steps()))
            .batchSize(or(batchSize, d.batchSize()))
            .gradAccum(or(gradAccum, d.gradAccum()))
            .lr(or(lr, d.lr()))
            .weightDecay(or(weightDecay, d.weightDecay()))
            .schedule(kind)
            .warmupRatio(or(warmupRatio, d.warmupRatio()))
            .maxGradNorm(or(maxGradNorm, d.maxGradNorm()))
            .evalFraction(or(evalFraction, d.evalFraction()))
            .seed(or(seed, d.seed()))
            .evalEvery(or(evalEvery, d.evalEvery()))
            .saveEvery(or(saveEvery, d.saveEvery()))
            .keepCheckpoints(or(keepCheckpoints, d.keepCheckpoints()))
            .centeringCoef(or(centering, d.centeringCoef()))
            .swa(or(swa, d.swa()))
            .build();
    EnsembleKind kindE = EnsembleKind.byName(ensemble);
    int members = k != null ? k : (kindE == EnsembleKind.SINGLE ? 1 : 3);
    LoraConfig loraCfg = null;
    if (kindE == EnsembleKind.LORA) {
      // Planned from the configuration alone: the weights are loaded once, by the training.
      dev.rewardensemble.config.ModelConfig mc = dev.rewardensemble.api.BaseModel.readConfig(model);
      loraCfg =
          LoraConfig.defaults(mc)
              .withRank(
                  loraRank.stream().mapToInt(Integer::intValue).max().orElseThrow(), loraAlpha)
              .withDropout(loraDropout)
              .withLoraLayers(loraLayers);
      if (loraTargets != null && !loraTargets.isEmpty()) {
        loraCfg = loraCfg.withTargets(loraTargets);
      }
      loraCfg = loraCfg.checkFor(mc);
    }
    Schedule.Kind loraKind =
        switch (loraSchedule) {
          case "cosine" -> Schedule.Kind.COSINE;
          case "constant" -> Schedule.Kind.CONSTANT;
          default ->
              throw new UserError(
                  "--lora-schedule must be cosine or constant, got '" + loraSchedule + "'");
        };
    EnsembleOptions ens =
        new EnsembleOptions(
            kindE,
            members,
            bootstrap,
            loraCfg,
            phase1Fraction,
            phase1Data,
            loraLr,
            loraKind,
            aggregation.resolve(dev.rewardensemble.ensemble.AggregationConfig.mean()),
            !noNormalize,
            2048,
            dev.rewardensemble.train.MemberData.byName(memberData),
            priorScale,
            diversityWeight,
            loraRank.size() > 1 ? loraRank : null);
    // --recompute auto: the fewest blocks that make the plan fit (resolved before anything loads).
    ExecConfig base = execOptions.config();
    LoraConfig adapters = loraCfg;
    java.util.function.Function<Recomputation, java.util.Optional<MemoryPlan>> plan =
        depth ->
            MemoryCheck.train(
                model,
                kindE,
                members,
                adapters,
                tc.batchSize(),
                maxLength,
                base.weights(),
                depth,
                base.compute());
    Recomputation rc =
        recompute.trim().equalsIgnoreCase("auto")
            ? MemoryCheck.autoRecompute(model, plan)
            : Recomputation.parse(recompute);
    if (recompute.trim().equalsIgnoreCase("auto")) {
      System.err.println("--recompute auto: " + rc.id() + " (memory plan)");
    }
    RewardTraining.TrainRequest req =
        new RewardTraining.TrainRequest(
            model,
            data,
            out,
            tc,
            base.withRecompute(rc),
            ens,
            tokenizer,
            PromptTemplate.byName(template),
            PreferenceFormat.byName(format),
            maxLength,
            skipBadRows,
            resume,
            rewardToken.rule().orElse(null));
    plan.apply(rc)
        .ifPresent(p -> MemoryCheck.requireTraining(p, kindE, "rme train-rm of " + model));
    RewardTraining.Result r = RewardTraining.train(req, new ProgressBar("train-rm"));
    System.err.printf(
        "trained %d steps on %d pairs (%d held out, %d bad rows skipped) -> %s%n",
        r.outcome() == null ? 0 : r.outcome().steps(),
        r.trainPairs(),
        r.evalPairs(),
        r.data().skippedRows(),
        r.runDir());
    if (r.outcome() != null && !r.outcome().finalEval().isEmpty()) {
      System.err.printf(
          "final eval: %s%n",
          new com.fasterxml.jackson.databind.ObjectMapper()
              .writeValueAsString(r.outcome().finalEval()));
    }
    if (r.diagnostics() != null && members > 1) {
      var diag = r.diagnostics();
      System.err.printf(
          "ensemble diagnostics on %d held-out pairs:%n  member accuracy %s%n  aggregation accuracy %s%n"
              + "  mean member correlation %.3f%n  accuracy by disagreement quartile %s%n",
          diag.pairs(),
          java.util.Arrays.toString(diag.memberAccuracy()),
          diag.aggregationAccuracy(),
          diag.meanOffDiagonalCorrelation(),
          diag.disagreementBins().stream().map(b -> String.format("%.3f", b.accuracy())).toList());
    }
    return 0;
  }

  private static <T> T or(T v, T dflt) {
    return v != null ? v : dflt;
  }
}
