package dev.rewardensemble.eval;

import dev.rewardensemble.api.EnsembleOptions;
import dev.rewardensemble.api.ModelMerge;
import dev.rewardensemble.api.RewardTraining;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.PreferenceFormat;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainConfig;
import dev.rewardensemble.train.TrainListener;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Phase 4: in one world, per reward-model seed, the noisy and cleaner preference sets, and every
 * method's reward model trained on them ({@code out/world-<seed>/seed-<s>}).
 */
final class RewardModelsPhase {
  private RewardModelsPhase() {}

  /** One seed's preference sets: pairs and how many of them have flipped labels. */
  record SeedData(int seed, int noisyPairs, long noisyFlipped, int cleanPairs, long cleanFlipped) {}

  /**
   * The trained reward models.
   *
   * @param dirs per method, its reward-model directory for each seed
   */
  record RewardModels(
      List<DemoMethod> methods, List<SeedData> seeds, Map<DemoMethod, List<Path>> dirs) {}

  static RewardModels train(
      DemoSettings s, DemoData.Policy policy, DemoData.Samples samples, PhaseTimer timer)
      throws IOException {
    List<DemoMethod> methods = DemoMethod.all(s);
    DemoCost cost = timer.cost();
    GoldJudge judge = policy.world().judge();
    List<SeedData> seeds = new ArrayList<>();
    Map<DemoMethod, List<Path>> dirs = new LinkedHashMap<>();
    for (DemoMethod mt : methods) {
      dirs.put(mt, new ArrayList<>());
    }
    for (int seed = 0; seed < s.seeds(); seed++) {
      // A fresh draw per (world, seed); world 1's seeds are the single-world demo's 1000 + seed.
      long sd = 1000L * policy.world().seed() + seed;
      int seedIndex = seed;
      Path seedDir = policy.dir().resolve("seed-" + seed);
      String tag = policy.tag() + "seed " + seed + ": ";
      // This seed's measured seconds, for the rows that reuse a method's work of the same seed.
      Map<DemoMethod, Double> ownSeconds = new LinkedHashMap<>();
      Map<DemoMethod, Double> phase1Seconds = new LinkedHashMap<>();
      Path noisyFile = seedDir.resolve("prefs-noisy.json");
      Path cleanFile = seedDir.resolve("prefs-clean.json");
      seeds.add(
          timer.time(
              tag + "preference sets",
              () -> {
                int pairsPerPrompt = DemoData.PAIRS_PER_PROMPT;
                PreferenceBuilder.Result noisy =
                    PreferenceBuilder.build(samples.noisy(), judge, s.noise(), pairsPerPrompt, sd);
                PreferenceBuilder.Result clean =
                    PreferenceBuilder.build(
                        samples.clean(), judge, s.cleanNoise(), pairsPerPrompt, sd + 7);
                List<PreferenceBuilder.Row> noisyRows =
                    noisy.rows().subList(0, Math.min(s.preferencePairs(), noisy.rows().size()));
                List<PreferenceBuilder.Row> cleanRows =
                    clean.rows().subList(0, Math.min(s.cleanPairs(), clean.rows().size()));
                PreferenceBuilder.writeAlpacaFarm(noisyRows, noisyFile);
                PreferenceBuilder.writeAlpacaFarm(cleanRows, cleanFile);
                return new SeedData(
                    seedIndex,
                    noisyRows.size(),
                    noisyRows.stream().filter(PreferenceBuilder.Row::flipped).count(),
                    cleanRows.size(),
                    cleanRows.stream().filter(PreferenceBuilder.Row::flipped).count());
              }));
      for (DemoMethod mt : methods) {
        Path rmDir = seedDir.resolve("rm-" + mt.name());
        if (mt.warm()) {
          dirs.get(mt).add(warm(methods, dirs, ownSeconds, mt, seed, tag, rmDir, timer));
          continue;
        }
        // A lever row that changes LoRA phase 2 only starts from its base's phase 1 of this seed.
        DemoMethod base = LeverRows.phase1Source(methods, mt);
        timer.time(
            tag + "train RM " + mt.name(),
            () -> {
              long t0 = System.nanoTime();
              boolean reuse = base != null;
              if (reuse) {
                LeverRows.copyPhase1(dirs.get(base).get(seedIndex), rmDir);
              }
              long[] phase2At = {0};
              trainRm(
                  s,
                  policy.exec(),
                  policy.sftDir(),
                  mt,
                  mt.clean() ? cleanFile : noisyFile,
                  noisyFile,
                  rmDir,
                  sd,
                  reuse,
                  LeverRows.phase2Clock(phase2At));
              double secs = (System.nanoTime() - t0) / 1e9;
              cost.trained(mt, secs);
              ownSeconds.put(mt, secs);
              if (mt.kind() == EnsembleKind.LORA && !reuse && phase2At[0] != 0) {
                double p1 = (phase2At[0] - t0) / 1e9;
                cost.phase1(mt, p1);
                phase1Seconds.put(mt, p1);
              }
              if (reuse) {
                cost.reused(mt, phase1Seconds.getOrDefault(base, Double.NaN));
              }
              return rmDir;
            });
        dirs.get(mt).add(rmDir);
      }
    }
    return new RewardModels(methods, List.copyOf(seeds), dirs);
  }

  /**
   * A WARM method's model: its source ensemble of this seed (trained before it) averaged into one
   * model, LoRA adapters folded into the trunk.
   */
  private static Path warm(
      List<DemoMethod> methods,
      Map<DemoMethod, List<Path>> dirs,
      Map<DemoMethod, Double> ownSeconds,
      DemoMethod mt,
      int seed,
      String tag,
      Path rmDir,
      PhaseTimer timer)
      throws IOException {
    DemoMethod source =
        methods.stream()
            .filter(m -> m.name().equals(mt.warmSource()))
            .findFirst()
            .orElseThrow(() -> new IllegalStateException("no method " + mt.warmSource()));
    Path from = dirs.get(source).get(seed);
    return timer.time(
        tag + "merge RM " + mt.name() + " (WARM of " + source.name() + ")",
        () -> {
          long t0 = System.nanoTime();
          Path out = ModelMerge.merge(ModelMerge.Request.of(from, rmDir)).out();
          timer.cost().trained(mt, (System.nanoTime() - t0) / 1e9);
          // A weight average costs its source ensemble's training too (this seed's, just before).
          timer.cost().reused(mt, ownSeconds.getOrDefault(source, Double.NaN));
          return out;
        });
  }

  private static void trainRm(
      DemoSettings s,
      ExecConfig exec,
      Path sftDir,
      DemoMethod mt,
      Path data,
      Path noisyFile,
      Path out,
      long seed,
      boolean resume,
      TrainListener listener)
      throws IOException {
    TrainConfig tc =
        TrainConfig.builder()
            .epochs(s.rmEpochs())
            .batchSize(s.rmBatch())
            .gradAccum(1)
            .lr(s.rmLr())
            .seed(seed)
            .keepCheckpoints(1)
            .build();
    EnsembleOptions ens =
        switch (mt.kind()) {
          case SINGLE -> EnsembleOptions.single();
          case INDEPENDENT -> EnsembleOptions.of(EnsembleKind.INDEPENDENT, mt.k());
          case LINEAR ->
              new EnsembleOptions(
                  EnsembleKind.LINEAR,
                  mt.k(),
                  true,
                  null,
                  0.5,
                  null,
                  s.loraLr(),
                  Schedule.Kind.CONSTANT,
                  AggregationConfig.mean(),
                  true,
                  2048);
          case LORA ->
              new EnsembleOptions(
                  EnsembleKind.LORA,
                  mt.k(),
                  mt.k() > 1,
                  null,
                  0.5,
                  noisyFile,
                  s.loraLr(),
                  Schedule.Kind.CONSTANT,
                  AggregationConfig.mean(),
                  true,
                  2048);
        };
    if (mt.lever() != null) {
      tc = mt.lever().train(tc);
      ens =
          mt.lever()
              .apply(
                  ens, dev.rewardensemble.config.ModelConfigs.read(sftDir.resolve("config.json")));
    }
    RewardTraining.TrainRequest req =
        new RewardTraining.TrainRequest(
            sftDir,
            data,
            out,
            tc,
            exec,
            ens,
            null,
            PromptTemplate.RAW,
            PreferenceFormat.AUTO,
            0,
            false,
            resume,
            null);
    RewardTraining.train(req, listener);
  }
}
