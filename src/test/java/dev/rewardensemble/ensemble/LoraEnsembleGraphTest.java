package dev.rewardensemble.ensemble;

import static dev.rewardensemble.testing.Fixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.PeftAdapters;
import dev.rewardensemble.lora.StackedLora;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.RewardGraph;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.model.Transformers;
import dev.rewardensemble.testing.Fixtures;
import dev.rewardensemble.testing.Runs;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gradients;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/** The LoRA ensemble graph against PEFT, against the base model, and its gradients. */
class LoraEnsembleGraphTest {
  static final String BASE = "llama-seqcls";
  static final String LORA = "llama-lora";

  static List<Path> memberDirs() {
    Path d = Fixtures.dir(LORA);
    return List.of(d.resolve("member0"), d.resolve("member1"), d.resolve("member2"));
  }

  /** Rewards {@code [B, K]} (row-major) of stacked adapters over the base checkpoint. */
  static float[] rewards(
      HfCheckpoint.Checkpoint base, PeftAdapters.Stacked st, int[][] ids, int[][] mask) {
    return rewards(base, st, ids, mask, true);
  }

  /** The same, with the adapters folded into the base products or added as separate products. */
  static float[] rewards(
      HfCheckpoint.Checkpoint base,
      PeftAdapters.Stacked st,
      int[][] ids,
      int[][] mask,
      boolean fold) {
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      LoraEnsembleGraph eg =
          LoraEnsembleGraph.inference(
              tf,
              base.config(),
              st.lora(),
              st.members(),
              p,
              fold,
              dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
      try (Session s = new Session(g)) {
        eg.loadBase(s, base.weights(), BASE);
        eg.loadAdapters(s, st, LORA);
        return Runs.run(s, eg.inputIds(), eg.attentionMask(), List.of(eg.rewards()), ids, mask)[0];
      }
    }
  }

  @Test
  void memberRewardsMeanAndStdMatchPeft() throws Exception {
    JsonNode e = Fixtures.expected(LORA);
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    HfCheckpoint.Checkpoint base = HfCheckpoint.load(Fixtures.dir(BASE));
    PeftAdapters.Stacked st = PeftAdapters.load(base.config(), memberDirs());
    assertEquals(
        new LoraConfig(4, 8, 0.0, dev.rewardensemble.model.Llama.LORA_TARGETS, 0), st.lora());
    float[] got = rewards(base, st, ids, mask); // [B, 3]
    assertClose(Fixtures.flat(e.get("member_rewards")), got, 1e-4, 1e-5, "member_rewards");

    int b = ids.length;
    float[] mean = new float[b];
    float[] std = new float[b];
    for (int i = 0; i < b; i++) {
      float[] row = java.util.Arrays.copyOfRange(got, i * 3, i * 3 + 3);
      mean[i] = (float) Aggregation.mean(row);
      std[i] = (float) Aggregation.std(row);
    }
    assertClose(Fixtures.floats(e.get("mean")), mean, 1e-4, 1e-5, "mean");
    assertClose(Fixtures.floats(e.get("std_population")), std, 1e-4, 1e-5, "std_population");

    // The same in the graph, from the same fetch of one Session.run.
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      LoraEnsembleGraph eg =
          LoraEnsembleGraph.inference(
              tf,
              base.config(),
              st.lora(),
              3,
              p,
              dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
      assertNotNull(g.operation(LoraEnsembleGraph.REWARDS), "op named rewards");
      Operand<TFloat32> gm = Aggregation.mean(tf, eg.rewards());
      Operand<TFloat32> gs = Aggregation.std(tf, eg.rewards());
      try (Session s = new Session(g)) {
        eg.loadBase(s, base.weights(), BASE);
        eg.loadAdapters(s, st, LORA);
        float[][] out =
            Runs.run(
                s, eg.inputIds(), eg.attentionMask(), List.of(eg.rewards(), gm, gs), ids, mask);
        assertClose(got, out[0], 0, 0, "rewards are deterministic");
        assertClose(Fixtures.floats(e.get("mean")), out[1], 1e-4, 1e-5, "graph mean");
        assertClose(
            Fixtures.floats(e.get("std_population")), out[2], 1e-4, 1e-5, "graph std_population");
      }
    }
  }

  @Test
  void foldedAndSeparateAdapterProductsBothMatchPeft() throws Exception {
    JsonNode e = Fixtures.expected(LORA);
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    HfCheckpoint.Checkpoint base = HfCheckpoint.load(Fixtures.dir(BASE));
    PeftAdapters.Stacked st = PeftAdapters.load(base.config(), memberDirs());
    float[] folded = rewards(base, st, ids, mask, true);
    float[] separate = rewards(base, st, ids, mask, false);
    assertClose(
        Fixtures.flat(e.get("member_rewards")),
        separate,
        1e-4,
        1e-5,
        "member_rewards, separate products");
    assertClose(folded, separate, 1e-5, 1e-6, "folded vs separate");
  }

  @Test
  void zeroBReproducesTheBaseModel() throws Exception {
    JsonNode e = Fixtures.expected(LORA);
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    HfCheckpoint.Checkpoint base = HfCheckpoint.load(Fixtures.dir(BASE));
    float[] want;
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      RewardGraph rg =
          RewardGraph.build(
              tf,
              base.config(),
              1,
              p,
              Projector.NONE,
              dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
      try (Session s = new Session(g)) {
        p.load(s, base.weights(), false, BASE);
        want = Runs.run(s, rg.inputIds(), rg.attentionMask(), List.of(rg.rewards()), ids, mask)[0];
      }
    }
    int k = 3;
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      LoraEnsembleGraph eg =
          LoraEnsembleGraph.inference(
              tf,
              base.config(),
              LoraConfig.llama(),
              k,
              p,
              dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
      Map<String, FloatTensor> init = eg.initialValues(11, 0.02);
      float[] head = base.weights().get(RewardHeads.KEY).data();
      float[] heads = new float[k * head.length];
      for (int m = 0; m < k; m++) {
        System.arraycopy(head, 0, heads, m * head.length, head.length);
      }
      init.put(RewardHeads.KEY, new FloatTensor(new long[] {k, head.length}, heads));
      try (Session s = new Session(g)) {
        eg.loadBase(s, base.weights(), BASE);
        p.load(s, init, true, "init");
        float[] got =
            Runs.run(s, eg.inputIds(), eg.attentionMask(), List.of(eg.rewards()), ids, mask)[0];
        for (int m = 0; m < k; m++) {
          float[] col = new float[want.length];
          for (int i = 0; i < want.length; i++) {
            col[i] = got[i * k + m];
          }
          assertClose(want, col, 1e-6, 1e-6, "member " + m + " with B = 0");
        }
      }
    }
  }

  @Test
  void forkAtTheLastBlockEqualsTheFullForkWhenLowerBlocksHaveZeroB() throws Exception {
    JsonNode e = Fixtures.expected(LORA);
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    HfCheckpoint.Checkpoint base = HfCheckpoint.load(Fixtures.dir(BASE));
    PeftAdapters.Stacked st = PeftAdapters.load(base.config(), memberDirs());
    Map<String, FloatTensor> w = new LinkedHashMap<>(st.weights());
    for (StackedLora.Module m : StackedLora.modules(base.config(), st.lora())) {
      if (m.layer() == 0) {
        String key = m.module() + StackedLora.B;
        w.put(key, FloatTensor.zeros(w.get(key).shape()));
      }
    }
    PeftAdapters.Stacked full = new PeftAdapters.Stacked(st.config(), st.lora(), st.members(), w);
    PeftAdapters.Stacked top = full.withLoraLayers(1);
    assertEquals(1, top.lora().forkLayer(base.config()));
    assertTrue(top.weights().keySet().stream().noneMatch(k -> k.startsWith("model.layers.0.")));
    float[] want = rewards(base, full, ids, mask);
    float[] got = rewards(base, top, ids, mask);
    assertClose(want, got, 1e-6, 1e-6, "fork at block 1 vs block 0");
    // And the top block's adapters matter: the result differs from the base-only heads.
    assertNotEquals(want[0], want[1]);
  }

  @Test
  void gradientsOfTheAdaptersAndHeadsExistAndAreFinite() throws Exception {
    JsonNode e = Fixtures.expected(LORA);
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    HfCheckpoint.Checkpoint base = HfCheckpoint.load(Fixtures.dir(BASE));
    PeftAdapters.Stacked st = PeftAdapters.load(base.config(), memberDirs());
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      LoraEnsembleGraph eg =
          LoraEnsembleGraph.training(
              tf,
              base.config(),
              st.lora(),
              3,
              p,
              5,
              dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
      List<String> trainable = eg.trainableNames();
      // The trainable set is the adapters and heads; every base weight is frozen and not requested.
      assertEquals(
          new HashSet<>(Transformers.parameterShapes(base.config()).keySet()),
          new HashSet<>(eg.frozenNames()));
      assertTrue(trainable.contains(RewardHeads.KEY));
      assertEquals(2 * 7 * 2 + 1, trainable.size());
      for (String name : trainable) {
        assertFalse(
            Transformers.parameterShapes(base.config()).containsKey(name),
            name + " is a base weight");
      }
      Operand<TFloat32> loss = tf.sum(eg.rewards(), tf.constant(new int[] {0, 1}));
      Gradients grads = tf.gradients(loss, eg.trainable());
      try (Session s = new Session(g)) {
        eg.loadBase(s, base.weights(), BASE);
        eg.loadAdapters(s, st, LORA);
        try (TInt32 idT = Runs.tensor(ids);
            TInt32 mT = Runs.tensor(mask)) {
          Session.Runner run = s.runner().feed(eg.inputIds(), idT).feed(eg.attentionMask(), mT);
          for (int i = 0; i < trainable.size(); i++) {
            assertNotNull(grads.dy(i), trainable.get(i));
            run.fetch(grads.dy(i));
          }
          try (Result r = run.run()) {
            for (int i = 0; i < trainable.size(); i++) {
              float[] gr = Runs.read((TFloat32) r.get(i));
              assertEquals(
                  FloatTensor.numElements(p.shape(trainable.get(i))), gr.length, trainable.get(i));
              double sq = 0;
              for (float v : gr) {
                assertTrue(Float.isFinite(v), trainable.get(i) + " has a non-finite gradient");
                sq += (double) v * v;
              }
              assertTrue(sq > 0, trainable.get(i) + " has an all-zero gradient");
            }
          }
        }
      }
    }
  }

  @Test
  void trainingDropoutChangesRewardsAndInferenceDoesNot() throws Exception {
    JsonNode e = Fixtures.expected(LORA);
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    HfCheckpoint.Checkpoint base = HfCheckpoint.load(Fixtures.dir(BASE));
    PeftAdapters.Stacked st = PeftAdapters.load(base.config(), memberDirs());
    LoraConfig withDropout = st.lora().withDropout(0.5);
    PeftAdapters.Stacked dropSt =
        new PeftAdapters.Stacked(st.config(), withDropout, 3, st.weights());
    float[] inference = rewards(base, st, ids, mask);
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      LoraEnsembleGraph eg =
          LoraEnsembleGraph.training(
              tf,
              base.config(),
              withDropout,
              3,
              p,
              123,
              dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
      try (Session s = new Session(g)) {
        eg.loadBase(s, base.weights(), BASE);
        eg.loadAdapters(s, st, LORA); // dropout rate may differ
        float[] a = rewardsWithKey(s, eg, ids, mask, 1);
        float[] b = rewardsWithKey(s, eg, ids, mask, 2);
        float[] again = rewardsWithKey(s, eg, ids, mask, 1);
        assertFalse(java.util.Arrays.equals(a, inference), "dropout had no effect");
        assertFalse(java.util.Arrays.equals(a, b), "dropout mask did not change with the key");
        // Stateless: the same key draws the same masks, in this run or any later one.
        assertTrue(java.util.Arrays.equals(a, again), "the same key drew another mask");
      }
    }
  }

  private static float[] rewardsWithKey(
      Session s, LoraEnsembleGraph eg, int[][] ids, int[][] mask, long key) {
    try (org.tensorflow.types.TInt32 idT = Runs.tensor(ids);
        org.tensorflow.types.TInt32 mT = Runs.tensor(mask);
        org.tensorflow.types.TInt64 k = org.tensorflow.types.TInt64.scalarOf(key);
        org.tensorflow.Result r =
            s.runner()
                .feed(eg.inputIds(), idT)
                .feed(eg.attentionMask(), mT)
                .feed(dev.rewardensemble.lora.StackedLora.DROPOUT_KEY, k)
                .fetch(eg.rewards())
                .run()) {
      return Runs.read((org.tensorflow.types.TFloat32) r.get(0));
    }
  }

  @Test
  void trainingBuildWithoutDropoutMatchesPeft() throws Exception {
    // The training build computes its deltas with masked 2-D products and copies the rows before
    // the fork block;
    // the scoring build with batched products and a shared fork: the same function.
    JsonNode e = Fixtures.expected(LORA);
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    HfCheckpoint.Checkpoint base = HfCheckpoint.load(Fixtures.dir(BASE));
    PeftAdapters.Stacked st = PeftAdapters.load(base.config(), memberDirs());
    assertEquals(0.0, st.lora().dropout());
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      LoraEnsembleGraph eg =
          LoraEnsembleGraph.training(
              tf,
              base.config(),
              st.lora(),
              3,
              p,
              5,
              dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
      try (Session s = new Session(g)) {
        eg.loadBase(s, base.weights(), BASE);
        eg.loadAdapters(s, st, LORA);
        float[] got =
            Runs.run(s, eg.inputIds(), eg.attentionMask(), List.of(eg.rewards()), ids, mask)[0];
        assertClose(
            Fixtures.flat(e.get("member_rewards")),
            got,
            1e-4,
            1e-5,
            "training build member_rewards");
      }
    }
  }

  @Test
  void gpt2LoraEnsembleBuildsAgreeAtEveryFork() throws Exception {
    JsonNode e = Fixtures.expected("gpt2-seqcls");
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    HfCheckpoint.Checkpoint base = HfCheckpoint.load(Fixtures.dir("gpt2-seqcls"));
    ModelConfig c = base.config();
    int k = 2;
    // Adapters in every block (fork at the embeddings) and in the top block only (fork below it);
    // each scored by
    // the folded, the separate and the training build (masked products, no dropout).
    for (int loraLayers : new int[] {0, 1}) {
      LoraConfig lora = LoraConfig.gpt2().withRank(4, 8).withDropout(0).withLoraLayers(loraLayers);
      int blocks = loraLayers == 0 ? c.numLayers() : loraLayers;
      List<float[]> byBuild = new ArrayList<>();
      for (String build : List.of("folded", "separate", "training")) {
        try (Graph g = new Graph()) {
          Ops tf = Ops.create(g);
          ParameterStore p = new ParameterStore(tf);
          LoraEnsembleGraph eg =
              build.equals("training")
                  ? LoraEnsembleGraph.training(
                      tf, c, lora, k, p, 9, dev.rewardensemble.config.RewardToken.LAST_NON_PAD)
                  : LoraEnsembleGraph.inference(
                      tf,
                      c,
                      lora,
                      k,
                      p,
                      build.equals("folded"),
                      dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
          List<StackedLora.Module> modules = eg.adapters().adaptedModules();
          assertEquals(4 * blocks, modules.size()); // c_attn, attn.c_proj, c_fc, mlp.c_proj
          StackedLora.Module cAttn = modules.get(0);
          assertEquals(
              "transformer.h." + (c.numLayers() - blocks) + ".attn.c_attn", cAttn.module());
          assertEquals(c.hiddenSize(), cAttn.in());
          assertEquals(3 * c.hiddenSize(), cAttn.out());
          Map<String, FloatTensor> init = eg.initialValues(3, 0.02);
          Random rnd = new Random(3);
          for (Map.Entry<String, FloatTensor> en : new ArrayList<>(init.entrySet())) {
            if (en.getKey().endsWith(StackedLora.B)) {
              float[] v = new float[en.getValue().data().length];
              for (int i = 0; i < v.length; i++) {
                v[i] = (float) (0.05 * rnd.nextGaussian());
              }
              init.put(en.getKey(), new FloatTensor(en.getValue().shape(), v));
            }
          }
          try (Session s = new Session(g)) {
            eg.loadBase(s, base.weights(), "gpt2-seqcls");
            p.load(s, init, true, "init");
            float[] r =
                Runs.run(s, eg.inputIds(), eg.attentionMask(), List.of(eg.rewards()), ids, mask)[0];
            assertEquals(ids.length * k, r.length);
            for (float v : r) {
              assertTrue(Float.isFinite(v));
            }
            assertNotEquals(r[0], r[1], "members should differ");
            byBuild.add(r);
          }
        }
      }
      assertClose(
          byBuild.get(0),
          byBuild.get(1),
          1e-5,
          1e-6,
          "folded vs separate, lora layers " + loraLayers);
      assertClose(
          byBuild.get(0),
          byBuild.get(2),
          1e-5,
          1e-6,
          "folded vs training, lora layers " + loraLayers);
    }
  }
}
