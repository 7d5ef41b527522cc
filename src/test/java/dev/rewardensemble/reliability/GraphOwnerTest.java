package dev.rewardensemble.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.rl.PpoConfig;
import dev.rewardensemble.rl.PpoTrainer;
import dev.rewardensemble.rl.Sampler;
import dev.rewardensemble.rl.SequenceScorer;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.Fixtures;
import dev.rewardensemble.train.LmTrainConfig;
import dev.rewardensemble.train.LmTrainer;
import dev.rewardensemble.train.RewardTrainer;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A graph and its session have one owner that closes the session first on every failure path:
 * TensorFlow Java's {@code Graph.close()} waits for open sessions, so a wrong-shape initial value
 * used to hang the command instead of failing.
 */
class GraphOwnerTest {
  @TempDir Path tmp;

  private Path data() throws Exception {
    Path p = tmp.resolve("pairs.jsonl");
    Files.write(
        p, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(40, 64, 8, 16, 3, 1)));
    return p;
  }

  private static String[] trainRm(Path data, Path out, String... more) {
    List<String> a =
        new java.util.ArrayList<>(
            List.of(
                "train-rm",
                "--model",
                "tf-graphs/tiny-llama.json",
                "--data",
                data.toString(),
                "--out",
                out.toString(),
                "--steps",
                "2",
                "--batch-size",
                "4",
                "--grad-accum",
                "1",
                "--eval-fraction",
                "0.1",
                "--save-every",
                "1",
                "--threads",
                "1"));
    a.addAll(List.of(more));
    return a.toArray(String[]::new);
  }

  /** Rewrites {@code file} with tensor {@code key} (or the first tensor) one column wider. */
  private static String widen(Path file, String keyPart) throws Exception {
    Map<String, FloatTensor> w;
    try (Safetensors s = Safetensors.open(file)) {
      w = new LinkedHashMap<>(s.readAll());
    }
    String key = w.keySet().stream().filter(k -> k.contains(keyPart)).findFirst().orElseThrow();
    FloatTensor t = w.get(key);
    long[] shape = t.shape().clone();
    shape[shape.length - 1] += 1;
    w.put(key, FloatTensor.zeros(shape));
    Safetensors.write(file, w);
    return key;
  }

  private static void assertOneLineExit2(Cli.Run r, String... mentions) {
    assertEquals(2, r.code(), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    for (String m : mentions) {
      assertTrue(r.err().contains(m), "expected '" + m + "' in: " + r.err());
    }
  }

  /** The model's weights of the fixture reward model with {@code key} one column wider. */
  private static Map<String, FloatTensor> wrongShape(Map<String, FloatTensor> w, String key) {
    Map<String, FloatTensor> out = new LinkedHashMap<>(w);
    long[] shape = out.get(key).shape().clone();
    shape[shape.length - 1] += 1;
    out.put(key, FloatTensor.zeros(shape));
    return out;
  }

  // The trainers' own failure path: initial values that do not fit the graph (the session is open
  // by then). Before the owner, Graph.close() waited forever for that session.
  @Test
  @Timeout(60)
  void trainersWithWrongShapeInitialValuesFailInsteadOfHanging() throws Exception {
    HfCheckpoint.Checkpoint rm = HfCheckpoint.load(Fixtures.dir("llama-seqcls"));
    Map<String, FloatTensor> badRm = wrongShape(rm.weights(), "model.norm.weight");
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
    var e1 =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                new RewardTrainer(
                    rm.config(),
                    1,
                    dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
                    badRm,
                    tc,
                    ExecConfig.deterministic(),
                    k -> true));
    assertTrue(e1.getMessage().contains("model.norm.weight"), e1.getMessage());

    HfCheckpoint.Checkpoint pol = HfCheckpoint.load(Fixtures.dir("llama-causal"));
    Map<String, FloatTensor> badPol = wrongShape(pol.weights(), "model.norm.weight");
    var e2 =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                new LmTrainer(
                    pol.config(), badPol, LmTrainConfig.defaults(1), ExecConfig.deterministic()));
    assertTrue(e2.getMessage().contains("model.norm.weight"), e2.getMessage());

    Map<String, FloatTensor> trunk = new LinkedHashMap<>(rm.weights());
    trunk.remove("score.weight");
    var e3 =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                new PpoTrainer(
                    pol.config(),
                    badPol,
                    rm.config(),
                    trunk,
                    SequenceScorer.function((p, r) -> 0.0),
                    PpoConfig.defaults(),
                    ExecConfig.deterministic()));
    assertTrue(e3.getMessage().contains("model.norm.weight"), e3.getMessage());

    var e4 =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                RewardModel.fromWeights(
                    rm.config(),
                    1,
                    badRm,
                    dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
                    ExecConfig.deterministic(),
                    null,
                    Optional.empty()));
    assertTrue(e4.getMessage().contains("model.norm.weight"), e4.getMessage());
  }

  @Test
  @Timeout(60)
  void loraPhase2FromAWrongShapePhase1ModelFailsInsteadOfHanging() throws Exception {
    Path data = data();
    Path run = tmp.resolve("lora");
    var a = Cli.rme(trainRm(data, run, "--ensemble", "lora", "--k", "2", "--lora-rank", "2"));
    assertEquals(0, a.code(), a.err());
    // An interrupted phase 2 with a phase-1 model of the wrong shape (a damaged or foreign file).
    Files.delete(run.resolve("ensemble.json"));
    String key = widen(run.resolve("phase1").resolve("model.safetensors"), "embed_tokens");
    var b =
        Cli.rme(
            trainRm(data, run, "--ensemble", "lora", "--k", "2", "--lora-rank", "2", "--resume"));
    assertOneLineExit2(b, key);
  }

  @Test
  @Timeout(60)
  void singleAndLinearResumeFromAWrongShapeCheckpointFailFast() throws Exception {
    Path data = data();
    for (String kind : List.of("single", "linear")) {
      Path run = tmp.resolve(kind);
      String k = kind.equals("single") ? "1" : "2";
      var a = Cli.rme(trainRm(data, run, "--ensemble", kind, "--k", k));
      assertEquals(0, a.code(), a.err());
      Path ckpt;
      try (Stream<Path> s = Files.list(run.resolve("checkpoints"))) {
        ckpt =
            s.filter(p -> p.getFileName().toString().startsWith("step-"))
                .max(Path::compareTo)
                .orElseThrow();
      }
      Files.delete(run.resolve("model.safetensors"));
      Files.deleteIfExists(run.resolve("ensemble.json"));
      String key = widen(ckpt.resolve("model.safetensors"), "score");
      var b = Cli.rme(trainRm(data, run, "--ensemble", kind, "--k", k, "--resume"));
      assertOneLineExit2(b, key);
    }
  }

  @Test
  @Timeout(60)
  void ppoWithAWrongShapeRewardModelFailsFast() throws Exception {
    Path rm = tmp.resolve("rm");
    Files.createDirectories(rm);
    Files.copy(Fixtures.dir("llama-seqcls").resolve("config.json"), rm.resolve("config.json"));
    Files.copy(
        Fixtures.dir("llama-seqcls").resolve("model.safetensors"), rm.resolve("model.safetensors"));
    widen(rm.resolve("model.safetensors"), "score");
    Path prompts = tmp.resolve("prompts.jsonl");
    Files.write(prompts, List.of("{\"input_ids\": [1, 5, 7]}", "{\"input_ids\": [1, 9]}"));
    var r =
        Cli.rme(
            "ppo",
            "--policy",
            Fixtures.dir("llama-causal").toString(),
            "--reward-model",
            rm.toString(),
            "--prompts",
            prompts.toString(),
            "--out",
            tmp.resolve("ppo").toString(),
            "--iterations",
            "1",
            "--rollout-batch",
            "2",
            "--step-batch",
            "2",
            "--max-new-tokens",
            "4");
    assertOneLineExit2(r, "score");
  }

  @Test
  @Timeout(60)
  void rewardModelAfterCloseIsAnErrorAndCloseWaitsForARunningScore() throws Exception {
    RewardModel rm =
        RewardModel.load(Path.of("examples/tiny-llama-rm"), ExecConfig.deterministic());
    List<int[]> seqs = List.of(new int[] {1, 5, 7, 9}, new int[] {1, 2});
    float[][] before = rm.score(seqs, 2);
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      // Many scores racing one close: each either completes with the same numbers or sees "closed".
      CountDownLatch go = new CountDownLatch(1);
      Future<Integer> scorer =
          pool.submit(
              () -> {
                go.await();
                int done = 0;
                for (int i = 0; i < 200; i++) {
                  try {
                    float[][] r = rm.score(seqs, 2);
                    assertEquals(before[0][0], r[0][0]);
                    done++;
                  } catch (IllegalStateException e) {
                    assertEquals("closed", e.getMessage());
                    return done;
                  }
                }
                return done;
              });
      go.countDown();
      Thread.sleep(20);
      rm.close();
      scorer.get(30, TimeUnit.SECONDS);
    } finally {
      pool.shutdownNow();
    }
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> rm.score(seqs, 2));
    assertEquals("closed", e.getMessage());
    rm.close(); // idempotent
  }

  @Test
  @Timeout(60)
  void samplerAfterCloseIsAnError() throws Exception {
    Sampler s = Sampler.load(Fixtures.dir("llama-causal"), ExecConfig.deterministic());
    s.close();
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () ->
                s.generate(
                    List.of(new int[] {1, 5}),
                    dev.rewardensemble.rl.SamplingConfig.ppo().withSeed(1)));
    assertEquals("closed", e.getMessage());
  }
}
