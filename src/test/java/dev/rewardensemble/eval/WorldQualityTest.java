package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.train.TrainListener;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * The default SFT policy makes a useful world: sampled at temperature 1 on held-out prompts it is
 * right about a third of the time, varies between samples, and shows the politeness shortcut.
 * Takes about two minutes on a 2-core CPU, so it runs only with {@code -Dworld.quality=true}
 * (the numbers themselves: {@code WorldStats.main}).
 */
@EnabledIfSystemProperty(named = "world.quality", matches = "true")
class WorldQualityTest {
  @Test
  void defaultPolicyIsImperfectAndVaried() {
    World world = World.create(1);
    Map<String, FloatTensor> w = SftPolicy.trainWeights(world, SftPolicy.Settings.defaults(), TrainListener.NONE);
    WorldStats s = WorldStats.measure(world, w, 16, 11, null);
    assertTrue(s.fractionCorrect() > 0.2 && s.fractionCorrect() < 0.45, s.toString());
    assertTrue(s.distinctPerPrompt() > 8, s.toString());
    assertTrue(s.goldStd() > 0.5 && s.meanWithinPromptStd() > 0.4, s.toString());
    assertTrue(s.correctIfPolite() > s.correctOtherwise() + 0.05, s.toString());
    assertTrue(s.endedFraction() > 0.95, s.toString());
  }
}
