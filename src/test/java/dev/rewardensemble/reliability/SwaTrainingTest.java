package dev.rewardensemble.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.EnsembleOptions;
import dev.rewardensemble.api.RewardTraining;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.train.AdamW;
import dev.rewardensemble.train.Checkpoints;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainConfig;
import dev.rewardensemble.train.TrainListener;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Stochastic weight averaging ({@code rme train-rm --swa}) in a whole training run: the averaging
 * slot of every checkpoint in the window is the mean of the weights after each averaged step, the
 * learning rate is held from the window's first step, the saved model is the average (not the last
 * weights), and a run killed inside the window resumes to the same bytes.
 */
class SwaTrainingTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  /** 27 training pairs, 2 x 2 per step: 7 steps per epoch, 14 in all; SWA over the last 7. */
  private static TrainConfig train(double swa, int saveEvery) {
    return TrainConfig.builder()
        .epochs(2)
        .batchSize(2)
        .lr(2e-3)
        .weightDecay(0.01)
        .warmupRatio(0.1)
        .seed(11)
        .saveEvery(saveEvery)
        .keepCheckpoints(20)
        .swa(swa)
        .build();
  }

  private static EnsembleOptions linear() {
    return new EnsembleOptions(
        EnsembleKind.LINEAR,
        2,
        true,
        null,
        0.5,
        null,
        2e-3,
        Schedule.Kind.CONSTANT,
        AggregationConfig.mean(),
        true,
        2048);
  }

  private RewardTraining.TrainRequest request(Path data, Path out, TrainConfig tc, boolean resume) {
    return ResumeExactnessTest.request(data, out, linear(), tc, resume);
  }

  private Path data() throws Exception {
    Path p = tmp.resolve("syn.jsonl");
    Files.write(
        p, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(30, 64, 8, 16, 3, 7)));
    return p;
  }

  private static Map<String, FloatTensor> read(Path file) throws Exception {
    try (Safetensors s = Safetensors.open(file)) {
      return s.readAll();
    }
  }

  private static Path checkpoint(Path run, int step) {
    return Checkpoints.root(run).resolve(String.format("step-%08d", step));
  }

  @Test
  void checkpointsHoldTheMeanOfTheWindowAndTheLearningRateIsHeld() throws Exception {
    Path data = data();
    Path run = tmp.resolve("swa");
    RewardTraining.train(request(data, run, train(0.5, 1), false), TrainListener.NONE);
    int total = 14;
    int from = train(0.5, 1).averageFrom(total); // 0-based step 7: checkpoints 8..13 averaged
    assertEquals(7, from);
    // Every weight after steps from+1..c, checkpoint c's slot: their running mean.
    Map<String, FloatTensor> first = read(checkpoint(run, from + 1).resolve("model.safetensors"));
    assertFalse(first.isEmpty());
    List<Map<String, FloatTensor>> seen = new ArrayList<>();
    for (int c = from + 1; c < total; c++) {
      seen.add(read(checkpoint(run, c).resolve("model.safetensors")));
      Map<String, FloatTensor> opt = read(checkpoint(run, c).resolve("optimizer.safetensors"));
      for (String key : first.keySet()) {
        FloatTensor avg = opt.get(key + AdamW.SWA_SUFFIX);
        assertTrue(avg != null, "no averaging slot for " + key + " in checkpoint " + c);
        float[] a = avg.data();
        for (int i = 0; i < a.length; i++) {
          double mean = 0;
          for (Map<String, FloatTensor> w : seen) {
            mean += w.get(key).data()[i];
          }
          mean /= seen.size();
          assertEquals(mean, a[i], 1e-6 + 1e-6 * Math.abs(mean), key + "[" + i + "] at " + c);
        }
      }
    }
    // Before the window the averaging slot is still zero.
    Map<String, FloatTensor> early = read(checkpoint(run, from).resolve("optimizer.safetensors"));
    for (String key : first.keySet()) {
      for (float v : early.get(key + AdamW.SWA_SUFFIX).data()) {
        assertEquals(0f, v);
      }
    }
    // The learning rate: the schedule's before the window, then held at step `from`'s value.
    List<JsonNode> rows = new ArrayList<>();
    for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
      JsonNode r = JSON.readTree(line);
      if (r.path("split").asText().equals("train")) {
        rows.add(r);
      }
    }
    assertEquals(total, rows.size());
    Schedule sch = train(0.5, 1).scheduleFor(total);
    for (int s = 0; s < total; s++) {
      double want = sch.lr(Math.min(s, from));
      assertEquals(want, rows.get(s).get("lr").asDouble(), 1e-12, "lr of step " + (s + 1));
      assertEquals(s >= from ? s + 1 - from : 0, rows.get(s).path("averaged").asInt(0));
    }
    assertTrue(sch.lr(total - 1) < sch.lr(from)); // the cosine would have decayed further
    // The saved model is the average: not the last checkpoint's weights, and within the range of
    // the window's weights (a mean of them), key by key.
    Map<String, FloatTensor> saved = read(run.resolve("model.safetensors"));
    Map<String, FloatTensor> last = seen.get(seen.size() - 1);
    int inside = 0;
    int differs = 0;
    int compared = 0;
    for (String key : first.keySet()) {
      if (!saved.containsKey(key)) {
        continue; // the heads are saved under their own layout
      }
      float[] s = saved.get(key).data();
      for (int i = 0; i < s.length; i++) {
        double lo = Double.MAX_VALUE;
        double hi = -Double.MAX_VALUE;
        for (Map<String, FloatTensor> w : seen) {
          lo = Math.min(lo, w.get(key).data()[i]);
          hi = Math.max(hi, w.get(key).data()[i]);
        }
        // The last step's weights (not checkpointed) may widen the range by one step's change.
        double slack = (hi - lo) + 1e-6;
        inside += s[i] >= lo - slack && s[i] <= hi + slack ? 1 : 0;
        differs += s[i] != last.get(key).data()[i] ? 1 : 0;
        compared++;
      }
    }
    assertTrue(compared > 1000, "compared " + compared);
    assertEquals(compared, inside);
    assertTrue(differs > compared / 2, differs + " of " + compared + " differ from the last");
  }

  @Test
  void aRunKilledInsideTheWindowResumesToIdenticalBytes() throws Exception {
    Path data = data();
    Path full = tmp.resolve("full");
    RewardTraining.train(request(data, full, train(0.5, 3), false), TrainListener.NONE);
    Path killed = tmp.resolve("killed");
    TrainListener kill = ResumeExactnessTest.killAfterCheckpoint(m -> m.contains("step-00000009"));
    assertThrows(
        ResumeExactnessTest.Killed.class,
        () -> RewardTraining.train(request(data, killed, train(0.5, 3), false), kill));
    RewardTraining.train(request(data, killed, train(0.5, 3), true), TrainListener.NONE);
    ResumeExactnessTest.assertSameTensors(
        full.resolve("model.safetensors"), killed.resolve("model.safetensors"));
    // Without averaging the same run saves other weights; resuming it with --swa is refused.
    Path plain = tmp.resolve("plain");
    RewardTraining.train(request(data, plain, train(0, 3), false), TrainListener.NONE);
    Map<String, FloatTensor> a = read(full.resolve("model.safetensors"));
    Map<String, FloatTensor> b = read(plain.resolve("model.safetensors"));
    String key = a.keySet().iterator().next();
    assertFalse(java.util.Arrays.equals(a.get(key).data(), b.get(key).data()));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                RewardTraining.train(
                    request(data, plain, train(0.5, 3), true), TrainListener.NONE));
    assertTrue(e.getMessage().contains("train.swa was null, now 0.5"), e.getMessage());
  }
}
