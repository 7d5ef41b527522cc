package dev.rewardensemble.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.data.PreferencePair;
import dev.rewardensemble.data.Split;
import dev.rewardensemble.data.Splits;
import dev.rewardensemble.ensemble.Diagnostics;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.EnsembleSpec;
import dev.rewardensemble.ensemble.LoraEnsembleGraph;
import dev.rewardensemble.ensemble.LoraInit;
import dev.rewardensemble.ensemble.Normalization;
import dev.rewardensemble.io.CrashPoints;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.RunDirs;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.PeftAdapters;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.train.MemberLevers;
import dev.rewardensemble.train.TrainConfig;
import dev.rewardensemble.train.TrainListener;
import dev.rewardensemble.train.TrainingRun;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The paper's Algorithm 1 for each ensemble kind, over one train/eval split:
 *
 * <ul>
 *   <li>single and linear: one run with K heads on one trunk (optionally bootstrapped per head);
 *   <li>independent: K runs in {@code member-k/}, member k seeded with {@code seed + k} (head
 *       initialisation and data order), same split;
 *   <li>LoRA: phase 1 in {@code phase1/} (full finetune as a linear ensemble on a first part of the
 *       data), phase 2 in {@code phase2/} (trunk frozen; K adapters and heads, heads continuing
 *       from phase 1, on the rest with the LoRA learning rate), adapters in {@code adapters/} in
 *       the PEFT layout.
 * </ul>
 *
 * Then the per-member normalisation is measured on the training responses and diagnostics on the
 * held-out pairs (on the ensemble assembled from its layout, {@link EnsembleModel#fromLayout}),
 * {@code ensemble.json} is written with them, and last {@code run.json} says {@code "complete":
 * true}: loaders refuse the run directory before that. {@code --resume} of a run killed after its
 * weights were written skips the training and does the rest.
 */
final class EnsembleTraining {
  private static final ObjectMapper JSON = new ObjectMapper();

  private EnsembleTraining() {}

  record Trained(TrainingRun.Outcome outcome, Diagnostics diagnostics) {}

  static Trained train(
      RewardTraining.TrainRequest req,
      BaseModel base,
      RewardToken rule,
      Split<PreferencePair> split,
      List<PreferencePair> phase1Data,
      ObjectNode prov,
      TrainListener listener)
      throws IOException {
    EnsembleOptions ens = req.ensemble();
    EnsembleSpec spec =
        ens.spec(); // kind, K and aggregation, validated once; K is read from it below
    TrainConfig tc = req.train();
    Path out = req.out();
    int k = spec.k();
    ModelConfig config = base.config();
    ObjectNode layout = JSON.createObjectNode();
    RunDirs.cleanLeftovers(out);
    RunDirs.cleanLeftovers(out.resolve("adapters"));
    putLevers(prov, ens);
    // single and linear share the run directory with their one training run, whose run.json is the
    // directory's; independent and LoRA runs get a run.json of their own above their sub-runs.
    boolean ownRunJson =
        spec.kind() == EnsembleKind.INDEPENDENT || spec.kind() == EnsembleKind.LORA;
    if (ownRunJson) {
      boolean held =
          Files.exists(out.resolve(RunDirs.RUN_JSON))
              || Files.exists(out.resolve(EnsembleModel.MANIFEST));
      if (!req.resume() && held) {
        throw new IllegalArgumentException(
            out + " already holds a run; pass --resume to continue it or choose another --out");
      }
      if (req.resume()
          && RunDirs.isComplete(out)
          && Files.exists(out.resolve(EnsembleModel.MANIFEST))) {
        throw new IllegalArgumentException(out + " holds a completed run; nothing to resume");
      }
      RunDirs.writeRunJson(out, ensembleRunJson(spec, prov, false));
    }
    TrainingRun.Outcome outcome;
    switch (spec.kind()) {
      case SINGLE, LINEAR -> {
        outcome =
            TrainingRun.run(
                TrainingRun.Spec.plain(
                    config,
                    base.rewardArchitecture(),
                    k,
                    rule,
                    base.withHeads(k, tc.seed()),
                    tc,
                    req.exec(),
                    out,
                    req.resume(),
                    prov,
                    MemberLevers.of(ens.membersData()).withPrior(ens.priorScale(), tc.seed())),
                split.train(),
                split.eval(),
                listener,
                false);
        layout.put("model", ".");
      }
      case INDEPENDENT -> {
        ArrayNode members = layout.putArray("members");
        outcome = null;
        for (int m = 0; m < k; m++) {
          Path dir = out.resolve("member-" + m);
          members.add("member-" + m);
          if (req.resume() && completed(dir)) {
            listener.onMessage("member " + m + " already trained: " + dir);
            continue;
          }
          listener.onMessage(
              "training independent member " + m + " of " + k + " (seed " + (tc.seed() + m) + ")");
          TrainConfig tm = tc.withSeed(tc.seed() + m);
          ObjectNode pm = prov.deepCopy().put("member", m).put("member_seed", tc.seed() + m);
          outcome =
              run(
                  TrainingRun.Spec.plain(
                      config,
                      base.rewardArchitecture(),
                      1,
                      rule,
                      base.withHeads(1, tc.seed() + m),
                      tm,
                      req.exec(),
                      dir,
                      req.resume(),
                      pm,
                      MemberLevers.none().withPrior(ens.priorScale(), tc.seed() + m)),
                  split.train(),
                  split.eval(),
                  listener);
        }
      }
      case LORA ->
          outcome = trainLora(req, spec, base, rule, split, phase1Data, prov, layout, listener);
      default -> throw new IllegalStateException(spec.kind().toString());
    }

    // Measured on the ensemble as laid out, not through the manifest: the run is not complete yet.
    Normalization norm = null;
    Diagnostics diag = null;
    try (RewardModel rm =
        RewardModel.of(EnsembleModel.fromLayout(out, spec, layout, rule), req.exec())) {
      if (ens.normalize() && k > 1) {
        List<int[]> ref = new ArrayList<>();
        for (PreferencePair p : split.train()) {
          if (ref.size() >= ens.referenceSize()) {
            break;
          }
          ref.add(p.chosen());
          ref.add(p.rejected());
        }
        norm = Normalization.fit(List.of(rm.score(ref, tc.batchSize() * 2)));
      }
      if (!split.eval().isEmpty()) {
        List<int[]> c = new ArrayList<>();
        List<int[]> r = new ArrayList<>();
        split
            .eval()
            .forEach(
                p -> {
                  c.add(p.chosen());
                  r.add(p.rejected());
                });
        diag =
            Diagnostics.compute(
                List.of(rm.score(c, tc.batchSize() * 2)),
                List.of(rm.score(r, tc.batchSize() * 2)),
                Optional.ofNullable(norm),
                Diagnostics.defaultAggregations());
      }
    }
    ObjectNode finalProv = prov.deepCopy();
    if (diag != null) {
      finalProv.set("diagnostics", JSON.valueToTree(diag));
    }
    EnsembleModel.writeManifest(out, spec.withNormalization(norm), rule, layout, finalProv);
    CrashPoints.reached("ensemble-manifest-written");
    if (ownRunJson) {
      RunDirs.writeRunJson(out, ensembleRunJson(spec, finalProv, true));
    } else {
      RunDirs.markComplete(out);
    }
    return new Trained(outcome, diag);
  }

  private static TrainingRun.Outcome run(
      TrainingRun.Spec spec,
      List<PreferencePair> train,
      List<PreferencePair> eval,
      TrainListener listener)
      throws IOException {
    return TrainingRun.run(spec, train, eval, listener);
  }

  /**
   * A sub-run (independent member, LoRA phase 1) that finished: marked complete, weights present.
   */
  private static boolean completed(Path dir) throws IOException {
    return RunDirs.isComplete(dir) && Files.isRegularFile(dir.resolve("model.safetensors"));
  }

  /** {@code run.json} of an independent or LoRA run directory (its sub-runs have their own). */
  private static ObjectNode ensembleRunJson(EnsembleSpec spec, ObjectNode prov, boolean complete) {
    ObjectNode r = JSON.createObjectNode();
    r.put("format", "rme-run/1");
    r.put("ensemble", spec.kind().id());
    r.put("k", spec.k());
    r.set("provenance", prov);
    r.put("complete", complete);
    return r;
  }

  private static TrainingRun.Outcome trainLora(
      RewardTraining.TrainRequest req,
      EnsembleSpec spec,
      BaseModel base,
      RewardToken rule,
      Split<PreferencePair> split,
      List<PreferencePair> phase1Data,
      ObjectNode prov,
      ObjectNode layout,
      TrainListener listener)
      throws IOException {
    EnsembleOptions ens = req.ensemble();
    TrainConfig tc = req.train();
    ModelConfig config = base.config();
    int k = spec.k();
    Path out = req.out();
    List<PreferencePair> p1;
    List<PreferencePair> p2;
    if (phase1Data != null) {
      p1 = phase1Data;
      p2 = split.train();
    } else {
      // Phase 1 takes phase1Fraction of the training split, phase 2 the rest (a seeded split).
      Split<PreferencePair> parts =
          Splits.split(split.train(), 1 - ens.phase1Fraction(), tc.seed() + 1);
      p1 = parts.train();
      p2 = parts.eval();
    }
    if (p2.isEmpty()) {
      throw new IllegalArgumentException(
          "LoRA phase 2 has no training pairs: lower --phase1-fraction or add data");
    }
    prov.put("phase1_pairs", p1.size());
    prov.put("phase2_pairs", p2.size());

    // Phase 1: full finetune as a linear-layer ensemble.
    Path phase1Dir = out.resolve("phase1");
    Map<String, FloatTensor> phase1Weights;
    if (req.resume() && completed(phase1Dir)) {
      listener.onMessage("phase 1 already trained: " + phase1Dir);
      phase1Weights = LazyWeights.ofFile(phase1Dir.resolve("model.safetensors"));
    } else {
      listener.onMessage(
          "LoRA phase 1: full finetune with " + k + " heads on " + p1.size() + " pairs");
      phase1Weights =
          TrainingRun.run(
                  TrainingRun.Spec.plain(
                      config,
                      base.rewardArchitecture(),
                      k,
                      rule,
                      base.withHeads(k, tc.seed()),
                      tc,
                      req.exec(),
                      phase1Dir,
                      req.resume(),
                      prov,
                      MemberLevers.bootstrap(ens.bootstrap())
                          .withPrior(ens.priorScale(), tc.seed())),
                  p1,
                  split.eval(),
                  listener)
              .weights();
    }

    // Phase 2: frozen trunk, K fresh adapters, the heads continuing from phase 1's.
    LoraConfig lora =
        (ens.lora() == null ? LoraConfig.defaults(config) : ens.lora()).checkFor(config);
    // Phase 1's weights stay in its model.safetensors until streamed into phase 2's variables.
    LazyWeights init = new LazyWeights(phase1Weights);
    init.putAll(LoraInit.adapters(config, lora, k, tc.seed()));
    int[] ranks = ens.memberRanks();
    if (ranks != null && lora.rank() != java.util.Arrays.stream(ranks).max().getAsInt()) {
      throw new IllegalArgumentException(
          "per-member LoRA ranks "
              + java.util.Arrays.toString(ranks)
              + " are stacked at the largest, but the LoRA configuration has rank "
              + lora.rank());
    }
    MemberLevers levers =
        MemberLevers.of(ens.membersData())
            .withPrior(ens.priorScale(), tc.seed())
            .withDiversityWeight(ens.diversityWeight())
            .withLoraRanks(ranks);
    FloatTensor prior = levers.prior(k, config.hiddenSize());
    if (prior != null) {
      // Phase 1 saved its heads with the prior folded in; phase 2 trains the heads' own part, with
      // the same prior added in its graph and folded into the adapters' heads at the end.
      init.put(RewardHeads.KEY, RewardHeads.unfold(phase1Weights.get(RewardHeads.KEY), prior));
    }
    TrainConfig tc2 = tc.withLr(ens.loraLr(), ens.loraSchedule());
    long seed = tc.seed();
    Path adaptersDir = out.resolve("adapters");
    ArrayNode adapters = layout.putArray("adapters");
    for (int m = 0; m < k; m++) {
      adapters.add("adapters/member-" + m);
    }
    layout.put("base", "phase1");
    layout.set("lora", JSON.valueToTree(lora));
    Set<String> trainable = Set.copyOf(LoraEnsembleGraph.trainableKeys(config, lora));
    // The frozen trunk in the storage --weights asks for: auto keeps phase 1's float32 values.
    Precision frozen = req.exec().weights().resolve(LazyWeights.allBf16(phase1Weights));
    TrainingRun.Spec phase2 =
        new TrainingRun.Spec(
            config,
            base.rewardArchitecture(),
            k,
            rule,
            init,
            trainable::contains,
            tc2,
            req.exec(),
            out.resolve("phase2"),
            req.resume(),
            prov,
            LoraPhase2.forward(config, lora, k, trainable, frozen, seed, rule, prior, ranks),
            levers,
            (runDir, weights) -> {
              Map<String, FloatTensor> w = new LinkedHashMap<>();
              for (String key : weights.keySet()) {
                if (trainable.contains(key)) {
                  w.put(key, weights.get(key)); // adapters and heads only: the trunk stays put
                }
              }
              if (prior != null) {
                w.put(RewardHeads.KEY, RewardHeads.fold(w.get(RewardHeads.KEY), prior));
              }
              PeftAdapters.Stacked stacked = new PeftAdapters.Stacked(config, lora, k, w);
              for (int m = 0; m < k; m++) {
                PeftAdapters.export(
                    adaptersDir.resolve("member-" + m),
                    stacked,
                    m,
                    "../../phase1",
                    ranks == null ? lora.rank() : ranks[m]);
              }
              Files.writeString(
                  runDir.resolve("COMPLETE"), "adapters written to " + adaptersDir + "\n");
            });
    if (req.resume() && Files.exists(out.resolve("phase2").resolve("COMPLETE"))) {
      listener.onMessage("phase 2 already trained");
      return null;
    }
    listener.onMessage(
        "LoRA phase 2: "
            + k
            + " adapters (r="
            + (ranks == null ? String.valueOf(lora.rank()) : java.util.Arrays.toString(ranks))
            + ") on "
            + p2.size()
            + " pairs, lr "
            + ens.loraLr());
    return TrainingRun.run(phase2, p2, split.eval(), listener);
  }

  /**
   * The diversity levers of a run, in its provenance (the sub-runs' fingerprints hold them too).
   */
  private static void putLevers(ObjectNode prov, EnsembleOptions ens) {
    prov.put("bootstrap", ens.bootstrap());
    prov.put("member_data", ens.membersData().id());
    prov.put("prior_scale", ens.priorScale());
    prov.put("diversity_weight", ens.diversityWeight());
    if (ens.memberRanks() != null) {
      prov.set("lora_ranks", JSON.valueToTree(ens.loraRanks()));
    }
  }
}
