package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.testing.Fixtures;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The lanes rule, and generation in lanes against one lane. */
class GenerationLanesTest {
  private static final long CACHE = 32L << 20;
  private static final ExecConfig DEFAULTS = ExecConfig.defaults();

  @Test
  void smallModelsRunOneLanePerThreadOnlyWithPoolsOfTheirOwn() throws Exception {
    ModelConfig bench = Models.preset("bench-llama"); // 8.9M parameters: 35.6 MB in float32
    assertEquals(
        4L * (8192L * 256 + 4 * (4 * 256 * 256 + 3 * 256 * 688 + 2 * 256) + 256 + 8192 * 256),
        GenerationLanes.weightBytes(bench, Precision.FLOAT32));
    assertEquals(
        GenerationLanes.weightBytes(bench, Precision.FLOAT32) / 2,
        GenerationLanes.weightBytes(bench, Precision.BFLOAT16));
    GenerationLanes two =
        GenerationLanes.choose(bench, Precision.FLOAT32, DEFAULTS, "auto", 2, CACHE, true);
    assertEquals(new GenerationLanes(2, 1), two);
    // the thread budget is --threads when given, the cores otherwise
    assertEquals(
        new GenerationLanes(4, 1),
        GenerationLanes.choose(
            bench, Precision.FLOAT32, new ExecConfig(4, 0, false), "auto", 2, CACHE, true));
    // sessions sharing one pool: no automatic lanes
    assertSame(
        GenerationLanes.ONE,
        GenerationLanes.choose(bench, Precision.FLOAT32, DEFAULTS, "auto", 2, CACHE, false));
    // one thread: one lane
    assertSame(
        GenerationLanes.ONE,
        GenerationLanes.choose(
            bench, Precision.FLOAT32, new ExecConfig(1, 1, false), "auto", 8, CACHE, true));
    // a GPU: one lane
    assertSame(
        GenerationLanes.ONE,
        GenerationLanes.choose(
            bench,
            Precision.FLOAT32,
            new ExecConfig(0, 0, false, "gpu:0", true, "", false),
            "3",
            2,
            CACHE,
            true));
  }

  @Test
  void modelsWhoseWeightsExceedTwiceTheCacheRunOneLane() throws Exception {
    ModelConfig bench = Models.preset("bench-llama");
    long bytes = GenerationLanes.weightBytes(bench, Precision.FLOAT32);
    assertSame(
        GenerationLanes.ONE,
        GenerationLanes.choose(bench, Precision.FLOAT32, DEFAULTS, "auto", 2, bytes / 2 - 1, true));
    assertEquals(
        2,
        GenerationLanes.choose(bench, Precision.FLOAT32, DEFAULTS, "auto", 2, bytes / 2, true)
            .lanes());
    // stored in bfloat16 the same model reads half the bytes
    assertEquals(
        2,
        GenerationLanes.choose(bench, Precision.BFLOAT16, DEFAULTS, "auto", 2, bytes / 4, true)
            .lanes());
    assertSame(
        GenerationLanes.ONE,
        GenerationLanes.choose(
            Models.preset("gpt2-124m"), Precision.FLOAT32, DEFAULTS, "auto", 2, CACHE, true));
  }

  /**
   * This machine's rule counts at most 32 MiB of the cache its OS reports: a 2-core Intel Xeon VM
   * reports its host's 260 MiB, and two lanes at GPT-2 124M measured 0.88x of one there.
   */
  @Test
  void theReportedCacheCountsAtMostThirtyTwoMebibytes() throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        System.getProperty(GenerationLanes.PROPERTY) == null, "the property overrides the rule");
    assertSame(
        GenerationLanes.ONE,
        GenerationLanes.choose(Models.preset("gpt2-124m"), Precision.FLOAT32, DEFAULTS));
    ModelConfig wide = Models.preset("bench-llama-wide"); // 236 MB, 0.92x in two lanes there
    assertTrue(GenerationLanes.weightBytes(wide, Precision.FLOAT32) > 2 * (32L << 20));
    assertSame(GenerationLanes.ONE, GenerationLanes.choose(wide, Precision.FLOAT32, DEFAULTS));
  }

  @Test
  void thePropertyOverridesTheRuleAndBadValuesAreNamed() throws Exception {
    ModelConfig big = Models.preset("gpt2-124m");
    assertEquals(
        new GenerationLanes(2, 1),
        GenerationLanes.choose(big, Precision.FLOAT32, DEFAULTS, " 2 ", 2, CACHE, true));
    // without pools of their own, lanes keep the configuration's threads
    assertEquals(
        new GenerationLanes(2, 0),
        GenerationLanes.choose(big, Precision.FLOAT32, DEFAULTS, "2", 2, CACHE, false));
    assertSame(
        GenerationLanes.ONE,
        GenerationLanes.choose(big, Precision.FLOAT32, DEFAULTS, "1", 2, CACHE, true));
    for (String bad : List.of("0", "-1", "two", "")) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> GenerationLanes.choose(big, Precision.FLOAT32, DEFAULTS, bad, 2, CACHE, true));
      assertEquals(
          "rme.generationLanes must be auto or a number >= 1, got '" + bad + "'", e.getMessage());
    }
    assertTrue(GenerationLanes.ownPools("true"));
    assertTrue(GenerationLanes.ownPools(" TRUE"));
    assertTrue(GenerationLanes.ownPools("1"));
    assertEquals(false, GenerationLanes.ownPools("false"));
    assertEquals(false, GenerationLanes.ownPools(null));
  }

  @Test
  void sessionConfigSplitsTheThreadsAndGivesEveryLaneAnInterOpThread() {
    ExecConfig exec = new ExecConfig(2, 1, false);
    assertSame(exec, GenerationLanes.ONE.sessionConfig(exec));
    ExecConfig lanes = new GenerationLanes(2, 1).sessionConfig(exec);
    assertEquals(1, lanes.intraOpThreads());
    assertEquals(2, lanes.interOpThreads());
    ExecConfig shared = new GenerationLanes(2, 0).sessionConfig(exec);
    assertEquals(2, shared.intraOpThreads());
    assertEquals(2, shared.interOpThreads());
    assertEquals(
        4, new GenerationLanes(2, 1).sessionConfig(new ExecConfig(2, 4, false)).interOpThreads());
  }

  @Test
  void cacheSizesAsSysfsWritesThem() {
    assertEquals(32L << 20, GenerationLanes.parseCacheSize("32768K\n"));
    assertEquals(2L << 20, GenerationLanes.parseCacheSize("2M"));
    assertEquals(512, GenerationLanes.parseCacheSize("512"));
    assertTrue(GenerationLanes.lastLevelCacheBytes() > 0);
  }

  /**
   * Three lanes over prompts of different lengths, in several batches per lane and split when fewer
   * than lanes x batch: the same tokens as one lane, log-probabilities within rounding, in the
   * request's order; greedy and sampled (a row's draws follow its index in the request).
   */
  @Test
  void lanesGenerateWhatOneLaneGenerates() throws Exception {
    ModelConfig c = Models.preset("tiny-llama");
    SplittableRandom r = new SplittableRandom(3);
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < 11; i++) {
      int[] p = new int[1 + r.nextInt(7)];
      for (int j = 0; j < p.length; j++) {
        p[j] = 3 + r.nextInt(c.vocabSize() - 3);
      }
      prompts.add(p);
    }
    ExecConfig exec = new ExecConfig(1, 1, false);
    try (Sampler one = Sampler.of(c, Models.weights(c, 5, 0.2), exec, GenerationLanes.ONE);
        Sampler three = Sampler.of(c, Models.weights(c, 5, 0.2), exec, new GenerationLanes(3, 1))) {
      assertEquals(new GenerationLanes(3, 1), three.lanes());
      for (SamplingConfig cfg :
          List.of(
              SamplingConfig.greedy(9).withStopAtEos(false),
              new SamplingConfig(9, false, 1.0, 0.95, 0, 11, false))) {
        for (int batch : new int[] {2, 16}) {
          List<Generation> a = one.generate(prompts, cfg, batch);
          List<Generation> b = three.generate(prompts, cfg, batch);
          assertEquals(prompts.size(), b.size());
          for (int i = 0; i < prompts.size(); i++) {
            assertArrayEquals(prompts.get(i), b.get(i).promptIds(), "row " + i + " order");
            assertArrayEquals(a.get(i).responseIds(), b.get(i).responseIds(), "row " + i);
            Fixtures.assertClose(
                a.get(i).tokenLogprobs(), b.get(i).tokenLogprobs(), 0, 1e-4, "row " + i);
          }
        }
      }
      // fewer prompts than lanes
      List<Generation> two = three.generate(prompts.subList(0, 2), SamplingConfig.greedy(4), 16);
      assertEquals(2, two.size());
    }
  }

  @Test
  void aFailingLaneFailsTheCallAfterEveryLaneStopped() {
    List<Integer> done = java.util.Collections.synchronizedList(new ArrayList<>());
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () ->
                Sampler.inLanes(
                    3,
                    20,
                    i -> {
                      if (i == 4) {
                        throw new IllegalStateException("batch 4 failed");
                      }
                      // every other batch takes 50 ms, so the lanes are mid-batch when 4 fails
                      try {
                        Thread.sleep(50);
                      } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                      }
                      done.add(i);
                    }));
    assertEquals("batch 4 failed", e.getMessage());
    // batch 4 is taken once 0..3 are; after it fails each lane ends its current batch and stops
    // (7 at most when scheduled normally; all 19 others without the stop)
    assertTrue(done.size() <= 10, "lanes stop taking batches after a failure: " + done);
    List<Integer> all = java.util.Collections.synchronizedList(new ArrayList<>());
    Sampler.inLanes(3, 20, all::add);
    assertEquals(20, all.size());
    assertEquals(20, all.stream().distinct().count());
  }
}
