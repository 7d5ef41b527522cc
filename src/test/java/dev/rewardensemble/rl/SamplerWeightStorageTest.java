package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.OneDnn;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.WeightStorage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.tensorflow.GraphOperation;

/**
 * Generation with the weights stored in bfloat16: the variables are {@code DT_BFLOAT16}, they enter
 * the in-graph decode loop as loop inputs in bfloat16 (widened inside the body, block by block),
 * and on a bf16 checkpoint the greedy tokens and their log-probabilities equal float32 storage's
 * exactly (widening is exact). Under bfloat16 compute the decode steps multiply the stored bfloat16
 * weights as stored where oneDNN multiplies bfloat16 (no float32 copy of a weight per step) and
 * choose the tokens the uncached reference chooses under the same precision.
 */
class SamplerWeightStorageTest {

  static Path fixture(String name) throws Exception {
    return Path.of(
            SamplerWeightStorageTest.class
                .getResource("/hf-families/" + name + "/config.json")
                .toURI())
        .getParent();
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama3-causal", "qwen2-causal", "gemma2-causal"})
  void bfloat16StorageDecodesTheSameTokensThroughBfloat16LoopInputs(String name) throws Exception {
    Path dir = fixture(name);
    List<int[]> prompts = List.of(new int[] {1, 5, 9, 11}, new int[] {1, 7});
    SamplingConfig greedy = SamplingConfig.greedy(6).withStopAtEos(false);
    List<List<Generation>> out = new ArrayList<>();
    for (WeightStorage w : List.of(WeightStorage.FLOAT32, WeightStorage.BFLOAT16)) {
      try (Sampler s = Sampler.load(dir, ExecConfig.deterministic().withWeights(w))) {
        int variables = 0;
        int bf16 = 0;
        int loopBf16 = 0;
        for (var it = s.graph().operations(); it.hasNext(); ) {
          GraphOperation op = (GraphOperation) it.next();
          if (op.type().startsWith("Variable")) {
            variables++;
            bf16 += op.output(0).dataType().name().startsWith("DT_BFLOAT16") ? 1 : 0;
          }
          // Graph.whileLoop builds TensorFlow's v1 control flow: each loop variable enters the
          // loop's frame through an Enter op.
          if (op.type().equals("Enter") && op.output(0).dataType().name().equals("DT_BFLOAT16")) {
            loopBf16++;
          }
        }
        assertTrue(variables > 5, name);
        if (w == WeightStorage.BFLOAT16) {
          assertEquals(variables, bf16, "every weight of a sampler is frozen: " + name);
          assertEquals(variables, loopBf16, "every weight enters the loop in bfloat16: " + name);
        } else {
          assertEquals(0, bf16 + loopBf16, name);
        }
        out.add(s.generate(prompts, greedy));
      }
    }
    for (int i = 0; i < prompts.size(); i++) {
      assertArrayEquals(out.get(0).get(i).responseIds(), out.get(1).get(i).responseIds(), name);
      assertArrayEquals(
          out.get(0).get(i).tokenLogprobs(), out.get(1).get(i).tokenLogprobs(), 0f, name);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama3-causal", "qwen2-causal", "gemma2-causal"})
  void bfloat16ComputeDecodesFromTheStoredBfloat16Weights(String name) throws Exception {
    Path dir = fixture(name);
    List<int[]> prompts = List.of(new int[] {1, 5, 9, 11}, new int[] {1, 7});
    SamplingConfig greedy = SamplingConfig.greedy(6).withStopAtEos(false);
    ExecConfig exec =
        ExecConfig.deterministic()
            .withWeights(WeightStorage.BFLOAT16)
            .withCompute(Precision.BFLOAT16);
    try (Sampler s = Sampler.load(dir, exec)) {
      int widened = 0;
      for (var it = s.graph().operations(); it.hasNext(); ) {
        GraphOperation op = (GraphOperation) it.next();
        // A weight widened for a product: a used Cast of a bfloat16 matrix of static shape
        // (activations have an unknown row count).
        if (op.type().equals("Cast")
            && used(op)
            && op.input(0).dataType().name().startsWith("DT_BFLOAT16")
            && op.input(0).shape().numDimensions() == 2
            && !op.input(0).shape().hasUnknownDimension()) {
          widened++;
        }
      }
      if (OneDnn.bfloat16Products()) { // else a bfloat16 product widens its operands (Layers)
        assertEquals(0, widened, "no weight is widened to float32 for a product: " + name);
      }
      List<Generation> cached = s.generate(prompts, greedy);
      List<Generation> reference = s.generateUncached(prompts, greedy, prompts.size());
      for (int i = 0; i < prompts.size(); i++) {
        assertArrayEquals(reference.get(i).responseIds(), cached.get(i).responseIds(), name);
        assertArrayEquals(
            reference.get(i).tokenLogprobs(), cached.get(i).tokenLogprobs(), 0.05f, name);
      }
    }
  }

  /** Whether {@code op}'s output reaches an op other than an {@code Identity} (else pruned). */
  private static boolean used(GraphOperation op) {
    for (GraphOperation c : op.consumers()) {
      if (!c.type().equals("Identity") || used(c)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Under float32 compute a head held in bfloat16 is widened a block of rows at a time (here 7 of
   * the fixtures' 300 rows, {@code rme.headWidenBytes}), in the prefill and in every decode step:
   * no op of a decode step widens the whole head, and the tokens equal float32 storage's (the whole
   * head in one product), the log-probabilities to the last bit of a float.
   */
  @ParameterizedTest
  @ValueSource(strings = {"llama3-causal", "qwen2-causal", "gemma2-causal"})
  void aBfloat16HeadIsWidenedABlockOfRowsAtATime(String name) throws Exception {
    Path dir = fixture(name);
    List<int[]> prompts = List.of(new int[] {1, 5, 9, 11}, new int[] {1, 7});
    SamplingConfig greedy = SamplingConfig.greedy(6).withStopAtEos(false);
    List<Generation> f32;
    try (Sampler s =
        Sampler.load(dir, ExecConfig.deterministic().withWeights(WeightStorage.FLOAT32))) {
      f32 = s.generate(prompts, greedy);
    }
    int hidden;
    int vocab;
    System.setProperty("rme.headWidenBytes", Long.toString(7L * 4 * 64));
    try (Sampler s =
        Sampler.load(dir, ExecConfig.deterministic().withWeights(WeightStorage.BFLOAT16))) {
      hidden = s.config().hiddenSize();
      vocab = s.config().vocabSize();
      assertEquals(64, hidden, "the block size above assumes the fixtures' width");
      int bodyBlocks = 0;
      int prefillBlocks = 0;
      for (var it = s.graph().operations(); it.hasNext(); ) {
        GraphOperation op = (GraphOperation) it.next();
        org.tensorflow.ndarray.Shape sh = op.output(0).shape();
        if (!op.type().equals("Cast") || sh.isUnknown() || sh.numDimensions() != 2) {
          continue;
        }
        boolean body = op.name().startsWith("decode/body/");
        assertTrue(
            !body || sh.get(0) != vocab, "a decode step widens the whole head: " + op.name());
        if (sh.get(0) == 7 && sh.get(1) == hidden && op.input(0).op().type().equals("Slice")) {
          if (body) {
            bodyBlocks++;
          } else {
            prefillBlocks++;
          }
        }
      }
      // 300 rows: 42 blocks of 7 and one of 6, in the prefill and in the loop's body (the
      // uncached reference's product, which generate does not run, widens its head whole)
      assertEquals(42, bodyBlocks, name);
      assertEquals(42, prefillBlocks, name);
      List<Generation> bf16 = s.generate(prompts, greedy);
      for (int i = 0; i < prompts.size(); i++) {
        assertArrayEquals(f32.get(i).responseIds(), bf16.get(i).responseIds(), name);
        // the same dot products, but the matrix library blocks a product of 7 rows differently
        // from one of 300: the last bit of a logit may differ
        assertArrayEquals(f32.get(i).tokenLogprobs(), bf16.get(i).tokenLogprobs(), 2e-6f, name);
      }
    } finally {
      System.clearProperty("rme.headWidenBytes");
    }
  }
}
