package dev.rewardensemble.model;

import static dev.rewardensemble.testing.Fixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.rl.Generation;
import dev.rewardensemble.rl.Sampler;
import dev.rewardensemble.rl.SamplingConfig;
import dev.rewardensemble.testing.Fixtures;
import java.util.Arrays;
import java.util.List;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.GraphOperation;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;

/**
 * Inference graphs multiply weights stored {@code [out, in]} with {@code BatchMatMulV2} from {@link
 * Layers#linearBatchMatMulMin()} elements on ({@link Layers#matMul}); the fixtures' weights are
 * below it, so these tests lower it to 0 and check that the products take that form and that
 * rewards and the cached greedy decode still match transformers.
 */
class InferenceProductsTest {
  private static final String PROPERTY = "rme.linearBatchMatMulMin";

  private static final String WEIGHT_FIRST = "rme.weightFirst";

  private static final String WEIGHT_FIRST_MIN = "rme.weightFirstMin";

  @AfterEach
  void restore() {
    System.clearProperty(PROPERTY);
    System.clearProperty(WEIGHT_FIRST);
    System.clearProperty(WEIGHT_FIRST_MIN);
  }

  private static long batchMatMuls(Graph g) {
    return count(g, "BatchMatMulV2");
  }

  /** Operations of {@code type} in {@code g}. */
  private static long count(Graph g, String type) {
    return StreamSupport.stream(
            java.util.Spliterators.spliteratorUnknownSize(g.operations(), 0), false)
        .map(o -> ((GraphOperation) o).type())
        .filter(type::equals)
        .count();
  }

  /**
   * The rewards' graph built for inference or for training: its BatchMatMulV2 count, rewards and
   * Transpose count.
   */
  private static Object[] rewards(String name, boolean inference) throws Exception {
    JsonNode e = FamilyParityTest.expected(name);
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(FamilyParityTest.dir(name));
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      BuildContext cx = new BuildContext(tf, Precision.FLOAT32, false);
      ParameterStore p = new ParameterStore(tf);
      RewardGraph rg =
          RewardGraph.build(
              inference ? cx.forInference() : cx,
              ckpt.config(),
              1,
              p,
              Projector.NONE,
              RewardToken.ofHfConfig(FamilyParityTest.dir(name).resolve("config.json")));
      try (Session s = new Session(g)) {
        p.load(s, ckpt.weights(), false, name);
        float[] got = HfReferenceTest.run(s, rg, List.of(rg.rewards()), ids, mask)[0];
        return new Object[] {batchMatMuls(g), got, count(g, "Transpose")};
      }
    }
  }

  @Test
  void inferenceGraphsTakeTheBatchedFormAndStillMatchTransformers() throws Exception {
    String name = "llama3-seqcls";
    float[] want = Fixtures.floats(FamilyParityTest.expected(name).get("rewards"));
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(FamilyParityTest.dir(name));
    int layers = ckpt.config().numLayers();

    // At the default threshold the fixture's small weights keep MatMul (the attention products
    // are BatchMatMulV2 in any case: count them as the baseline).
    Object[] plain = rewards(name, true);
    long attention = (long) plain[0];
    Object[] training = rewards(name, false);
    assertEquals(attention, (long) training[0]);

    System.setProperty(PROPERTY, "0");
    Object[] batched = rewards(name, true);
    // q, k, v, o, gate, up, down in every block (the score head is [1, H], also a Linear weight).
    assertTrue(
        (long) batched[0] >= attention + 7L * layers,
        "BatchMatMulV2 nodes: " + batched[0] + ", attention alone " + attention);
    assertClose(want, (float[]) batched[1], 1e-4, 1e-5, name + " rewards (BatchMatMulV2)");
    // Training graphs keep MatMul (its gradient runs on oneDNN): the threshold does not apply.
    assertEquals(attention, (long) rewards(name, false)[0]);
  }

  @Test
  void theCachedGreedyDecodeWithTheBatchedFormReproducesTransformers() throws Exception {
    System.setProperty(PROPERTY, "0");
    String name = "qwen2-causal";
    try (Sampler s = Sampler.load(FamilyParityTest.dir(name), ExecConfig.deterministic())) {
      assertGreedyDecodeMatchesTransformers(s, name, "BatchMatMulV2");
    }
  }

  @Test
  void weightFirstProductsOfLargeWeightsMatchTransformersInScoringAndTraining() throws Exception {
    // The fixture's weights are below the size from which scoring and training graphs multiply
    // weight first without oneDNN: lower it to 0 and force the form, then compare with
    // transformers. Each Llama projection adds one Transpose (and the [1, H] score head too).
    String name = "llama3-seqcls";
    float[] want = Fixtures.floats(FamilyParityTest.expected(name).get("rewards"));
    int layers = HfCheckpoint.load(FamilyParityTest.dir(name)).config().numLayers();
    System.setProperty(WEIGHT_FIRST, "false");
    long plainInference = (long) rewards(name, true)[2];
    long plainTraining = (long) rewards(name, false)[2];
    System.setProperty(WEIGHT_FIRST, "true");
    System.setProperty(WEIGHT_FIRST_MIN, "0");
    for (boolean inference : new boolean[] {true, false}) {
      String form = (inference ? "inference" : "training") + " graph, weight first";
      Object[] r = rewards(name, inference);
      assertClose(want, (float[]) r[1], 1e-4, 1e-5, name + " " + form);
      assertEquals(
          (inference ? plainInference : plainTraining) + 7L * layers + 1,
          (long) r[2],
          form + ": Transpose nodes");
    }
  }

  /**
   * {@code s}'s cached greedy decode of fixture {@code name}'s prompt gives transformers' tokens.
   */
  private static void assertGreedyDecodeMatchesTransformers(Sampler s, String name, String form)
      throws Exception {
    JsonNode e = FamilyParityTest.expected(name);
    int[] prompt = Fixtures.ints2(e.get("prompt"))[0];
    int[] greedy = Fixtures.ints2(e.get("greedy_ids"))[0];
    float[] logprobs = Fixtures.floats(e.get("token_logprobs"));
    int n = greedy.length - prompt.length;
    Generation g = s.generate(List.of(prompt), SamplingConfig.greedy(n)).get(0);
    assertArrayEquals(
        Arrays.copyOfRange(greedy, prompt.length, greedy.length), g.responseIds(), form);
    assertClose(
        Arrays.copyOfRange(logprobs, prompt.length - 1, logprobs.length),
        g.tokenLogprobs(),
        1e-4,
        1e-5,
        name + " token_logprobs (" + form + ")");
  }

  /** The decode loop's {@code Transpose} nodes (the weight-first products add one each). */
  private static long transposes(Sampler s) throws Exception {
    java.lang.reflect.Method m = Sampler.class.getDeclaredMethod("graph");
    m.setAccessible(true);
    return count((Graph) m.invoke(s), "Transpose");
  }

  @Test
  void weightFirstDecodeProductsReproduceTransformersInBothForms() throws Exception {
    String name = "llama3-causal";
    int layers = HfCheckpoint.load(FamilyParityTest.dir(name)).config().numLayers();
    long[] counts = new long[2];
    for (String form : List.of("false", "true")) {
      System.setProperty(WEIGHT_FIRST, form);
      try (Sampler s = Sampler.load(FamilyParityTest.dir(name), ExecConfig.deterministic())) {
        counts[form.equals("true") ? 1 : 0] = transposes(s);
        assertGreedyDecodeMatchesTransformers(s, name, "weightFirst " + form);
      }
    }
    // q, k, v, o, gate, up, down of every block in the loop body: one Transpose each
    assertEquals(7L * layers, counts[1] - counts[0], "Transpose nodes " + Arrays.toString(counts));
  }
}
