package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.io.AtomicDirs;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.model.LmHead;
import dev.rewardensemble.testing.Fixtures;
import dev.rewardensemble.train.TrainListener;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A PPO run interrupted after a checkpoint and resumed ends with the same policy as one run
 * through.
 */
class PpoRunTest {
  @TempDir Path tmp;

  private Path run(Path dir, int saveEvery, boolean resume) throws Exception {
    return run(dir, saveEvery, resume, Optional.empty());
  }

  private Path run(Path dir, int saveEvery, boolean resume, Optional<Path> tokenizer)
      throws Exception {
    LlamaConfig c = PpoTrainerTest.config();
    Map<String, FloatTensor> w = PpoTrainerTest.policy(c);
    Map<String, FloatTensor> trunk = new LinkedHashMap<>(w);
    trunk.remove(LmHead.KEY);
    PpoConfig cfg =
        PpoConfig.builder()
            .rolloutBatch(8)
            .stepBatch(4)
            .lr(3e-3)
            .warmupSteps(2)
            .klCoef(0.1)
            .klEstimator(KlPenalty.Estimator.K3)
            .adaptiveKl(new PpoConfig.AdaptiveKl(2.0, 100))
            .missingEosPenalty(0.5)
            .temperature(1.0)
            .topP(1.0)
            .maxNewTokens(6)
            .seed(9)
            .build();
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      prompts.add(new int[] {1, 3 + i});
    }
    try (PpoTrainer t =
        new PpoTrainer(
            c, w, c, trunk, PpoTrainerTest.toyReward(), cfg, ExecConfig.deterministic())) {
      return PpoRun.run(
          t,
          c,
          tokenizer,
          prompts,
          cfg,
          new PpoRun.Options(dir, 4, saveEvery, 2, resume),
          new ObjectMapper().createObjectNode(),
          s -> {},
          TrainListener.NONE);
    }
  }

  @Test
  void resumedRunEndsWithTheSamePolicy() throws Exception {
    Path a = run(tmp.resolve("a"), 0, false);
    Path bDir = tmp.resolve("b");
    run(bDir, 2, false);
    // Interrupt after the checkpoint of iteration 2: drop the final policy, resume.
    AtomicDirs.deleteRecursively(bDir.resolve("policy"));
    Path b = run(bDir, 2, true);
    HfCheckpoint.Checkpoint pa = HfCheckpoint.load(a);
    HfCheckpoint.Checkpoint pb = HfCheckpoint.load(b);
    assertEquals(HfCheckpoint.Kind.CAUSAL_LM, pa.kind());
    for (String k : pa.weights().keySet()) {
      Fixtures.assertClose(pa.weights().get(k).data(), pb.weights().get(k).data(), 1e-5, 1e-6, k);
    }
    long rows =
        Files.readAllLines(bDir.resolve("metrics.jsonl")).stream()
            .filter(l -> !l.isBlank())
            .count();
    assertEquals(4, rows);
    assertTrue(Files.readString(bDir.resolve("metrics.jsonl")).contains("\"klCoef\""));
  }

  @Test
  void thePolicyKeepsTheTokenizersChatTemplate() throws Exception {
    Path tok = Path.of(getClass().getResource("/chat-templates/qwen3/tokenizer.json").toURI());
    Path policy = run(tmp.resolve("chat"), 0, false, Optional.of(tok));
    for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
      assertEquals(Files.readString(tok.resolveSibling(f)), Files.readString(policy.resolve(f)), f);
    }
    dev.rewardensemble.data.ChatTemplate t =
        dev.rewardensemble.data.ChatTemplate.find(policy).orElseThrow();
    assertEquals(dev.rewardensemble.data.ChatTemplate.find(tok).orElseThrow().source(), t.source());
    assertEquals("<|im_end|>", t.specialTokens().get("eos_token"));
  }
}
