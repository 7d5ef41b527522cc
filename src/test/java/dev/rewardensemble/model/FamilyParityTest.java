package dev.rewardensemble.model;

import static dev.rewardensemble.testing.Fixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.MistralConfig;
import dev.rewardensemble.config.Qwen2Config;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.rl.Generation;
import dev.rewardensemble.rl.Sampler;
import dev.rewardensemble.rl.SamplingConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * Each family's one forward against transformers 5.18 on the bf16 checkpoints of {@code
 * src/test/resources/hf-families/} (made as its README says): the rewards of a right-padded batch
 * (and the same batch left-padded) of {@code <family>-seqcls}; the prompt logits, the greedy
 * continuation through {@link Sampler}'s cached decode loop and the log-probabilities of {@code
 * <family>-causal}. A family is one more name in the {@code @ValueSource} lists.
 */
class FamilyParityTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Relative tolerance against transformers (float32 over the same bf16-rounded weights). */
  private static final double REL = 1e-4;

  /** Absolute floor of the tolerance, for values near 0. */
  private static final double ABS = 1e-5;

  static Path dir(String name) throws Exception {
    return Path.of(
            FamilyParityTest.class.getResource("/hf-families/" + name + "/expected.json").toURI())
        .getParent();
  }

  static JsonNode expected(String name) throws Exception {
    return JSON.readTree(dir(name).resolve("expected.json").toFile());
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama3", "qwen2", "qwen3", "mistral"})
  void rewardsOfAPaddedBatchMatchTransformers(String family) throws Exception {
    String name = family + "-seqcls";
    JsonNode e = expected(name);
    int[][] ids = dev.rewardensemble.testing.Fixtures.ints2(e.get("input_ids"));
    int[][] mask = dev.rewardensemble.testing.Fixtures.ints2(e.get("attention_mask"));
    float[] want = dev.rewardensemble.testing.Fixtures.floats(e.get("rewards"));
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(dir(name));
    assertEquals(HfCheckpoint.Kind.SEQUENCE_CLASSIFICATION, ckpt.kind());
    assertEquals(family.equals("llama3") ? "llama" : family, ckpt.config().modelType());
    // The right-padded batch as transformers ran it, then the same sequences left-padded.
    int[][][] left = leftPadded(ids, mask);
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      RewardGraph rg =
          RewardGraph.build(
              tf,
              ckpt.config(),
              1,
              p,
              Projector.NONE,
              RewardToken.ofHfConfig(dir(name).resolve("config.json")));
      try (Session s = new Session(g)) {
        p.load(s, ckpt.weights(), false, name);
        float[] right = HfReferenceTest.run(s, rg, List.of(rg.rewards()), ids, mask)[0];
        report(name + " rewards (right-padded)", want, right);
        assertClose(want, right, REL, ABS, name + " rewards");
        float[] leftR = HfReferenceTest.run(s, rg, List.of(rg.rewards()), left[0], left[1])[0];
        report(name + " rewards (left-padded)", want, leftR);
        assertClose(want, leftR, REL, ABS, name + " left-padded rewards");
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama3", "qwen2", "qwen3", "mistral"})
  void causalLmLogitsAndTeacherForcedLogprobsMatchTransformers(String family) throws Exception {
    String name = family + "-causal";
    JsonNode e = expected(name);
    int[] prompt = dev.rewardensemble.testing.Fixtures.ints2(e.get("prompt"))[0];
    int[] greedy = dev.rewardensemble.testing.Fixtures.ints2(e.get("greedy_ids"))[0];
    // token_logprobs[t]: log p(greedy[t + 1] | greedy[0..t]), over the whole sequence.
    float[] logprobs = dev.rewardensemble.testing.Fixtures.floats(e.get("token_logprobs"));
    assertEquals(greedy.length - 1, logprobs.length);
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(dir(name));
    assertEquals(HfCheckpoint.Kind.CAUSAL_LM, ckpt.kind());
    int v = ckpt.config().vocabSize();
    float[] promptLogits = logits(ckpt, name, prompt);
    float[] want = dev.rewardensemble.testing.Fixtures.flat(e.get("prompt_logits"));
    report(name + " prompt_logits", want, promptLogits);
    assertClose(want, promptLogits, REL, ABS, name + " prompt_logits");
    float[] all = logits(ckpt, name, greedy); // [T, V]
    float[] got = new float[greedy.length - 1];
    for (int t = 0; t + 1 < greedy.length; t++) {
      got[t] = logSoftmaxAt(all, t, v, greedy[t + 1]);
    }
    report(name + " teacher-forced token_logprobs", logprobs, got);
    assertClose(logprobs, got, REL, ABS, name + " teacher-forced token_logprobs");
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama3", "qwen2", "qwen3", "mistral"})
  void greedyDecodingThroughTheCacheReproducesTransformers(String family) throws Exception {
    String name = family + "-causal";
    JsonNode e = expected(name);
    int[] prompt = dev.rewardensemble.testing.Fixtures.ints2(e.get("prompt"))[0];
    int[] greedy = dev.rewardensemble.testing.Fixtures.ints2(e.get("greedy_ids"))[0];
    float[] logprobs = dev.rewardensemble.testing.Fixtures.floats(e.get("token_logprobs"));
    int n = greedy.length - prompt.length;
    int[] wantTokens = Arrays.copyOfRange(greedy, prompt.length, greedy.length);
    // The generated tokens' log-probabilities are the last n of token_logprobs.
    float[] wantLogprobs = Arrays.copyOfRange(logprobs, prompt.length - 1, logprobs.length);
    try (Sampler s = Sampler.load(dir(name), ExecConfig.deterministic())) {
      SamplingConfig cfg = SamplingConfig.greedy(n);
      for (boolean cached : new boolean[] {true, false}) {
        Generation g =
            cached
                ? s.generate(List.of(prompt), cfg).get(0)
                : s.generateUncached(List.of(prompt), cfg, 1).get(0);
        String what = name + (cached ? " cached" : " uncached");
        assertArrayEquals(wantTokens, g.responseIds(), what + " greedy tokens");
        report(what + " generated token_logprobs", wantLogprobs, g.tokenLogprobs());
        assertClose(wantLogprobs, g.tokenLogprobs(), REL, ABS, what + " token_logprobs");
        assertFalse(g.finished());
      }
    }
  }

  /**
   * Mistral's sliding window in the cached decode loop: prompts of several lengths, left-padded in
   * one batch, decoded far past the window, give the uncached reference's tokens; and the window
   * changes what is generated (so the comparison sees it).
   */
  @Test
  void mistralDecodingPastTheWindowIsTheSameCachedAndUncached() throws Exception {
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(dir("mistral-causal"));
    MistralConfig c = (MistralConfig) ckpt.config();
    int window = c.attentionWindow(0);
    assertTrue(window > 0 && window < 8, "the fixture's window is short: " + window);
    List<int[]> prompts =
        List.of(
            new int[] {187, 186, 84, 112, 255, 59, 17, 40, 93},
            new int[] {44, 45},
            new int[] {120, 7, 260, 33, 91, 150, 12});
    int maxNew = 4 * window;
    SamplingConfig cfg = SamplingConfig.greedy(maxNew).withStopAtEos(false);
    List<Generation> cached;
    try (Sampler s = Sampler.of(c, ckpt.weights(), ExecConfig.deterministic())) {
      cached = s.generate(prompts, cfg, prompts.size());
      List<Generation> uncached = s.generateUncached(prompts, cfg, prompts.size());
      for (int i = 0; i < prompts.size(); i++) {
        assertEquals(maxNew, cached.get(i).responseIds().length);
        assertArrayEquals(
            uncached.get(i).responseIds(), cached.get(i).responseIds(), "row " + i + " tokens");
        assertClose(
            uncached.get(i).tokenLogprobs(),
            cached.get(i).tokenLogprobs(),
            REL,
            ABS,
            "row " + i + " logprobs");
        Generation alone = s.generate(List.of(prompts.get(i)), cfg).get(0);
        assertArrayEquals(alone.responseIds(), cached.get(i).responseIds(), "row " + i + " alone");
      }
    }
    MistralConfig full =
        new MistralConfig(
            c.vocabSize(),
            c.hiddenSize(),
            c.intermediateSize(),
            c.numLayers(),
            c.numHeads(),
            c.numKeyValueHeads(),
            c.headDim(),
            c.maxPositionEmbeddings(),
            c.rmsNormEps(),
            c.ropeTheta(),
            c.padTokenId(),
            c.bosTokenId(),
            c.eosTokenId(),
            c.tieWordEmbeddings(),
            c.ropeScaling(),
            Collections.nCopies(c.numLayers(), 0));
    try (Sampler s = Sampler.of(full, ckpt.weights(), ExecConfig.deterministic())) {
      List<Generation> unwindowed = s.generate(prompts, cfg, prompts.size());
      List<List<Integer>> a = new ArrayList<>();
      List<List<Integer>> b = new ArrayList<>();
      for (int i = 0; i < prompts.size(); i++) {
        a.add(Arrays.stream(cached.get(i).responseIds()).boxed().toList());
        b.add(Arrays.stream(unwindowed.get(i).responseIds()).boxed().toList());
      }
      assertNotEquals(b, a, "the sliding window changes the generations");
    }
  }

  /**
   * Qwen2's sliding layers ({@code use_sliding_window}, {@code max_window_layers}) attend exactly
   * as Mistral's window does (which matches transformers above): with the q/k/v biases at zero and
   * only the upper layer sliding, both forwards give the same rows, and the window changes them.
   */
  @Test
  void qwen2SlidingLayersAttendAsMistralsWindow() throws Exception {
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(dir("qwen2-seqcls"));
    Qwen2Config q = (Qwen2Config) ckpt.config();
    assertTrue(q.numLayers() >= 2);
    List<Integer> windows = new ArrayList<>(Collections.nCopies(q.numLayers(), 0));
    windows.set(q.numLayers() - 1, 3); // as max_window_layers = numLayers - 1 would say
    Map<String, FloatTensor> noBias = new LinkedHashMap<>();
    ckpt.weights().entrySet().stream()
        .filter(en -> !en.getKey().equals("score.weight") && !en.getKey().endsWith("_proj.bias"))
        .forEach(en -> noBias.put(en.getKey(), en.getValue()));
    Map<String, FloatTensor> zeroBias = new LinkedHashMap<>(noBias);
    q.parameterShapes().forEach((k, shape) -> zeroBias.putIfAbsent(k, FloatTensor.zeros(shape)));
    Qwen2Config sliding =
        new Qwen2Config(
            q.vocabSize(),
            q.hiddenSize(),
            q.intermediateSize(),
            q.numLayers(),
            q.numHeads(),
            q.numKeyValueHeads(),
            q.headDim(),
            q.maxPositionEmbeddings(),
            q.rmsNormEps(),
            q.ropeTheta(),
            q.padTokenId(),
            q.bosTokenId(),
            q.eosTokenId(),
            q.tieWordEmbeddings(),
            q.ropeScaling(),
            windows);
    MistralConfig mistral =
        new MistralConfig(
            q.vocabSize(),
            q.hiddenSize(),
            q.intermediateSize(),
            q.numLayers(),
            q.numHeads(),
            q.numKeyValueHeads(),
            q.headDim(),
            q.maxPositionEmbeddings(),
            q.rmsNormEps(),
            q.ropeTheta(),
            q.padTokenId(),
            q.bosTokenId(),
            q.eosTokenId(),
            q.tieWordEmbeddings(),
            q.ropeScaling(),
            windows);
    JsonNode e = expected("qwen2-seqcls");
    int[][] ids = dev.rewardensemble.testing.Fixtures.ints2(e.get("input_ids"));
    int[][] mask = dev.rewardensemble.testing.Fixtures.ints2(e.get("attention_mask"));
    float[] qwen = trunkRows(sliding, zeroBias, ids, mask);
    float[] mis = trunkRows(mistral, noBias, ids, mask);
    assertClose(mis, qwen, 0, 1e-6, "qwen2 sliding layer = mistral window");
    float[] full = trunkRows(q, zeroBias, ids, mask);
    double diff = 0;
    for (int i = 0; i < full.length; i++) {
      diff = Math.max(diff, Math.abs(full[i] - qwen[i]));
    }
    assertTrue(diff > 1e-3, "the sliding layer changes the rows: " + diff);
  }

  /** The trunk's final rows {@code [B*T, H]} of {@code c} over {@code weights}. */
  private static float[] trunkRows(
      dev.rewardensemble.config.ModelConfig c,
      Map<String, FloatTensor> weights,
      int[][] ids,
      int[][] mask) {
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      var idP = tf.placeholder(TInt32.class);
      var maskP = tf.placeholder(TInt32.class);
      Operand<TFloat32> rows =
          Transformers.trunk(tf, c, p, idP, Attention.geometry(tf, maskP), Projector.NONE);
      try (Session s = new Session(g)) {
        p.load(s, weights, false, c.modelType());
        try (TInt32 idT = HfReferenceTest.tensor(ids);
            TInt32 mT = HfReferenceTest.tensor(mask);
            Result r = s.runner().feed(idP, idT).feed(maskP, mT).fetch(rows).run()) {
          return HfReferenceTest.read((TFloat32) r.get(0));
        }
      }
    }
  }

  /** {@code [T, V]} LM logits of one unpadded sequence. */
  private static float[] logits(HfCheckpoint.Checkpoint ckpt, String name, int[] seq) {
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      var ids = tf.placeholder(TInt32.class);
      var mask = tf.placeholder(TInt32.class);
      Attention.Geometry geo = Attention.geometry(tf, mask);
      Operand<TFloat32> rows = Transformers.trunk(tf, ckpt.config(), p, ids, geo, Projector.NONE);
      Operand<TFloat32> logits = LmHead.logits(tf, ckpt.config(), p, rows);
      try (Session s = new Session(g)) {
        p.load(s, ckpt.weights(), false, name);
        int[][] m = new int[1][seq.length];
        Arrays.fill(m[0], 1);
        try (TInt32 idT = HfReferenceTest.tensor(new int[][] {seq});
            TInt32 mT = HfReferenceTest.tensor(m);
            Result r = s.runner().feed(ids, idT).feed(mask, mT).fetch(logits).run()) {
          return HfReferenceTest.read((TFloat32) r.get(0));
        }
      }
    }
  }

  /** {@code log_softmax(logits[t])[token]}, in double. */
  private static float logSoftmaxAt(float[] logits, int t, int v, int token) {
    double max = Double.NEGATIVE_INFINITY;
    for (int j = 0; j < v; j++) {
      max = Math.max(max, logits[t * v + j]);
    }
    double sum = 0;
    for (int j = 0; j < v; j++) {
      sum += Math.exp(logits[t * v + j] - max);
    }
    return (float) (logits[t * v + token] - max - Math.log(sum));
  }

  /** The real tokens of each row moved to the right end (left padding), ids 0 under the padding. */
  static int[][][] leftPadded(int[][] ids, int[][] mask) {
    int t = ids[0].length;
    int[][] lids = new int[ids.length][t];
    int[][] lmask = new int[ids.length][t];
    for (int i = 0; i < ids.length; i++) {
      int len = Arrays.stream(mask[i]).sum();
      for (int j = 0; j < len; j++) {
        lids[i][t - len + j] = ids[i][j];
        lmask[i][t - len + j] = 1;
      }
    }
    return new int[][][] {lids, lmask};
  }

  /** Prints the largest absolute error and its share of the tolerance (measured parity). */
  private static void report(String what, float[] want, float[] got) {
    double worstAbs = 0;
    double worstShare = 0;
    for (int i = 0; i < Math.min(want.length, got.length); i++) {
      double err = Math.abs(want[i] - got[i]);
      worstAbs = Math.max(worstAbs, err);
      worstShare = Math.max(worstShare, err / (REL * Math.abs(want[i]) + ABS));
    }
    System.out.printf(
        "parity %s: max abs error %.3g, %.2f of the tolerance%n", what, worstAbs, worstShare);
  }
}
