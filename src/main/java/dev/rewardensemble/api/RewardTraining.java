package dev.rewardensemble.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.PreferenceData;
import dev.rewardensemble.data.PreferenceFormat;
import dev.rewardensemble.data.PreferencePair;
import dev.rewardensemble.data.PreferenceReader;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.Split;
import dev.rewardensemble.data.Splits;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.io.DirLock;
import dev.rewardensemble.io.RunDirs;
import dev.rewardensemble.train.TrainConfig;
import dev.rewardensemble.train.TrainListener;
import dev.rewardensemble.train.TrainingRun;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalInt;

/**
 * Trains a reward model with the Bradley-Terry loss: the Java API behind {@code rme train-rm}.
 *
 * <pre>{@code
 * TrainRequest req = TrainRequest.of(Path.of("base-model"), Path.of("prefs.json"), Path.of("runs/rm1"))
 *     .withTrain(TrainConfig.defaults());
 * RewardTraining.Result r = RewardTraining.train(req, TrainListener.NONE);
 * try (RewardModel rm = RewardModel.load(r.runDir())) { ... }
 * }</pre>
 */
public final class RewardTraining {
  private static final ObjectMapper JSON = new ObjectMapper();

  private RewardTraining() {}

  /**
   * One training job.
   *
   * @param model checkpoint directory, run directory or {@code tf-graphs/} preset
   * @param heads reward heads K trained together on one trunk (1 = a single reward model)
   * @param exec how the sessions run; {@link ExecConfig#recompute} (see {@link #withRecompute})
   *     recomputes the trained blocks in the backward pass of every phase (a single model, each
   *     member of an independent ensemble, a linear ensemble, both phases of a LoRA ensemble)
   * @param maxLength longest pair sequence in tokens (0 = the model's positions)
   * @param rewardToken the token the rewards are read at in training and stored with the model
   *     (null: the base model's rule, {@link BaseModel#rewardToken}, or on {@code resume} the rule
   *     the run was started with)
   */
  public record TrainRequest(
      Path model,
      Path data,
      Path out,
      TrainConfig train,
      ExecConfig exec,
      EnsembleOptions ensemble,
      Path tokenizer,
      PromptTemplate template,
      PreferenceFormat format,
      int maxLength,
      boolean skipBadRows,
      boolean resume,
      RewardToken rewardToken) {
    public TrainRequest {
      if (ensemble == null) {
        ensemble = EnsembleOptions.single();
      }
      if (maxLength < 0) {
        throw new IllegalArgumentException("max length must be >= 0, got " + maxLength);
      }
    }

    public static TrainRequest of(Path model, Path data, Path out) {
      return new TrainRequest(
          model,
          data,
          out,
          TrainConfig.defaults(),
          ExecConfig.defaults(),
          EnsembleOptions.single(),
          null,
          PromptTemplate.ALPACA,
          PreferenceFormat.AUTO,
          0,
          false,
          false,
          null);
    }

    public TrainRequest withTrain(TrainConfig t) {
      return new TrainRequest(
          model,
          data,
          out,
          t,
          exec,
          ensemble,
          tokenizer,
          template,
          format,
          maxLength,
          skipBadRows,
          resume,
          rewardToken);
    }

    public TrainRequest withEnsemble(EnsembleOptions e) {
      return new TrainRequest(
          model,
          data,
          out,
          train,
          exec,
          e,
          tokenizer,
          template,
          format,
          maxLength,
          skipBadRows,
          resume,
          rewardToken);
    }

    /** The same job with sessions run as {@code e} says. */
    public TrainRequest withExec(ExecConfig e) {
      return new TrainRequest(
          model,
          data,
          out,
          train,
          e,
          ensemble,
          tokenizer,
          template,
          format,
          maxLength,
          skipBadRows,
          resume,
          rewardToken);
    }

    /**
     * The same job with (or without) activation recomputation: every training step keeps only the
     * trained blocks' inputs for the backward pass and recomputes each block there ({@code rme
     * train-rm --recompute}). The gradients are the same (up to float32 rounding), the activation
     * memory about one block's instead of every trained block's, the cost a second forward of the
     * trained blocks. An execution choice: nothing the run stores depends on it, and a run resumes
     * with or without it.
     */
    public TrainRequest withRecompute(boolean recompute) {
      return withExec(exec.withRecompute(recompute));
    }

    /**
     * The same job recomputing only the blocks {@code r} covers (the lowest N; {@code rme train-rm
     * --recompute N}): the blocks above keep their activations. {@code MemoryPlan.fewestRecomputed}
     * gives the fewest that fit a memory budget ({@code --recompute auto}).
     */
    public TrainRequest withRecompute(dev.rewardensemble.config.Recomputation r) {
      return withExec(exec.withRecompute(r));
    }

    /** The same job reading the rewards at {@code rule} (null: the default, see above). */
    public TrainRequest withRewardToken(RewardToken rule) {
      return new TrainRequest(
          model,
          data,
          out,
          train,
          exec,
          ensemble,
          tokenizer,
          template,
          format,
          maxLength,
          skipBadRows,
          resume,
          rule);
    }
  }

  /**
   * The finished run.
   *
   * @param outcome the (last) training run's outcome
   * @param diagnostics ensemble diagnostics on the held-out split (null without one)
   */
  public record Result(
      Path runDir,
      TrainingRun.Outcome outcome,
      PreferenceData data,
      int trainPairs,
      int evalPairs,
      dev.rewardensemble.ensemble.Diagnostics diagnostics) {}

  /**
   * Reads the data, splits it, trains (or resumes) the requested kind and writes the run directory,
   * holding the run directory's lock ({@link DirLock}) throughout: a second process on the same
   * directory is refused naming the holder.
   */
  public static Result train(TrainRequest req, TrainListener listener) throws IOException {
    try (DirLock lock = DirLock.runDir(req.out())) {
      return trainLocked(req, listener);
    }
  }

  private static Result trainLocked(TrainRequest req, TrainListener listener) throws IOException {
    TrainConfig tc = req.train();
    BaseModel base = BaseModel.load(req.model(), tc.seed());
    int positions = base.config().maxPositions();
    int maxLen = req.maxLength() == 0 ? positions : req.maxLength();
    if (maxLen > positions) {
      throw new IllegalArgumentException(
          "--max-length " + maxLen + " exceeds the model's " + positions + " positions");
    }
    Path tokPath = req.tokenizer() != null ? req.tokenizer() : base.tokenizer().orElse(null);
    RewardToken rule = rewardToken(req, base);
    PreferenceData data = read(req, req.data(), base, tokPath, maxLen, listener);
    EnsembleOptions ens = req.ensemble();
    PreferenceData phase1 =
        ens.kind() == EnsembleKind.LORA && ens.phase1Data() != null
            ? read(req, ens.phase1Data(), base, tokPath, maxLen, listener)
            : null;
    Split<PreferencePair> split = Splits.split(data.pairs(), tc.evalFraction(), tc.seed());
    ObjectNode prov = JSON.createObjectNode();
    prov.put("base_model", req.model().toString());
    prov.put("data_file", req.data().toString());
    prov.put("data_sha256", data.sha256());
    prov.put("data_rows_used", data.pairs().size());
    prov.put("skipped_rows", data.skippedRows());
    prov.set("skipped_by_reason", JSON.valueToTree(data.skippedByReason()));
    prov.put("truncated_sequences", data.truncated());
    if (phase1 != null) {
      prov.put("phase1_data_file", ens.phase1Data().toString());
      prov.put("phase1_data_sha256", phase1.sha256());
    }
    prov.put("template", req.template().displayName());
    prov.put("max_length", maxLen);
    prov.put("seed", tc.seed());
    prov.put("ensemble", ens.kind().id());
    prov.put("k", ens.k());
    prov.put(RewardToken.KEY, rule.id());
    Provenance.addVersions(prov);
    Files.createDirectories(req.out());
    if (tokPath != null) {
      // the chat template and special tokens beside it go along, so the run scores chat rows
      dev.rewardensemble.data.ChatTemplate.copyTokenizerFiles(tokPath, req.out());
    }
    EnsembleTraining.Trained t =
        EnsembleTraining.train(
            req, base, rule, split, phase1 == null ? null : phase1.pairs(), prov, listener);
    return new Result(
        req.out(), t.outcome(), data, split.train().size(), split.eval().size(), t.diagnostics());
  }

  /**
   * The rule a run reads rewards at: the request's, else on resume the one the run was started with
   * ({@code run.json}'s provenance; absent there: a run from before the choice, {@link
   * RewardToken#LAST_ATTENDED}), else the base model's. Resuming with another rule is refused.
   */
  private static RewardToken rewardToken(TrainRequest req, BaseModel base) throws IOException {
    ObjectNode started = req.resume() ? RunDirs.runJson(req.out()) : null;
    if (started == null) {
      return req.rewardToken() != null ? req.rewardToken() : base.rewardToken();
    }
    Path runJson = req.out().resolve(RunDirs.RUN_JSON);
    RewardToken stored = RewardToken.stored(started.path("provenance"), runJson);
    if (req.rewardToken() != null && req.rewardToken() != stored) {
      throw new IllegalArgumentException(
          "--reward-token "
              + req.rewardToken().id()
              + " contradicts "
              + runJson
              + ": the run was started reading its reward at "
              + stored.id());
    }
    return stored;
  }

  private static PreferenceData read(
      TrainRequest req, Path file, BaseModel base, Path tokPath, int maxLen, TrainListener listener)
      throws IOException {
    PreferenceData data;
    try (Tokenizer tok = tokPath == null ? null : Tokenizer.load(tokPath)) {
      PreferenceReader reader =
          PreferenceReader.builder()
              .tokenizer(tok)
              .template(req.template())
              .maxLength(maxLen)
              .eosId(OptionalInt.empty())
              .truncation(Encoder.Truncation.LEFT)
              .format(req.format())
              .skipBadRows(req.skipBadRows())
              .vocabSize(OptionalInt.of(base.config().vocabSize()))
              .build();
      data = reader.read(file);
    }
    if (data.skippedRows() > 0) {
      listener.onMessage(
          file + ": skipped " + data.skippedRows() + " bad rows " + data.skippedByReason());
    }
    return data;
  }
}
