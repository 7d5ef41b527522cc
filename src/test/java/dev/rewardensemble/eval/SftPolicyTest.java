package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.train.LmTrainConfig;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainListener;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SftPolicyTest {
  @Test
  void presetMatchesTheCodeAndTheVocabulary() throws Exception {
    assertEquals(SftPolicy.config(), ModelConfigs.read(Paths.get("tf-graphs/demo-policy.json")));
    assertEquals(CharVocabulary.SIZE, SftPolicy.config().vocabSize());
  }

  @Test
  void shortRunSavesALoadableCausalLm(@TempDir Path dir) throws Exception {
    World world = World.create(1);
    SftPolicy.Settings s =
        new SftPolicy.Settings(
            500,
            new LmTrainConfig(16, 40, 3e-3, 0.0, Schedule.Kind.CONSTANT, 0.0, 1.0, false, 1),
            3,
            ExecConfig.defaults());
    List<Double> losses = new ArrayList<>();
    Path out =
        SftPolicy.train(
            world,
            dir.resolve("policy"),
            s,
            new TrainListener() {
              @Override
              public void onStep(
                  int step,
                  int total,
                  double loss,
                  double acc,
                  double lr,
                  double norm,
                  double sec) {
                losses.add(loss);
              }
            });
    assertEquals(40, losses.size());
    assertTrue(
        losses.get(39) < 0.6 * losses.get(0), "loss " + losses.get(0) + " -> " + losses.get(39));

    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(out);
    assertEquals(SftPolicy.ARCHITECTURE, ckpt.architecture());
    assertEquals(HfCheckpoint.Kind.CAUSAL_LM, ckpt.kind());
    assertEquals(SftPolicy.config(), ckpt.config());
    assertTrue(ckpt.weights().containsKey("lm_head.weight"));
    try (Tokenizer tok = Tokenizer.load(out)) {
      assertArrayEquals(CharVocabulary.encode("add 1+2?Sure! 3"), tok.encode("add 1+2?Sure! 3"));
    }

    // The saved policy samples: responses decode to text the judge can score.
    Map<String, FloatTensor> w = ckpt.weights();
    try (SimpleSampler sampler = new SimpleSampler(ckpt.config(), w, ExecConfig.defaults())) {
      List<SimpleSampler.Sample> xs =
          sampler.sample(
              List.of(World.promptIds("add 1+2?"), World.promptIds("reverse cat?")), 1.0, 12, 5);
      assertEquals(2, xs.size());
      for (SimpleSampler.Sample x : xs) {
        assertTrue(x.response().length <= 12);
        world.judge().score("add 1+2?", World.responseText(x.response()), x.ended());
      }
    }
  }
}
