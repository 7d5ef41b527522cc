package dev.rewardensemble.lora;

import static dev.rewardensemble.testing.Fixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.ensemble.LoraEnsembleGraph;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.testing.Runs;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * LoRA's three formulations ({@link BatchedProduct}, {@link FoldedProduct}, {@link
 * MaskedTrainingProduct}) compute the same function on a random tiny Llama, whatever the fork block
 * and however the adapted modules fall into the groups that share an input; each graph chooses its
 * formulation and precision once, from its build context. ({@code LoraEnsembleGraphTest} checks
 * them against PEFT's fixture and on GPT-2.)
 */
class LoraStrategiesTest {
  static final int K = 3;
  // Row 1 is left-padded: positions and the last real token come from the mask.
  static final int[][] IDS = {{5, 9, 31, 7, 44, 12}, {0, 0, 17, 250, 3, 8}};
  static final int[][] MASK = {{1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1}};

  static ModelConfig tinyLlama() throws Exception {
    // hidden 64, intermediate 160: gate/up fold, q/k/v (64, 32, 32 wide) and down are batched.
    return ModelConfigs.read(Path.of("tf-graphs/tiny-llama.json"));
  }

  /**
   * Rewards {@code [B, K]} of the graph {@code build} makes, over seeded random base weights and
   * adapters.
   */
  static float[] rewards(
      ModelConfig c,
      LoraConfig lora,
      BuildContextFactory ctx,
      Function<BuildContext, Function<ParameterStore, LoraEnsembleGraph>> build) {
    try (Graph g = new Graph()) {
      BuildContext cx = ctx.of(Ops.create(g));
      ParameterStore p = new ParameterStore(cx);
      LoraEnsembleGraph eg = build.apply(cx).apply(p);
      Map<String, FloatTensor> init = eg.initialValues(11, 0.5);
      Random rnd = new Random(7);
      for (Map.Entry<String, FloatTensor> en : new ArrayList<>(init.entrySet())) {
        if (en.getKey().endsWith(StackedLora.B)) { // B = 0 would hide the deltas
          float[] v = new float[en.getValue().data().length];
          for (int i = 0; i < v.length; i++) {
            v[i] = (float) (0.1 * rnd.nextGaussian());
          }
          init.put(en.getKey(), new FloatTensor(en.getValue().shape(), v));
        }
      }
      try (Session s = new Session(g)) {
        eg.loadBase(s, Init.trunk(c, 5), "random trunk");
        p.load(s, init, true, "random adapters");
        Session.Runner r = s.runner();
        if (g.operation(StackedLora.DROPOUT_RATE) != null) {
          r.feed(StackedLora.DROPOUT_RATE, TFloat32.scalarOf(0f)); // evaluation: no dropout
        }
        try (TInt32 ids = Runs.tensor(IDS);
            TInt32 mask = Runs.tensor(MASK);
            Result out =
                r.feed(eg.inputIds(), ids)
                    .feed(eg.attentionMask(), mask)
                    .fetch(eg.rewards())
                    .run()) {
          return Runs.read((TFloat32) out.get(0));
        }
      }
    }
  }

  @FunctionalInterface
  interface BuildContextFactory {
    BuildContext of(Ops tf);
  }

  static final BuildContextFactory F32 = BuildContext::float32;

  @Test
  void theThreeFormulationsAgree() throws Exception {
    ModelConfig c = tinyLlama();
    List<List<String>> targetSets =
        List.of(
            dev.rewardensemble.model.Llama.LORA_TARGETS,
            // Groups with modules left out: q and v of q/k/v, up of gate/up.
            List.of("q_proj", "v_proj", "up_proj", "down_proj"));
    for (List<String> targets : targetSets) {
      for (int loraLayers : new int[] {0, 1}) { // fork at the embeddings, or below the top block
        LoraConfig lora =
            LoraConfig.llama()
                .withRank(4, 8)
                .withDropout(0.1)
                .withTargets(targets)
                .withLoraLayers(loraLayers);
        String what = targets + ", lora layers " + loraLayers;
        float[] batched =
            rewards(
                c,
                lora,
                F32,
                cx ->
                    p ->
                        LoraEnsembleGraph.withProduct(
                            cx,
                            c,
                            lora,
                            K,
                            p,
                            LoraProduct.batched(K, lora),
                            dev.rewardensemble.config.RewardToken.LAST_NON_PAD));
        float[] folded =
            rewards(
                c,
                lora,
                F32,
                cx ->
                    p ->
                        LoraEnsembleGraph.withProduct(
                            cx,
                            c,
                            lora,
                            K,
                            p,
                            LoraProduct.folded(cx, K, lora),
                            dev.rewardensemble.config.RewardToken.LAST_NON_PAD));
        float[] masked =
            rewards(
                c,
                lora,
                F32,
                cx ->
                    p ->
                        LoraEnsembleGraph.training(
                            cx,
                            c,
                            lora,
                            K,
                            p,
                            3,
                            dev.rewardensemble.config.RewardToken.LAST_NON_PAD));
        assertEquals(IDS.length * K, batched.length);
        for (float v : batched) {
          assertTrue(Float.isFinite(v), what);
        }
        assertNotEquals(batched[0], batched[1], "members should differ: " + what);
        assertNotEquals(batched[1], batched[2], "members should differ: " + what);
        assertClose(batched, folded, 1e-5, 1e-6, "batched vs folded, " + what);
        assertClose(batched, masked, 1e-5, 1e-6, "batched vs masked training, " + what);
        // The scoring build of a float32 context without XLA is the folded one, op for op.
        float[] scoring =
            rewards(
                c,
                lora,
                F32,
                cx ->
                    p ->
                        LoraEnsembleGraph.scoring(
                            cx, c, lora, K, p, dev.rewardensemble.config.RewardToken.LAST_NON_PAD));
        assertClose(folded, scoring, 0, 0, "scoring build vs folded, " + what);
      }
    }
  }

  @Test
  void eachGraphChoosesItsFormulationOnceFromItsContext() throws Exception {
    ModelConfig c = tinyLlama();
    LoraConfig lora = LoraConfig.llama().withRank(4, 8).withDropout(0.1);
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      BuildContext plain = BuildContext.float32(tf);
      BuildContext xla = new BuildContext(tf, Precision.FLOAT32, true);
      assertInstanceOf(
          FoldedProduct.class,
          StackedLora.scoring(plain, c, lora, K, new ParameterStore(tf)).product());
      assertInstanceOf(
          BatchedProduct.class,
          StackedLora.scoring(xla, c, lora, K, new ParameterStore(tf)).product());
      assertNull(g.operation(StackedLora.DROPOUT_KEY), "scoring builds have no dropout");
      assertInstanceOf(
          MaskedTrainingProduct.class,
          StackedLora.training(plain, c, lora, K, new ParameterStore(tf), 1).product());
      assertNotNull(g.operation(StackedLora.DROPOUT_KEY));
      assertNotNull(g.operation(StackedLora.DROPOUT_RATE));
    }
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      StackedLora.training(
          BuildContext.float32(tf), c, lora.withDropout(0), K, new ParameterStore(tf), 1);
      assertNull(g.operation(StackedLora.DROPOUT_KEY), "no dropout placeholders at rate 0");
    }
  }

  @Test
  void precisionBelongsToTheGraphsContextOnly() throws Exception {
    ModelConfig c = tinyLlama();
    LoraConfig lora = LoraConfig.llama().withRank(4, 8).withDropout(0);
    BuildContextFactory bf16 = tf -> new BuildContext(tf, Precision.BFLOAT16, false);
    Function<BuildContext, Function<ParameterStore, LoraEnsembleGraph>> training =
        cx ->
            p ->
                LoraEnsembleGraph.training(
                    cx, c, lora, K, p, 3, dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
    float[] f32 = rewards(c, lora, F32, training);
    float[] b16 = rewards(c, lora, bf16, training);
    float[] again =
        rewards(c, lora, F32, training); // built after a bfloat16 graph: nothing carried over
    assertClose(f32, again, 0, 0, "float32 after bfloat16");
    assertClose(f32, b16, 5e-2, 5e-2, "bfloat16 within its precision");
    boolean differs = false;
    for (int i = 0; i < f32.length; i++) {
      differs |= f32[i] != b16[i];
    }
    assertTrue(differs, "bfloat16 rewards equal float32's: the products were not rounded");
  }
}
