package dev.rewardensemble.reliability;

import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.rewardensemble.api.EnsembleOptions;
import dev.rewardensemble.api.RewardTraining;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.PreferenceFormat;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.train.MemberData;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainConfig;
import dev.rewardensemble.train.TrainListener;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The diversity levers survive kill-and-resume bit for bit (as {@link ResumeExactnessTest} does for
 * the plain kinds): per-member resamples, the prior (checkpoints hold the trained part, the saved
 * heads the folded sum), per-member ranks, and the diversity regulariser.
 */
class LeversResumeTest {
  private static final Path PRESET = Path.of("tf-graphs/tiny-llama.json");

  @TempDir Path tmp;

  private static final class Killed extends RuntimeException {
    Killed(String where) {
      super("simulated kill after " + where);
    }
  }

  private RewardTraining.TrainRequest request(
      Path data, Path out, EnsembleOptions ens, boolean resume) {
    TrainConfig tc =
        TrainConfig.builder()
            .epochs(2)
            .batchSize(2)
            .lr(2e-3)
            .weightDecay(0.01)
            .warmupRatio(0.1)
            .seed(11)
            .evalEvery(5)
            .saveEvery(3)
            .build();
    return new RewardTraining.TrainRequest(
        PRESET,
        data,
        out,
        tc,
        ExecConfig.defaults(),
        ens,
        null,
        PromptTemplate.RAW,
        PreferenceFormat.AUTO,
        0,
        false,
        resume,
        dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
  }

  private void resumesToIdenticalBytes(EnsembleOptions ens) throws Exception {
    Path data = tmp.resolve("syn.jsonl");
    Files.write(
        data, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(30, 64, 8, 16, 3, 7)));
    Path full = tmp.resolve("full");
    RewardTraining.train(request(data, full, ens, false), TrainListener.NONE);
    Path killed = tmp.resolve("killed");
    TrainListener kill =
        new TrainListener() {
          @Override
          public void onMessage(String message) {
            if (message.startsWith("checkpoint ")
                && message.contains("phase2")
                && message.contains("step-00000003")) {
              throw new Killed(message);
            }
          }
        };
    assertThrows(Killed.class, () -> RewardTraining.train(request(data, killed, ens, false), kill));
    RewardTraining.train(request(data, killed, ens, true), TrainListener.NONE);
    for (String o :
        List.of(
            "phase1/model.safetensors",
            "adapters/member-0/adapter_model.safetensors",
            "adapters/member-1/adapter_model.safetensors")) {
      ResumeExactnessTest.assertSameTensors(full.resolve(o), killed.resolve(o));
    }
  }

  private static EnsembleOptions lora(LoraConfig l) {
    return new EnsembleOptions(
        EnsembleKind.LORA,
        2,
        true,
        l,
        0.5,
        null,
        2e-3,
        Schedule.Kind.CONSTANT,
        AggregationConfig.mean(),
        true,
        2048);
  }

  @Test
  void loraWithBootstrapDataPriorAndRanksResumesToIdenticalBytes() throws Exception {
    LoraConfig l =
        LoraConfig.defaults(dev.rewardensemble.config.ModelConfigs.read(PRESET)).withRank(4, 8);
    resumesToIdenticalBytes(
        lora(l).withLevers(MemberData.BOOTSTRAP, 1.5, 0).withLoraRanks(List.of(2, 4)));
  }

  @Test
  void loraWithDisjointDataAndDiversityResumesToIdenticalBytes() throws Exception {
    LoraConfig l =
        LoraConfig.defaults(dev.rewardensemble.config.ModelConfigs.read(PRESET)).withRank(4, 8);
    resumesToIdenticalBytes(lora(l).withLevers(MemberData.DISJOINT, 0, 0.5));
  }
}
