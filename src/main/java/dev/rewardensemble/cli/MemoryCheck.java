package dev.rewardensemble.cli;

import dev.rewardensemble.config.AvailableMemory;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.MemoryPlan;
import dev.rewardensemble.ensemble.ModelShape;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.lora.LoraConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * The memory pre-check of every command that allocates a model: the plan of the work, computed from
 * the models' JSON files ({@link ModelShape}), against the physical memory this process can still
 * use ({@link AvailableMemory}), before any tensor exists. A plan that does not fit is refused with
 * exit code 2 and one line naming the numbers and what to change. A model whose shape cannot be
 * read from its JSON (a SavedModel, a malformed directory) is not planned: its loader reports it.
 */
final class MemoryCheck {
  private MemoryCheck() {}

  /**
   * Bytes per frozen parameter of the paths that load into float32 variables (a SavedModel export,
   * the bench's presets) and of what {@code rme info} plans unless told {@code --weights}.
   */
  static final int WEIGHT_BYTES = 4;

  /**
   * Whether starting from {@code model} passes every weight through float32 Java arrays: only a
   * {@code tf-graphs/*.json} preset, whose weights are initialised in Java; checkpoints and run
   * directories stream into the variables on every path (see README, Checkpoints).
   */
  static boolean javaCopy(Path model) {
    return java.nio.file.Files.isRegularFile(model) && model.toString().endsWith(".json");
  }

  /**
   * Bytes per frozen trunk parameter when scoring {@code model} with {@code storage}: 2 for
   * bfloat16, and for {@code auto} when every tensor of the checkpoint is stored as BF16 (read from
   * the safetensors headers only), else 4.
   */
  static int scoringWeightBytes(dev.rewardensemble.config.WeightStorage storage, Path model) {
    if (storage == dev.rewardensemble.config.WeightStorage.BFLOAT16) {
      return 2;
    }
    if (storage == dev.rewardensemble.config.WeightStorage.FLOAT32
        || !dev.rewardensemble.io.HfCheckpoint.isCheckpoint(model)) {
      return 4;
    }
    try {
      return dev.rewardensemble.io.LazyWeights.allBf16(
              dev.rewardensemble.io.HfCheckpoint.open(model).weights())
          ? 2
          : 4;
    } catch (java.io.IOException | RuntimeException e) {
      return 4; // the loader reports a bad checkpoint with its own message
    }
  }

  /** Refuses {@code plan} when it needs more than is available; {@code what} names the work. */
  static void require(MemoryPlan plan, String what) {
    plan.require(AvailableMemory.measure(), what);
  }

  /** Name prefix of a LoRA run's phase-1 parts. */
  static final String PHASE1 = "phase 1";

  /**
   * The training pre-check: a LoRA ensemble's plan holds phase 2 and phase 1 (the whole trunk
   * finetuned as a linear ensemble); when phase 1 is the larger part, the message says so.
   */
  static void requireTraining(MemoryPlan plan, EnsembleKind requested, String what) {
    long phase1 =
        plan.parts().stream()
            .filter(x -> x.name().startsWith(PHASE1 + ": "))
            .mapToLong(MemoryPlan.Part::bytes)
            .sum();
    if (requested == EnsembleKind.LORA && 2 * phase1 > plan.total()) {
      plan.require(
          AvailableMemory.measure(),
          what + " (LoRA phases 1 and 2; phase 1 finetunes the whole trunk as a linear ensemble)",
          "a machine with room for phase 1 (phase 2 alone: rme info --ensemble lora --mode train)");
      return;
    }
    require(plan, what);
  }

  /** {@code maxLength} when given and within the model's positions, else 0 (not planned). */
  static int length(Integer maxLength, ModelConfig c) {
    return maxLength != null && maxLength > 0 && maxLength <= c.maxPositions() ? maxLength : 0;
  }

  /**
   * Bytes per value (2 for BF16, 4 for F32) of the token embedding that a scoring graph of {@code
   * model} reads from its checkpoint's memory map instead of a variable ({@link
   * EnsembleModel#rowsOnHost(LazyWeights, String, Precision)}, at {@code weightBytes} a value),
   * else 0. Reads the safetensors header only.
   */
  static int hostedEmbedding(Path model, List<Path> lora, ModelConfig c, int weightBytes) {
    Optional<Path> dir = ModelShape.trunkCheckpoint(model, lora);
    if (dir.isEmpty() || !HfCheckpoint.isCheckpoint(dir.get())) {
      return 0;
    }
    try {
      String key = c.embeddingKey();
      Precision frozen = weightBytes == 2 ? Precision.BFLOAT16 : Precision.FLOAT32;
      return HfCheckpoint.open(dir.get()).weights() instanceof LazyWeights w
              && w.containsKey(key)
              && EnsembleModel.rowsOnHost(w, key, frozen)
          ? (w.storedDtype(key).equals("BF16") ? 2 : 4)
          : 0;
    } catch (java.io.IOException | RuntimeException e) {
      return 0; // the loader reports a bad checkpoint with its own message
    }
  }

  /**
   * The plan of scoring {@code model} (with {@code lora}) in batches of {@code batch}; {@code
   * readsRows}: by a {@code RewardModel}, which reads a large embedding's rows from the file
   * ({@link #hostedEmbedding}), where an export's graph holds it in a variable.
   */
  private static Optional<MemoryPlan> scorePlan(
      Path model,
      List<Path> lora,
      int batch,
      Integer maxLength,
      int weightBytes,
      boolean javaCopy,
      boolean readsRows) {
    return ModelShape.read(model, lora)
        .map(
            s ->
                MemoryPlan.of(
                    new MemoryPlan.Request(
                            s.config(),
                            s.kind(),
                            s.k(),
                            s.lora(),
                            MemoryPlan.Mode.SCORE,
                            weightBytes,
                            batch,
                            length(maxLength, s.config()),
                            0,
                            javaCopy)
                        .withHostedEmbedding(
                            readsRows && !javaCopy
                                ? hostedEmbedding(model, lora, s.config(), weightBytes)
                                : 0)));
  }

  /** The plan of sampling {@code maxNewTokens} from the causal LM {@code policy}. */
  private static Optional<MemoryPlan> generatePlan(
      Path policy, int batch, int maxNewTokens, dev.rewardensemble.config.WeightStorage storage) {
    return ModelShape.read(policy, List.of())
        .map(
            s ->
                MemoryPlan.of(
                    new MemoryPlan.Request(
                        s.config(),
                        EnsembleKind.SINGLE,
                        1,
                        null,
                        MemoryPlan.Mode.GENERATE,
                        scoringWeightBytes(storage, policy), // every sampler weight is frozen
                        batch,
                        0,
                        Math.max(0, Math.min(maxNewTokens, s.config().maxPositions())),
                        false))); // Sampler.load streams
  }

  /**
   * The plan of training a reward model of {@code kind} from {@code model}: for LoRA the larger of
   * phase 1 (a linear ensemble's full finetune) and phase 2 (adapters and heads over the frozen
   * trunk); {@code recompute}: blocks recomputed in the backward pass ({@code --recompute}).
   */
  private static Optional<MemoryPlan> trainPlan(
      Path model,
      EnsembleKind kind,
      int k,
      LoraConfig lora,
      int batch,
      int maxLength,
      dev.rewardensemble.config.WeightStorage storage,
      dev.rewardensemble.config.Recomputation recompute,
      dev.rewardensemble.config.Precision compute) {
    return ModelShape.read(model, List.of())
        .map(
            s -> {
              MemoryPlan.Request r =
                  new MemoryPlan.Request(
                      s.config(),
                      kind,
                      k,
                      lora,
                      MemoryPlan.Mode.TRAIN,
                      // The only frozen weights of training are LoRA phase 2's trunk: phase 1's
                      // float32 values, so auto keeps float32 and only bfloat16 halves them.
                      storage == dev.rewardensemble.config.WeightStorage.BFLOAT16 ? 2 : 4,
                      batch,
                      length(maxLength, s.config()),
                      0,
                      javaCopy(model),
                      recompute,
                      compute);
              MemoryPlan p = MemoryPlan.of(r);
              if (kind == EnsembleKind.LORA) {
                // Phase 1's memory is not returned to the system before phase 2 runs in the same
                // process (measured: bench-llama K = 3, the peak is close to the sum of both).
                return p.with(PHASE1, MemoryPlan.of(r.withKind(EnsembleKind.LINEAR, k, null)));
              }
              return p;
            });
  }

  /**
   * The plan of PPO with {@code policy} and the reward model: one PPO plan when both share an
   * architecture (as in the paper), else the policy's PPO plan (its value model and reward trunk
   * planned at the policy's shape) plus the reward model's weights; {@code recompute}: the policy's
   * and value model's blocks recomputed in the backward pass ({@code --recompute}).
   */
  private static Optional<MemoryPlan> ppoPlan(
      Path policy,
      Path rewardModel,
      List<Path> lora,
      int rolloutBatch,
      int maxNewTokens,
      dev.rewardensemble.config.WeightStorage storage,
      boolean recompute) {
    Optional<ModelShape> pol = ModelShape.read(policy, List.of());
    Optional<ModelShape> rm = ModelShape.read(rewardModel, lora == null ? List.of() : lora);
    if (pol.isEmpty()) {
      return Optional.empty();
    }
    ModelConfig c = pol.get().config();
    int fresh = Math.max(0, Math.min(maxNewTokens, c.maxPositions()));
    // The frozen reference as --weights resolves on the policy's checkpoint (trained weights are
    // float32); everything streams from the checkpoints, no Java copy.
    int referenceBytes = scoringWeightBytes(storage, policy);
    if (rm.isPresent() && rm.get().config().equals(c)) {
      ModelShape s = rm.get();
      return Optional.of(
          MemoryPlan.of(
              new MemoryPlan.Request(
                      c,
                      s.kind(),
                      s.k(),
                      s.lora(),
                      MemoryPlan.Mode.PPO,
                      // one dtype for the reference and the reward trunk: the wider of the two
                      Math.max(referenceBytes, scoringWeightBytes(storage, rewardModel)),
                      rolloutBatch,
                      0,
                      fresh,
                      false)
                  .withRecompute(recompute)));
    }
    MemoryPlan p =
        MemoryPlan.of(
            new MemoryPlan.Request(
                    c,
                    EnsembleKind.SINGLE,
                    1,
                    null,
                    MemoryPlan.Mode.PPO,
                    referenceBytes,
                    rolloutBatch,
                    0,
                    fresh,
                    false)
                .withRecompute(recompute));
    // PPO's reward model streams like any scorer; float32 unless the checkpoint is all BF16.
    Optional<MemoryPlan> score =
        scorePlan(
            rewardModel,
            lora,
            rolloutBatch,
            null,
            scoringWeightBytes(storage, rewardModel),
            false,
            true);
    return Optional.of(score.isPresent() ? p.with("reward model", score.get()) : p);
  }

  /**
   * The largest plan of {@code rme bench}'s {@code workloads} on {@code preset}: scoring a batch
   * (single, and K independent members for {@code ensembles}), a Bradley-Terry step, a LoRA phase-2
   * step of K members, greedy generation of {@code seq} tokens after 8.
   */
  private static Optional<MemoryPlan> benchPlan(
      Path preset, java.util.Collection<String> workloads, int batch, int seq, int k) {
    List<MemoryPlan> plans = new java.util.ArrayList<>();
    for (String w : workloads) {
      benchWorkload(preset, w, batch, seq, k, List.of("independent"), WEIGHT_BYTES)
          .ifPresent(plans::add);
    }
    return plans.stream().max(java.util.Comparator.comparingLong(MemoryPlan::total));
  }

  /**
   * The plan of one of {@code rme bench}'s workloads on {@code preset} (empty when the shape is not
   * one the loader would accept, or the workload is not planned): {@code ensembles} holds every
   * kind of {@code kinds} at once (they are loaded together and timed round-robin). The bench's
   * seeded weights are generated into the variables tensor by tensor (no Java copy); frozen weights
   * take {@code weightBytes} per parameter.
   */
  static Optional<MemoryPlan> benchWorkload(
      Path preset,
      String workload,
      int batch,
      int seq,
      int k,
      List<String> kinds,
      int weightBytes) {
    return safely(
        () -> {
          Optional<ModelShape> s = ModelShape.read(preset, List.of());
          if (s.isEmpty() || batch < 1 || k < 1) {
            return Optional.empty();
          }
          ModelConfig c = s.get().config();
          int t = length(seq, c);
          MemoryPlan.Request score =
              new MemoryPlan.Request(
                  c,
                  EnsembleKind.SINGLE,
                  1,
                  null,
                  MemoryPlan.Mode.SCORE,
                  weightBytes,
                  2 * batch,
                  t,
                  0,
                  false);
          return switch (workload) {
            case "score" -> Optional.of(MemoryPlan.of(score));
            case "bt-step" ->
                Optional.of(
                    MemoryPlan.of(
                        score
                            .withMode(MemoryPlan.Mode.TRAIN)
                            .withKind(EnsembleKind.SINGLE, 1, null)
                            .withWeightBytes(WEIGHT_BYTES)));
            case "lora-step" ->
                Optional.of(
                    MemoryPlan.of(
                        score
                            .withMode(MemoryPlan.Mode.TRAIN)
                            .withKind(EnsembleKind.LORA, 1, LoraConfig.defaults(c))));
            case "generate" ->
                Optional.of(
                    MemoryPlan.of(
                        new MemoryPlan.Request(
                            c,
                            EnsembleKind.SINGLE,
                            1,
                            null,
                            MemoryPlan.Mode.GENERATE,
                            weightBytes,
                            batch,
                            Math.min(8, c.maxPositions()),
                            Math.max(0, Math.min(seq, c.maxPositions() - 8)),
                            false)));
            case "ensembles" -> {
              MemoryPlan all = null;
              for (String kind : kinds) {
                MemoryPlan.Request r =
                    switch (kind) {
                      case "independent" -> score.withKind(EnsembleKind.INDEPENDENT, k, null);
                      case "lora" -> score.withKind(EnsembleKind.LORA, k, LoraConfig.defaults(c));
                      case "lora-top1" ->
                          score.withKind(
                              EnsembleKind.LORA,
                              k,
                              new LoraConfig(8, 16, 0.05, LoraConfig.defaults(c).targetModules(), 1)
                                  .checkFor(c));
                      case "linear" -> score.withKind(EnsembleKind.LINEAR, k, null);
                      default -> score; // single, single-x-k (batch K times larger: activations)
                    };
                MemoryPlan p = MemoryPlan.of(r);
                all = all == null ? p : all.with(kind, p);
              }
              yield Optional.ofNullable(all);
            }
            default -> Optional.empty();
          };
        });
  }

  /** Checks each present plan, then all of them together (they live in one process). */
  static void requireAll(String what, List<Optional<MemoryPlan>> plans, List<String> names) {
    MemoryPlan all = null;
    for (int i = 0; i < plans.size(); i++) {
      if (plans.get(i).isEmpty()) {
        continue;
      }
      all = all == null ? plans.get(i).get() : all.with(names.get(i), plans.get(i).get());
    }
    if (all != null) {
      require(all, what);
    }
  }

  /**
   * {@link #scorePlan} of the streaming scorers ({@code score}, {@code eval}'s judge, {@code
   * best-of-n}'s reward model), weights stored as {@code storage} resolves; empty when the shape is
   * not one the loader would accept.
   */
  static Optional<MemoryPlan> score(
      Path model,
      List<Path> lora,
      int batch,
      Integer maxLength,
      dev.rewardensemble.config.WeightStorage storage) {
    return safely(
        () ->
            scorePlan(
                model, lora, batch, maxLength, scoringWeightBytes(storage, model), false, true));
  }

  /**
   * The plan of {@code rme export}: the weights stream from the checkpoint into the files (hf,
   * peft) or into the float32 variables of the SavedModel's graph.
   */
  static Optional<MemoryPlan> export(Path model, List<Path> lora) {
    return safely(() -> scorePlan(model, lora, 1, null, WEIGHT_BYTES, false, false));
  }

  /** {@link #generatePlan}, or empty when the shape is not one the loader would accept. */
  static Optional<MemoryPlan> generate(
      Path policy, int batch, int maxNewTokens, dev.rewardensemble.config.WeightStorage storage) {
    return safely(() -> generatePlan(policy, batch, maxNewTokens, storage));
  }

  /**
   * {@link #trainPlan}, or empty when the shape is not one the loader would accept; {@code
   * compute}: the run's {@code --compute} (bfloat16 activations in the blocks).
   */
  static Optional<MemoryPlan> train(
      Path model,
      EnsembleKind kind,
      int k,
      LoraConfig lora,
      int batch,
      int maxLength,
      dev.rewardensemble.config.WeightStorage storage,
      dev.rewardensemble.config.Recomputation recompute,
      dev.rewardensemble.config.Precision compute) {
    return safely(
        () -> trainPlan(model, kind, k, lora, batch, maxLength, storage, recompute, compute));
  }

  /**
   * {@code --recompute auto} of a training run of {@code model} whose plan at each depth is {@code
   * plan} (e.g. {@link #train} with the run's settings): the fewest lowest blocks whose
   * recomputation makes the training plan fit in the memory available now ({@link
   * MemoryPlan#fewestRecomputed}); none when it fits as it is or when no plan can be made (an
   * unknown shape or no --max-length), every block when even that does not fit (the pre-check then
   * refuses the run with the numbers).
   */
  static dev.rewardensemble.config.Recomputation autoRecompute(
      Path model,
      java.util.function.Function<dev.rewardensemble.config.Recomputation, Optional<MemoryPlan>>
          plan) {
    long budget = AvailableMemory.measure().bytes();
    java.util.function.Function<dev.rewardensemble.config.Recomputation, Long> total =
        r -> plan.apply(r).map(MemoryPlan::total).orElse(0L);
    int layers;
    try {
      layers = ModelShape.read(model, List.of()).map(s -> s.config().numLayers()).orElse(0);
    } catch (IllegalArgumentException e) {
      layers = 0; // the loader reports it
    }
    if (layers == 0) {
      return dev.rewardensemble.config.Recomputation.NONE;
    }
    dev.rewardensemble.config.Recomputation r = MemoryPlan.fewestRecomputed(layers, total, budget);
    return r == null ? dev.rewardensemble.config.Recomputation.ALL : r;
  }

  /** {@link #ppoPlan}, or empty when the shape is not one the loader would accept. */
  static Optional<MemoryPlan> ppo(
      Path policy,
      Path rewardModel,
      List<Path> lora,
      int rolloutBatch,
      int maxNewTokens,
      dev.rewardensemble.config.WeightStorage storage,
      boolean recompute) {
    return safely(
        () -> ppoPlan(policy, rewardModel, lora, rolloutBatch, maxNewTokens, storage, recompute));
  }

  /** {@link #benchPlan}, or empty when the shape is not one the loader would accept. */
  static Optional<MemoryPlan> bench(
      Path preset, java.util.Collection<String> workloads, int batch, int seq, int k) {
    return safely(() -> benchPlan(preset, workloads, batch, seq, k));
  }

  /**
   * A plan, or empty when building it is refused (e.g. a manifest whose K is 0): the loader then
   * reports the problem with its own message, naming the file and key.
   */
  private static Optional<MemoryPlan> safely(java.util.function.Supplier<Optional<MemoryPlan>> s) {
    try {
      return s.get();
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
  }
}
