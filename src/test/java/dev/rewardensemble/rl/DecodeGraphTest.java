package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.model.LmHead;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.tensorflow.GraphOperation;

/**
 * The decode step's costly ops take their fast forms (profiled on bench-llama: the LM head's
 * transposed-weight product and the attention's 5-D broadcasting products were the costliest ops of
 * a step): attention over the cache multiplies rank-3 batches, and the head's product has the
 * {@code [V, H]} weight as its untransposed left operand. Generation results are checked by
 * SamplerTest and HfReferenceTest.
 */
class DecodeGraphTest {

  /** The ops of the decode loop's body, in graph order. */
  static List<GraphOperation> body(Sampler s) {
    List<GraphOperation> out = new ArrayList<>();
    for (Iterator<GraphOperation> it = s.graph().operations(); it.hasNext(); ) {
      GraphOperation op = it.next();
      if (op.name().startsWith("decode/body/")) {
        out.add(op);
      }
    }
    return out;
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny-llama", "tiny-gpt2"})
  void attentionOverTheCacheMultipliesRank3Batches(String preset) throws Exception {
    ModelConfig c = Models.preset(preset);
    try (Sampler s = Models.random(c, 3)) {
      int products = 0;
      for (GraphOperation op : body(s)) {
        if (op.type().equals("BatchMatMulV2")) {
          products++;
          for (int i = 0; i < 2; i++) {
            assertEquals(3, op.input(i).shape().numDimensions(), op.name() + " input " + i);
          }
        }
      }
      assertEquals(2 * c.numLayers(), products, "two products per layer");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny-llama", "tiny-gpt2"})
  void theHeadMultipliesTheUntransposedWeightByTheTransposedRows(String preset) throws Exception {
    ModelConfig c = Models.preset(preset);
    try (Sampler s = Models.random(c, 3)) {
      int weightFirst = 0;
      int rowsFirst = 0;
      for (GraphOperation op : body(s)) {
        // The head multiplies the step's last rows ([B, H], a StridedSlice of the block output).
        if (op.type().equals("MatMul")) {
          weightFirst += op.input(1).op().type().equals("StridedSlice") ? 1 : 0;
          rowsFirst += op.input(0).op().type().equals("StridedSlice") ? 1 : 0;
          if (op.input(1).op().type().equals("StridedSlice")) {
            assertTrue(op.attributes().getAttrBool("transpose_b"), op.name());
            assertTrue(!op.attributes().getAttrBool("transpose_a"), op.name());
          }
        }
      }
      assertEquals(0, rowsFirst, "no rows-first head product");
      int heads = weightFirst;
      assertTrue(heads >= 1, "a weight-first head product in the decode body");
    }
  }

  /**
   * The weights and sampling settings enter the decode loop's frame once ({@code Enter} with {@code
   * is_constant}), not as loop variables: a loop variable costs four ops per step (Merge, Switch,
   * Identity, NextIteration), which were a quarter of a small model's decode step.
   */
  @ParameterizedTest
  @ValueSource(strings = {"tiny-llama", "tiny-gpt2"})
  void weightsEnterTheLoopOnceNotAsLoopVariables(String preset) throws Exception {
    ModelConfig c = Models.preset(preset);
    int weights = LmHead.weightShapes(c).size();
    try (Sampler s = Models.random(c, 3)) {
      int constantEnters = 0;
      int loopVariables = 0;
      for (Iterator<GraphOperation> it = s.graph().operations(); it.hasNext(); ) {
        GraphOperation op = it.next();
        if (op.type().equals("Enter") && op.attributes().getAttrBool("is_constant")) {
          constantEnters++;
        }
        if (op.type().equals("NextIteration") && op.name().startsWith("decode/")) {
          loopVariables++;
        }
      }
      assertTrue(constantEnters >= weights + 7, constantEnters + " constant Enter ops");
      // max new, last token, done, request, count, next request, width, tokens, log-probs; the
      // cache's next slots, key mask, and keys and values per layer
      assertEquals(9 + 2 + 2 * c.numLayers(), loopVariables, "loop variables");
    }
  }

  /**
   * A decode step attends with one query per row: its queries and context are reshaped, not
   * transposed; the transposes left are the keys' and values' (2 per layer) and the head's (with
   * the weight products in their x @ w^T form: the weight-first form, taken without oneDNN, adds
   * one per Llama projection, see InferenceProductsTest).
   */
  @ParameterizedTest
  @ValueSource(strings = {"tiny-llama", "tiny-gpt2"})
  void oneTokenAttentionTransposesOnlyTheNewKeysAndValues(String preset) throws Exception {
    ModelConfig c = Models.preset(preset);
    System.setProperty("rme.weightFirst", "false");
    try (Sampler s = Models.random(c, 3)) {
      long transposes = body(s).stream().filter(op -> op.type().equals("Transpose")).count();
      assertEquals(2L * c.numLayers() + 1, transposes);
    } finally {
      System.clearProperty("rme.weightFirst");
    }
  }
}
