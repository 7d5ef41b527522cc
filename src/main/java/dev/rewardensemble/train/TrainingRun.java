package dev.rewardensemble.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.data.PreferencePair;
import dev.rewardensemble.data.Splits;
import dev.rewardensemble.io.CrashPoints;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.RunDirs;
import dev.rewardensemble.io.Safetensors;
import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * A whole reward-model training run in a run directory: the step loop over a deterministic data
 * order, evaluation, metrics, atomic checkpoints, resume and divergence handling.
 *
 * <p>The data order is a pure function of the seed and the optimizer step (epoch {@code e} uses
 * {@link Splits#permutation}{@code (n, seed, e)}), so a checkpoint only needs the step, the weights
 * and the optimizer state to continue exactly where an uninterrupted run would be.
 *
 * <p>Run directory: {@code config.json} + {@code model.safetensors} in the Hugging Face layout
 * ({@code rme score --model RUN_DIR} loads them), {@code run.json} (configuration, provenance,
 * final metrics), {@code metrics.jsonl}, {@code checkpoints/}. {@code run.json} is written at the
 * start ({@code "complete": false}), with the final evaluation before the weights, and once more
 * after them with {@code "trained": true} and, unless the caller completes the directory itself (an
 * ensemble's normalisation and manifest still to come), {@code "complete": true}: the marker every
 * loader of a run directory requires ({@link RunDirs}). {@code --resume} of a run whose weights
 * were written returns them without training again.
 */
public final class TrainingRun {
  private static final ObjectMapper JSON = new ObjectMapper();

  private TrainingRun() {}

  /**
   * What a run needs besides its data.
   *
   * @param rewardToken the token the rewards are read at (by the plain graph; a {@code build} reads
   *     at the same rule); recorded in the run's fingerprint
   * @param build the forward graph (null: a plain reward model of {@code config} with {@code heads}
   *     heads)
   * @param levers what makes the heads differ: per-member data ({@link MemberData}; {@link
   *     MemberData#POISSON} is {@code --bootstrap}), a randomized prior (added to the heads in the
   *     graph of a plain run and folded into the saved heads; a {@code build} applies it itself), a
   *     diversity regulariser
   * @param finish writes the final model into the run directory (null: the Hugging Face layout,
   *     {@code config.json} + {@code model.safetensors})
   */
  public record Spec(
      ModelConfig config,
      String architecture,
      int heads,
      RewardToken rewardToken,
      Map<String, FloatTensor> init,
      Predicate<String> trainable,
      TrainConfig train,
      ExecConfig exec,
      Path runDir,
      boolean resume,
      ObjectNode provenance,
      java.util.function.Function<
              dev.rewardensemble.model.BuildContext, dev.rewardensemble.model.ForwardGraph>
          build,
      MemberLevers levers,
      Finisher finish) {

    /** Whether the heads train on Poisson(1) resamples of every batch ({@code --bootstrap}). */
    public boolean bootstrap() {
      return levers.data() == MemberData.POISSON;
    }

    /** A plain reward model with HF-layout output and the given member levers. */
    public static Spec plain(
        ModelConfig config,
        String architecture,
        int heads,
        RewardToken rewardToken,
        Map<String, FloatTensor> init,
        TrainConfig train,
        ExecConfig exec,
        Path runDir,
        boolean resume,
        ObjectNode provenance,
        MemberLevers levers) {
      return new Spec(
          config,
          architecture,
          heads,
          rewardToken,
          init,
          k -> true,
          train,
          exec,
          runDir,
          resume,
          provenance,
          null,
          levers,
          null);
    }
  }

  /** Writes a finished run's model: {@code weights} holds every variable of the forward graph. */
  @FunctionalInterface
  public interface Finisher {
    void write(Path runDir, Map<String, FloatTensor> weights) throws IOException;
  }

  /** The outcome: steps run, final evaluation (empty without an eval split), final weights. */
  public record Outcome(
      int steps, Map<String, Object> finalEval, Map<String, FloatTensor> weights, Path runDir) {}

  /**
   * Runs (or resumes) training; returns when the final model is written and the run marked
   * complete.
   */
  public static Outcome run(
      Spec spec, List<PreferencePair> train, List<PreferencePair> eval, TrainListener listener)
      throws IOException {
    return run(spec, train, eval, listener, true);
  }

  /**
   * Runs (or resumes) training; returns when the final model is written.
   *
   * @param complete mark the run directory complete after the weights; false when the caller writes
   *     more that loaders need (then it calls {@link RunDirs#markComplete} itself)
   */
  public static Outcome run(
      Spec spec,
      List<PreferencePair> train,
      List<PreferencePair> eval,
      TrainListener listener,
      boolean complete)
      throws IOException {
    if (train.isEmpty()) {
      throw new IllegalArgumentException("no training pairs");
    }
    TrainConfig tc = spec.train();
    Path runDir = spec.runDir();
    Files.createDirectories(runDir);
    int total = tc.totalSteps(train.size());
    Schedule schedule = tc.scheduleFor(total);
    // Stochastic weight averaging: the weights after steps averageFrom..total-1 are averaged (in
    // the graph, checkpointed with the optimizer state) and the average is the model saved.
    int averageFrom = tc.averageFrom(total);
    boolean averaging = averageFrom < total;
    ObjectNode fingerprint = fingerprint(spec, train.size(), eval.size());
    int padId = spec.config().padTokenId();

    // The plain graph carries the prior itself; a given build was made with it.
    FloatTensor prior = spec.levers().prior(spec.heads(), spec.config().hiddenSize());
    MemberData.Weights memberWeights =
        spec.levers().data().weights(train.size(), spec.heads(), tc.seed());
    try (RewardTrainer trainer =
        new RewardTrainer(
            spec.build() == null
                ? RewardTrainer.plainForward(spec.config(), spec.heads(), spec.rewardToken(), prior)
                : spec.build(),
            spec.init(),
            tc,
            spec.exec(),
            spec.trainable(),
            spec.levers().diversityWeight())) {
      // The weight limit from the trainable weights as loaded (before any checkpoint is restored),
      // measured in the graph: the initial values may be a checkpoint still on disk.
      DivergenceGuard guard = new DivergenceGuard(trainer.weightStats()[0]);
      listener.onTrainingGraph(trainer.graph());
      int start = 0;
      RunDirs.cleanLeftovers(runDir);
      ObjectNode previous = RunDirs.runJson(runDir);
      if (spec.resume() && previous != null) {
        checkSameRun(previous.get("fingerprint"), fingerprint, runDir);
        if (trained(previous, spec, runDir)) {
          if (previous.path("complete").asBoolean(false)) {
            throw new IllegalArgumentException(
                runDir + " holds a completed run; nothing to resume");
          }
          listener.onMessage("training of " + runDir + " already finished: completing the run");
          return finished(spec, runDir, previous, total, complete);
        }
      }
      Optional<Checkpoints.Loaded> ckpt = Checkpoints.latest(runDir);
      if (spec.resume()) {
        if (ckpt.isPresent()) {
          Checkpoints.Loaded c = ckpt.get();
          checkSameRun(c.state().get("fingerprint"), fingerprint, c.dir());
          trainer.restore(c.weights(), c.optimizer(), c.dir().toString());
          start = c.step();
          listener.onMessage("resuming from " + c.dir() + " (step " + start + " of " + total + ")");
        } else {
          listener.onMessage("no checkpoint in " + runDir + ": starting from step 0");
        }
      } else if (ckpt.isPresent() || Files.exists(runDir.resolve("model.safetensors"))) {
        throw new IllegalArgumentException(
            runDir + " already holds a run; pass --resume to continue it or choose another --out");
      }
      if (averaging) {
        listener.onMessage(
            String.format(
                java.util.Locale.ROOT,
                "weight averaging (--swa %s): the model saved is the mean of the weights after steps"
                    + " %d-%d, learning rate held at %.3g from step %d",
                tc.swa(),
                averageFrom + 1,
                total,
                tc.lr(schedule, averageFrom),
                averageFrom + 1));
      }
      Path metrics = runDir.resolve("metrics.jsonl");
      truncateMetrics(metrics, start);
      RunDirs.writeRunJson(runDir, runJson(spec, fingerprint, total, null));

      int n = train.size();
      int perStep = tc.pairsPerStep();
      int stepsPerEpoch = Math.max(1, (n + perStep - 1) / perStep);
      int cachedEpoch = -1;
      int[] perm = null;
      long t0 = System.nanoTime();
      Path lastGood = ckpt.map(Checkpoints.Loaded::dir).orElse(null);
      Map<String, Object> lastEval = Map.of();
      for (int s = start; s < total; s++) {
        int epoch = s / stepsPerEpoch;
        if (epoch != cachedEpoch) {
          perm = Splits.permutation(n, tc.seed(), epoch);
          cachedEpoch = epoch;
        }
        int offset = (s % stepsPerEpoch) * perStep;
        // The pairs this step really has: fewer than batch x grad-accum in the last window of an
        // epoch. Each
        // micro-batch's gradient is weighted by its share of them, so the step follows the gradient
        // of the mean
        // loss over its real pairs (with full windows that share is exactly 1 / grad-accum).
        int stepPairs = Math.min(n, offset + perStep) - offset;
        double lossSum = 0;
        double accSum = 0;
        int pairs = 0;
        for (int a = 0; a < tc.gradAccum(); a++) {
          int from = offset + a * tc.batchSize();
          int to = Math.min(n, from + tc.batchSize());
          if (from >= to) {
            break;
          }
          List<PreferencePair> batch = new ArrayList<>(to - from);
          int[] indices = new int[to - from];
          for (int i = from; i < to; i++) {
            batch.add(train.get(perm[i]));
            indices[i - from] = perm[i];
          }
          float scale = RewardTrainer.microBatchScale(batch.size(), stepPairs);
          long randomKey =
              (long) s * tc.gradAccum() + a; // the run's micro-batch index: keys dropout masks
          RewardTrainer.BatchStats b =
              trainer.accumulate(batch, padId, memberWeights.of(s, a, indices), scale, randomKey);
          lossSum += b.loss() * b.pairs();
          accSum += mean(b.accuracy()) * b.pairs();
          pairs += b.pairs();
        }
        double loss = lossSum / pairs;
        double[] check = trainer.gradientCheck();
        String problem = guard.checkGradients(loss, check[0], check[1] != 0);
        double lr = tc.lr(schedule, s);
        if (problem != null) {
          trainer.discardGradients();
          throw diverged(s, total, problem, lr, lastGood);
        }
        trainer.apply(lr, s + 1);
        // Checked before anything is saved: an exploded update never reaches a checkpoint or the
        // final model.
        problem = guard.checkWeights(trainer.weightStats());
        if (problem != null) {
          throw diverged(s, total, problem, lr, lastGood);
        }
        int averaged = s >= averageFrom ? s + 1 - averageFrom : 0; // weights in the mean so far
        if (averaged > 0) {
          trainer.average(averaged);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        ObjectNode row = JSON.createObjectNode();
        row.put("step", s + 1)
            .put("split", "train")
            .put("epoch", epoch)
            .put("loss", loss)
            .put("accuracy", accSum / pairs)
            .put("lr", lr)
            .put("grad_norm", check[0])
            .put("pairs", pairs)
            .put("seconds", seconds);
        if (averaged > 0) {
          row.put("averaged", averaged);
        }
        appendRow(metrics, row);
        listener.onStep(s + 1, total, loss, accSum / pairs, lr, check[0], seconds);
        boolean last = s + 1 == total;
        if (last && averaging) {
          trainer.useAverage(); // the final evaluation and the saved model are the average's
        }
        if (!eval.isEmpty() && (last || tc.evalEvery() > 0 && (s + 1) % tc.evalEvery() == 0)) {
          lastEval = evaluate(trainer, eval, tc.batchSize(), padId, s + 1, metrics, listener);
        }
        if (!last && tc.saveEvery() > 0 && (s + 1) % tc.saveEvery() == 0) {
          lastGood =
              saveCheckpoint(
                  trainer,
                  runDir,
                  s + 1,
                  epoch,
                  (s + 1 - epoch * stepsPerEpoch) * perStep,
                  fingerprint,
                  tc);
          listener.onMessage("checkpoint " + lastGood);
        }
      }
      if (start == total && averaging) {
        trainer.useAverage();
      }
      if (start == total && !eval.isEmpty()) {
        lastEval = evaluate(trainer, eval, tc.batchSize(), padId, total, metrics, listener);
      }
      // Read from the session one variable at a time as they are written: no whole-model copy.
      LazyWeights live = trainer.weightsDeferred();
      ObjectNode done = runJson(spec, fingerprint, total, lastEval);
      RunDirs.writeRunJson(runDir, done);
      Map<String, FloatTensor> weights;
      if (spec.finish() != null) {
        spec.finish().write(runDir, live);
        weights = finalWeights(spec, live);
      } else {
        if (prior != null) {
          // The saved head is trained head + prior: the model scores what training saw.
          live.put(
              dev.rewardensemble.model.RewardHeads.KEY,
              dev.rewardensemble.model.RewardHeads.fold(
                  live.get(dev.rewardensemble.model.RewardHeads.KEY), prior));
        }
        RunDirs.writeJson(
            runDir.resolve("config.json"),
            ModelConfigs.toHf(spec.config(), spec.architecture(), spec.heads()));
        Path file = runDir.resolve("model.safetensors");
        Safetensors.write(file, live, Map.of("format", "pt"));
        weights = LazyWeights.ofFile(file);
      }
      CrashPoints.reached("run-weights-written");
      markTrained(runDir, done, complete);
      return new Outcome(total, lastEval, weights, runDir);
    }
  }

  /**
   * The outcome's weights of a run with its own finisher: the trained ones copied out of the
   * session (a LoRA run's adapters and heads), the frozen ones as given (still on disk when they
   * were).
   */
  private static Map<String, FloatTensor> finalWeights(Spec spec, LazyWeights live) {
    LazyWeights out = new LazyWeights();
    for (String key : live.keySet()) {
      if (spec.trainable().test(key) || !spec.init().containsKey(key)) {
        out.put(key, live.get(key));
      } else {
        out.putFrom(key, spec.init(), key);
      }
    }
    return out;
  }

  private static TrainingDivergedException diverged(
      int s, int total, String problem, double lr, Path lastGood) {
    return new TrainingDivergedException(
        String.format(
            "training diverged at step %d of %d: %s (learning rate %.3g). Try a lower --lr, gradient clipping "
                + "(--max-grad-norm 1.0), a longer warmup (--warmup-ratio), or check the data. Last good "
                + "checkpoint: %s",
            s + 1,
            total,
            problem,
            lr,
            lastGood == null ? "none (the run diverged before the first checkpoint)" : lastGood));
  }

  /**
   * Whether the run's final weights are on disk: {@code "trained": true}, or (a kill right after
   * the weights, before that marker) the final evaluation recorded and the atomically written
   * {@code model.safetensors} present.
   */
  private static boolean trained(ObjectNode runJson, Spec spec, Path runDir) {
    if (runJson.path("trained").asBoolean(false)) {
      return spec.finish() != null || Files.isRegularFile(runDir.resolve("model.safetensors"));
    }
    return spec.finish() == null
        && runJson.has("final_eval")
        && Files.isRegularFile(runDir.resolve("config.json"))
        && Files.isRegularFile(runDir.resolve("model.safetensors"));
  }

  /** The outcome of a run whose weights were already written; marks it trained (and complete). */
  private static Outcome finished(
      Spec spec, Path runDir, ObjectNode runJson, int total, boolean complete) throws IOException {
    Map<String, Object> finalEval = new LinkedHashMap<>();
    JsonNode fe = runJson.get("final_eval");
    if (fe != null && fe.isObject()) {
      fe.fields()
          .forEachRemaining(
              e -> finalEval.put(e.getKey(), JSON.convertValue(e.getValue(), Object.class)));
    }
    Map<String, FloatTensor> weights = Map.of();
    if (spec.finish() == null) {
      weights = LazyWeights.ofFile(runDir.resolve("model.safetensors"));
    }
    markTrained(runDir, runJson, complete);
    return new Outcome(total, finalEval, weights, runDir);
  }

  private static void markTrained(Path runDir, ObjectNode runJson, boolean complete)
      throws IOException {
    runJson.put("trained", true);
    runJson.put("complete", complete);
    RunDirs.writeRunJson(runDir, runJson);
  }

  /**
   * Poisson(1) counts {@code [B][K]}: pair b's weight in head k's loss, a pure function of (seed,
   * step, micro-batch) so resumed runs draw the same resamples.
   */
  static float[][] bootstrapWeights(long seed, int step, int micro, int b, int k) {
    java.util.SplittableRandom rng =
        new java.util.SplittableRandom(seed * 0x9E3779B97F4A7C15L + step * 1_000_003L + micro);
    float[][] w = new float[b][k];
    double limit = Math.exp(-1);
    for (int i = 0; i < b; i++) {
      for (int h = 0; h < k; h++) {
        int n = 0;
        double prod = rng.nextDouble();
        while (prod > limit) {
          n++;
          prod *= rng.nextDouble();
        }
        w[i][h] = n;
      }
    }
    return w;
  }

  /** Held-out loss, accuracy (mean over heads and per head) and margin; appended to the metrics. */
  static Map<String, Object> evaluate(
      RewardTrainer trainer,
      List<PreferencePair> eval,
      int batchSize,
      int padId,
      int step,
      Path metrics,
      TrainListener listener)
      throws IOException {
    int k = trainer.heads();
    double loss = 0;
    double[] acc = new double[k];
    double[] margin = new double[k];
    for (int from = 0; from < eval.size(); from += batchSize) {
      List<PreferencePair> batch = eval.subList(from, Math.min(eval.size(), from + batchSize));
      RewardTrainer.BatchStats b = trainer.evaluate(batch, padId);
      loss += b.loss() * b.pairs();
      for (int h = 0; h < k; h++) {
        acc[h] += b.accuracy()[h] * b.pairs();
        margin[h] += b.margin()[h] * b.pairs();
      }
    }
    int n = eval.size();
    for (int h = 0; h < k; h++) {
      acc[h] /= n;
      margin[h] /= n;
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("step", step);
    out.put("split", "eval");
    out.put("pairs", n);
    out.put("loss", loss / n);
    out.put("accuracy", mean(acc));
    out.put("margin", mean(margin));
    if (k > 1) {
      out.put("accuracy_per_head", acc);
      out.put("margin_per_head", margin);
    }
    appendRow(metrics, JSON.valueToTree(out));
    listener.onEval(step, loss / n, mean(acc), mean(margin));
    return out;
  }

  private static Path saveCheckpoint(
      RewardTrainer trainer,
      Path runDir,
      int step,
      int epoch,
      int position,
      ObjectNode fingerprint,
      TrainConfig tc)
      throws IOException {
    ObjectNode state = JSON.createObjectNode();
    state.put("step", step);
    state.put("epoch", epoch);
    state.put("data_position", position);
    state.put("seed", tc.seed());
    state.put(
        "rng",
        "the data order is Splits.permutation(n, seed, epoch), bootstrap counts and LoRA dropout masks "
            + "are keyed by (seed, step, micro-batch): no other random state");
    state.set("fingerprint", fingerprint);
    return Checkpoints.save(
        runDir,
        step,
        trainer.trainableWeightsDeferred(), // one variable at a time, streamed into the files
        trainer.optimizerStateDeferred(),
        state,
        tc.keepCheckpoints());
  }

  /** What must be equal for a checkpoint to continue this run. */
  private static ObjectNode fingerprint(Spec spec, int trainPairs, int evalPairs) {
    ObjectNode f = JSON.createObjectNode();
    f.set("model", ModelConfigs.toHf(spec.config(), spec.architecture(), spec.heads()));
    f.set("train", JSON.valueToTree(spec.train()));
    f.put("train_pairs", trainPairs);
    f.put("eval_pairs", evalPairs);
    f.put("bootstrap", spec.bootstrap());
    // Absent when unused, so that the checkpoints of runs made before these levers resume.
    MemberLevers lv = spec.levers();
    if (lv.data() == MemberData.BOOTSTRAP || lv.data() == MemberData.DISJOINT) {
      f.put("member_data", lv.data().id());
    }
    if (lv.priorScale() != 0) {
      f.put("prior_scale", lv.priorScale());
      f.put("prior_seed", lv.priorSeed());
    }
    if (lv.diversityWeight() != 0) {
      f.put("diversity_weight", lv.diversityWeight());
    }
    if (lv.loraRanks() != null) {
      f.set("lora_ranks", JSON.valueToTree(lv.loraRanks()));
    }
    if (spec.rewardToken() != RewardToken.LAST_ATTENDED) {
      // Absent in the checkpoints of runs made before the rule was a choice (all last-attended),
      // so that those resume.
      f.put(RewardToken.KEY, spec.rewardToken().id());
    }
    f.put(
        "trainable_variables",
        spec.trainable() == null
            ? 0
            : spec.init().keySet().stream().filter(spec.trainable()).count());
    JsonNode data = spec.provenance() == null ? null : spec.provenance().get("data_sha256");
    if (data != null) {
      f.set("data_sha256", data);
    }
    return f;
  }

  private static void checkSameRun(JsonNode saved, ObjectNode fresh, Path dir) {
    if (saved == null) {
      throw new IllegalArgumentException(dir + ": checkpoint has no run fingerprint");
    }
    JsonNode now;
    try {
      now = JSON.readTree(JSON.writeValueAsString(fresh)); // same number types as the saved copy
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    List<String> diffs = new ArrayList<>();
    now.fieldNames()
        .forEachRemaining(
            k -> {
              if (!now.get(k).equals(saved.get(k))) {
                if (now.get(k).isObject() && saved.get(k) != null && saved.get(k).isObject()) {
                  now.get(k)
                      .fieldNames()
                      .forEachRemaining(
                          kk -> {
                            if (!now.get(k).get(kk).equals(saved.get(k).get(kk))) {
                              diffs.add(
                                  k
                                      + "."
                                      + kk
                                      + " was "
                                      + saved.get(k).get(kk)
                                      + ", now "
                                      + now.get(k).get(kk));
                            }
                          });
                } else {
                  diffs.add(k + " was " + saved.get(k) + ", now " + now.get(k));
                }
              }
            });
    if (!diffs.isEmpty()) {
      throw new IllegalArgumentException(
          "cannot resume from "
              + dir
              + ": the run's settings changed ("
              + String.join("; ", diffs)
              + ")");
    }
  }

  private static ObjectNode runJson(
      Spec spec, ObjectNode fingerprint, int total, Map<String, Object> finalEval) {
    ObjectNode r = JSON.createObjectNode();
    r.put("format", "rme-run/1");
    r.put("architecture", spec.architecture());
    r.put("heads", spec.heads());
    r.put("total_steps", total);
    r.set("fingerprint", fingerprint);
    if (spec.provenance() != null) {
      r.set("provenance", spec.provenance());
    }
    r.put("complete", false);
    if (finalEval != null) {
      r.set("final_eval", JSON.valueToTree(finalEval));
    }
    return r;
  }

  private static void appendRow(Path metrics, JsonNode row) throws IOException {
    try (Writer w =
        Files.newBufferedWriter(
            metrics,
            StandardCharsets.UTF_8,
            StandardOpenOption.CREATE,
            StandardOpenOption.APPEND)) {
      w.write(JSON.writeValueAsString(row));
      w.write('\n');
    }
  }

  /**
   * On resume, drops metric rows written after the checkpoint (the resumed run writes them again).
   */
  private static void truncateMetrics(Path metrics, int step) throws IOException {
    if (!Files.exists(metrics)) {
      return;
    }
    List<String> keep = new ArrayList<>();
    for (String line : Files.readAllLines(metrics, StandardCharsets.UTF_8)) {
      if (line.isBlank()) {
        continue;
      }
      try {
        JsonNode row = JSON.readTree(line);
        if (row.path("step").asInt(Integer.MAX_VALUE) <= step) {
          keep.add(line);
        }
      } catch (IOException e) {
        // a torn last line of a killed run: dropped
      }
    }
    Path tmp = metrics.resolveSibling(".metrics.jsonl.tmp");
    Files.write(tmp, keep, StandardCharsets.UTF_8);
    Files.move(tmp, metrics, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
  }

  private static double mean(double[] a) {
    double s = 0;
    for (double v : a) {
      s += v;
    }
    return s / a.length;
  }
}
