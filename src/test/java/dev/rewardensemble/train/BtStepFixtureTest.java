package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.PreferencePair;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.testing.Fixtures;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** One Bradley-Terry + AdamW step against torch (the llama-bt-step fixture). */
class BtStepFixtureTest {

  static List<PreferencePair> pairs(JsonNode e) {
    int[][] c = Fixtures.ints2(e.get("chosen_ids"));
    int[][] cm = Fixtures.ints2(e.get("chosen_mask"));
    int[][] r = Fixtures.ints2(e.get("rejected_ids"));
    int[][] rm = Fixtures.ints2(e.get("rejected_mask"));
    List<PreferencePair> out = new ArrayList<>();
    for (int i = 0; i < c.length; i++) {
      out.add(
          new PreferencePair(
              Arrays.copyOf(c[i], Arrays.stream(cm[i]).sum()),
              Arrays.copyOf(r[i], Arrays.stream(rm[i]).sum()),
              0f,
              i + 1));
    }
    return out;
  }

  /** The fixture's step: batch 4, lr 1e-3, weight decay 0.1, constant schedule, no clipping. */
  private static RewardTrainer oneStepTrainer(HfCheckpoint.Checkpoint ckpt, ExecConfig exec) {
    TrainConfig tc =
        TrainConfig.builder()
            .steps(1)
            .batchSize(4)
            .gradAccum(1)
            .lr(1e-3)
            .weightDecay(0.1)
            .schedule(Schedule.Kind.CONSTANT)
            .warmupRatio(0)
            .maxGradNorm(0)
            .evalFraction(0)
            .keepCheckpoints(1)
            .build();
    return new RewardTrainer(
        ckpt.config(),
        1,
        dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
        ckpt.weights(),
        tc,
        exec,
        k -> true);
  }

  @Test
  void oneStepMatchesTorchAdamW() throws Exception {
    JsonNode e = Fixtures.expected("llama-bt-step");
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(Fixtures.dir("llama-seqcls"));
    try (RewardTrainer t = oneStepTrainer(ckpt, ExecConfig.deterministic())) {
      List<PreferencePair> pairs = pairs(e);
      RewardTrainer.BatchStats s = t.accumulate(pairs, 0);
      double loss = e.get("loss").asDouble();
      assertEquals(loss, s.loss(), 1e-4 * loss);
      double[] check = t.gradientCheck();
      assertEquals(1.0, check[1]);
      t.apply(1e-3, 1);
      double after = e.get("loss_after_one_step").asDouble();
      assertEquals(after, t.evaluate(pairs, 0).loss(), 1e-4 * after + 1e-6);
      float[] w = t.weights().get("score.weight").data();
      Fixtures.assertClose(
          Fixtures.flat(e.get("score_weight_after_one_step")),
          w,
          1e-4,
          1e-6,
          "score.weight after step");
    }
  }

  /**
   * bfloat16 weight products (mixed precision, float32 master weights): the same step within
   * bfloat16's precision, and really in bfloat16 (not bit-identical to float32).
   */
  @Test
  void oneStepInBfloat16StaysWithinItsPrecision() throws Exception {
    JsonNode e = Fixtures.expected("llama-bt-step");
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(Fixtures.dir("llama-seqcls"));
    ExecConfig bf16 =
        ExecConfig.deterministic().withCompute(dev.rewardensemble.config.Precision.BFLOAT16);
    try (RewardTrainer t = oneStepTrainer(ckpt, bf16)) {
      List<PreferencePair> pairs = pairs(e);
      double loss = e.get("loss").asDouble();
      double got = t.accumulate(pairs, 0).loss();
      assertEquals(loss, got, 3e-2 * loss);
      org.junit.jupiter.api.Assertions.assertNotEquals(
          loss, got, 1e-6 * loss, "bfloat16 products should round");
      t.apply(1e-3, 1);
      double after = e.get("loss_after_one_step").asDouble();
      assertEquals(after, t.evaluate(pairs, 0).loss(), 5e-2 * after + 1e-3);
      float[] w = t.weights().get("score.weight").data();
      Fixtures.assertClose(
          Fixtures.flat(e.get("score_weight_after_one_step")),
          w,
          1e-2,
          1e-4,
          "score.weight after step");
    }
  }

  /**
   * Under {@code --xla auto} the step is compiled and its micro-batch padded to a length bucket;
   * the padding changes nothing: torch's loss, loss after the step and head at 1e-4.
   */
  @Test
  void oneStepUnderAutoXlaWithBucketedLengthsMatchesTorch() throws Exception {
    JsonNode e = Fixtures.expected("llama-bt-step");
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(Fixtures.dir("llama-seqcls"));
    try (RewardTrainer t = oneStepTrainer(ckpt, new ExecConfig(1, 1, ExecConfig.XlaMode.AUTO))) {
      List<PreferencePair> pairs = pairs(e);
      int longest =
          pairs.stream()
              .mapToInt(p -> Math.max(p.chosen().length, p.rejected().length))
              .max()
              .orElseThrow();
      assertTrue(t.runLength(longest) > longest, "not padded: " + longest);
      double loss = e.get("loss").asDouble();
      assertEquals(loss, t.accumulate(pairs, 0).loss(), 1e-4 * loss);
      t.apply(1e-3, 1);
      double after = e.get("loss_after_one_step").asDouble();
      assertEquals(after, t.evaluate(pairs, 0).loss(), 1e-4 * after + 1e-6);
      Fixtures.assertClose(
          Fixtures.flat(e.get("score_weight_after_one_step")),
          t.weights().get("score.weight").data(),
          1e-4,
          1e-6,
          "score.weight after a bucketed, compiled step");
    }
    try (RewardTrainer plain = oneStepTrainer(ckpt, ExecConfig.deterministic())) {
      assertEquals(7, plain.runLength(7));
    }
  }
}
