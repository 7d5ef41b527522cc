package dev.rewardensemble.model;

import static dev.rewardensemble.testing.Fixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.Gemma2Config;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.rl.Generation;
import dev.rewardensemble.rl.Sampler;
import dev.rewardensemble.rl.SamplingConfig;
import dev.rewardensemble.testing.Fixtures;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
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
 * Gemma 2 ({@link Gemma2}) against transformers 5.18 on the bf16 fixtures {@code
 * hf-families/gemma2-seqcls} and {@code gemma2-causal}: attention soft-capping 1.0, final logit
 * soft-capping 3.0, {@code query_pre_attn_scalar} 32 (head_dim 24), a sliding window of 5 on layer
 * 0, tied embeddings, a transformers 5 config.
 */
class Gemma2ParityTest {

  static Path dir(String name) throws Exception {
    return Path.of(
            Gemma2ParityTest.class.getResource("/hf-families/" + name + "/expected.json").toURI())
        .getParent();
  }

  static JsonNode expected(String name) throws Exception {
    return new ObjectMapper().readTree(dir(name).resolve("expected.json").toFile());
  }

  /** Largest |got - want| / max(|want|, 1e-3), for the report. */
  static double maxRelative(float[] want, float[] got) {
    double m = 0;
    for (int i = 0; i < want.length; i++) {
      m = Math.max(m, Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), 1e-3));
    }
    return m;
  }

  @Test
  void rewardsOfRightAndLeftPaddedBatchesMatchTransformers() throws Exception {
    JsonNode e = expected("gemma2-seqcls");
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    float[] want = Fixtures.floats(e.get("rewards"));
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
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(dir("gemma2-seqcls"));
    assertInstanceOf(Gemma2Config.class, ckpt.config());
    assertEquals(1, ckpt.numLabels());
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      RewardGraph rg =
          RewardGraph.build(tf, ckpt.config(), 1, p, Projector.NONE, RewardToken.LAST_NON_PAD);
      try (Session s = new Session(g)) {
        p.load(s, ckpt.weights(), false, "gemma2-seqcls");
        float[] right = HfReferenceTest.run(s, rg, List.of(rg.rewards()), ids, mask)[0];
        float[] left = HfReferenceTest.run(s, rg, List.of(rg.rewards()), lids, lmask)[0];
        System.out.printf(
            "gemma2 rewards max rel err: right %.2e, left %.2e%n",
            maxRelative(want, right), maxRelative(want, left));
        assertClose(want, right, 1e-4, 1e-5, "gemma2 rewards (right-padded)");
        assertClose(want, left, 1e-4, 1e-5, "gemma2 rewards (left-padded)");
      }
    }
  }

  @Test
  void softCappedPromptLogitsAndTeacherForcedLogprobsMatchTransformers() throws Exception {
    JsonNode e = expected("gemma2-causal");
    int[][] prompt = Fixtures.ints2(e.get("prompt"));
    int[][] greedy = Fixtures.ints2(e.get("greedy_ids"));
    float[] wantLogprobs = Fixtures.floats(e.get("token_logprobs")); // of tokens 1..T-1
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(dir("gemma2-causal"));
    assertEquals(HfCheckpoint.Kind.CAUSAL_LM, ckpt.kind());
    Gemma2Config c = assertInstanceOf(Gemma2Config.class, ckpt.config());
    assertEquals(3.0, c.finalLogitSoftcapping());
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      var ids = tf.placeholder(TInt32.class);
      var mask = tf.placeholder(TInt32.class);
      Attention.Geometry geo = Attention.geometry(tf, mask);
      Operand<TFloat32> rows = Transformers.trunk(tf, c, p, ids, geo, Projector.NONE);
      Operand<TFloat32> logits = LmHead.logits(tf, c, p, rows); // [T, V]
      Operand<TFloat32> logSoftmax = tf.nn.logSoftmax(logits);
      try (Session s = new Session(g)) {
        p.load(s, ckpt.weights(), false, "gemma2-causal");
        float[] got = run(s, ids, mask, logits, prompt);
        float[] want = Fixtures.flat(e.get("prompt_logits"));
        float max = 0;
        for (float v : got) {
          max = Math.max(max, Math.abs(v));
        }
        assertTrue(max <= 3f, "LM logits are soft-capped at 3, got " + max);
        double abs = 0;
        for (int i = 0; i < want.length; i++) {
          abs = Math.max(abs, Math.abs(got[i] - want[i]));
        }
        System.out.printf(
            "gemma2 prompt_logits max rel err %.2e, max abs err %.2e%n",
            maxRelative(want, got), abs);
        assertClose(want, got, 1e-4, 1e-5, "gemma2 prompt_logits");

        // The whole greedy sequence (18 tokens, past the window of 5) teacher-forced.
        float[] all = run(s, ids, mask, logSoftmax, greedy);
        int v = c.vocabSize();
        float[] lp = new float[greedy[0].length - 1];
        for (int i = 0; i < lp.length; i++) {
          lp[i] = all[i * v + greedy[0][i + 1]];
        }
        System.out.printf(
            "gemma2 teacher-forced token_logprobs max rel err %.2e%n",
            maxRelative(wantLogprobs, lp));
        assertClose(wantLogprobs, lp, 1e-4, 1e-5, "gemma2 teacher-forced token_logprobs");
      }
    }
  }

  /**
   * transformers' default attention ({@code sdpa}, which made the fixture) drops {@code
   * attn_logit_softcapping}; {@code attn_implementation: eager} in config.json applies it, as
   * transformers' eager attention does, and changes the logits; an unknown implementation is
   * refused with its name.
   */
  @Test
  void attentionSoftcappingFollowsTheAttentionImplementation() throws Exception {
    JsonNode e = expected("gemma2-causal");
    int[][] prompt = Fixtures.ints2(e.get("prompt"));
    float[] want = Fixtures.flat(e.get("prompt_logits"));
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(dir("gemma2-causal"));
    assertEquals(0.0, ((Gemma2Config) ckpt.config()).attentionSoftcap());
    var json =
        (com.fasterxml.jackson.databind.node.ObjectNode)
            new ObjectMapper().readTree(dir("gemma2-causal").resolve("config.json").toFile());
    json.put("attn_implementation", "eager");
    Gemma2Config eager = (Gemma2Config) ModelConfigs.parse(json, "config.json");
    assertEquals(1.0, eager.attentionSoftcap());
    assertEquals(
        "eager",
        ModelConfigs.toHf(eager, eager.causalLmArchitecture(), 0)
            .get("attn_implementation")
            .asText());
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      var ids = tf.placeholder(TInt32.class);
      var mask = tf.placeholder(TInt32.class);
      Operand<TFloat32> rows =
          Transformers.trunk(tf, eager, p, ids, Attention.geometry(tf, mask), Projector.NONE);
      Operand<TFloat32> logits = LmHead.logits(tf, eager, p, rows);
      try (Session s = new Session(g)) {
        p.load(s, ckpt.weights(), false, "gemma2-causal");
        float[] got = run(s, ids, mask, logits, prompt);
        double diff = 0;
        for (int i = 0; i < got.length; i++) {
          diff = Math.max(diff, Math.abs(got[i] - want[i]));
          assertTrue(Math.abs(got[i]) <= 3f);
        }
        assertTrue(diff > 1e-2, "capping the attention logits at 1.0 changes them: " + diff);
      }
    }
    json.put("attn_implementation", "paged_attention");
    IllegalArgumentException bad =
        org.junit.jupiter.api.Assertions.assertThrows(
            IllegalArgumentException.class, () -> ModelConfigs.parse(json, "config.json"));
    assertEquals(
        "config.json: attn_implementation 'paged_attention' is not supported (sdpa, eager,"
            + " flash_attention_2, flex_attention)",
        bad.getMessage());
  }

  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void greedyGenerationReproducesTransformers(boolean cached) throws Exception {
    JsonNode e = expected("gemma2-causal");
    int[] prompt = Fixtures.ints2(e.get("prompt"))[0];
    int[] greedy = Fixtures.ints2(e.get("greedy_ids"))[0];
    float[] logprobs = Fixtures.floats(e.get("token_logprobs"));
    int n = greedy.length - prompt.length;
    try (Sampler s = Sampler.load(dir("gemma2-causal"), ExecConfig.deterministic())) {
      SamplingConfig cfg = SamplingConfig.greedy(n).withStopAtEos(false);
      Generation g =
          cached
              ? s.generate(List.of(prompt), cfg).get(0)
              : s.generateUncached(List.of(prompt), cfg, 1).get(0);
      assertArrayEquals(Arrays.copyOfRange(greedy, prompt.length, greedy.length), g.responseIds());
      float[] want = Arrays.copyOfRange(logprobs, prompt.length - 1, logprobs.length);
      System.out.printf(
          "gemma2 greedy (%s) token_logprobs max rel err %.2e%n",
          cached ? "cached" : "uncached", maxRelative(want, g.tokenLogprobs()));
      assertClose(want, g.tokenLogprobs(), 1e-4, 1e-5, "gemma2 greedy token_logprobs");
      assertFalse(g.finished());
    }
  }

  /**
   * LM training reads the soft-capped logits too: the loss of the greedy continuation is the mean
   * of transformers' negative log-probabilities of its tokens.
   */
  @Test
  void lmTrainingLossIsTransformersNegativeLogLikelihood() throws Exception {
    JsonNode e = expected("gemma2-causal");
    int prompt = e.get("prompt").get(0).size();
    int[] greedy = Fixtures.ints2(e.get("greedy_ids"))[0];
    float[] logprobs = Fixtures.floats(e.get("token_logprobs"));
    double want = 0;
    for (int i = prompt - 1; i < logprobs.length; i++) {
      want -= logprobs[i];
    }
    want /= logprobs.length - (prompt - 1);
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(dir("gemma2-causal"));
    try (dev.rewardensemble.train.LmTrainer t =
        new dev.rewardensemble.train.LmTrainer(
            ckpt.config(),
            ckpt.weights(),
            dev.rewardensemble.train.LmTrainConfig.defaults(1),
            ExecConfig.deterministic())) {
      double got = t.loss(List.of(greedy), List.of(prompt));
      assertEquals(want, got, 1e-4 * Math.abs(want), "LM loss");
    }
  }

  /**
   * A fresh Gemma 2 ({@link Init#trunk}): its norm weights start at 0 ((1 + weight) = 1), and the
   * reward and LM forwards are finite, the LM logits within the final soft-cap.
   */
  @Test
  void aFreshlyInitialisedGemma2GivesFiniteRewardsAndCappedLogits() throws Exception {
    Gemma2Config c = (Gemma2Config) HfCheckpoint.load(dir("gemma2-seqcls")).config();
    java.util.Map<String, dev.rewardensemble.io.FloatTensor> w =
        new java.util.LinkedHashMap<>(Init.trunk(c, 7));
    for (var e : w.entrySet()) {
      if (e.getKey().contains("norm")) {
        for (float v : e.getValue().data()) {
          assertEquals(0f, v, e.getKey());
        }
      }
    }
    assertEquals(2 * 4 + 1, w.keySet().stream().filter(k -> k.contains("norm")).count());
    w.put(RewardHeads.KEY, Init.heads(1, c.hiddenSize(), 7));
    int[][] ids = {{5, 9, 33, 7, 12, 140, 299, 3}, {4, 4, 8, 0, 0, 0, 0, 0}};
    int[][] mask = {{1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 0, 0, 0, 0, 0}};
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      RewardGraph rg = RewardGraph.build(tf, c, 1, p, Projector.NONE, RewardToken.LAST_NON_PAD);
      Operand<TFloat32> logits =
          LmHead.logits(
              tf, c, p, tf.reshape(rg.hidden(), tf.constant(new int[] {-1, c.hiddenSize()})));
      try (Session s = new Session(g)) {
        p.load(s, w, false, "fresh gemma2");
        float[][] out = HfReferenceTest.run(s, rg, List.of(rg.rewards(), logits), ids, mask);
        assertEquals(2, out[0].length);
        assertTrue(out[0][0] != out[0][1], "two sequences, two rewards");
        for (float[] a : out) {
          for (float v : a) {
            assertTrue(Float.isFinite(v) && Math.abs(v) < 3f + 1e-6f, "finite, capped: " + v);
          }
        }
      }
    }
  }

  private static float[] run(
      Session s,
      Operand<TInt32> ids,
      Operand<TInt32> mask,
      Operand<TFloat32> fetch,
      int[][] tokens) {
    int[][] m = new int[tokens.length][tokens[0].length];
    for (int[] row : m) {
      Arrays.fill(row, 1);
    }
    try (TInt32 idT = HfReferenceTest.tensor(tokens);
        TInt32 mT = HfReferenceTest.tensor(m);
        Result r = s.runner().feed(ids, idT).feed(mask, mT).fetch(fetch).run()) {
      return HfReferenceTest.read((TFloat32) r.get(0));
    }
  }
}
