package dev.rewardensemble.ensemble;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.config.AvailableMemory;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.StackedLora;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The plan's numbers against hand-computed ones for tiny-llama's shape. */
class MemoryPlanTest {

  /** tf-graphs/tiny-llama.json: V 320, H 64, F 160, 2 blocks, 4 heads, 2 KV heads, head 16. */
  static ModelConfig tiny() throws Exception {
    String json =
        "{\"model_type\": \"llama\", \"vocab_size\": 320, \"hidden_size\": 64,"
            + " \"intermediate_size\": 160, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
            + " \"num_key_value_heads\": 2, \"head_dim\": 16, \"max_position_embeddings\": 256,"
            + " \"tie_word_embeddings\": false}";
    return ModelConfigs.parse(new ObjectMapper().readTree(json), "tiny");
  }

  // Per block: q 64x64 + k 32x64 + v 32x64 + o 64x64 + gate, up, down 3 x 160x64 + 2 norms x 64.
  static final long BLOCK = 4096 + 2048 + 2048 + 4096 + 3 * 10240 + 128;
  static final long M = 320 * 64 + 2 * BLOCK + 64; // embedding, blocks, final norm

  // r 8 x (in + out): q 8x128, k 8x96, v 8x96, o 8x128, gate/up/down 8x224 each.
  static final long A_BLOCK = 1024 + 768 + 768 + 1024 + 3 * 1792;

  @Test
  void parameterCountsMatchHandComputedOnesAndTheGraphsModules() throws Exception {
    ModelConfig c = tiny();
    assertEquals(106_816, M);
    assertEquals(M, MemoryPlan.trunkParameters(c));
    LoraConfig all = LoraConfig.defaults(c);
    assertEquals(2 * A_BLOCK, MemoryPlan.adapterParameters(c, all));
    assertEquals(A_BLOCK, MemoryPlan.adapterParameters(c, all.withLoraLayers(1)));
    LoraConfig q = all.withTargets(List.of("q_proj", "v_proj")).withRank(4, 8);
    assertEquals(2 * 4 * (128 + 96), MemoryPlan.adapterParameters(c, q));
    // The same count as the LoRA graph's own modules.
    for (LoraConfig l : List.of(all, all.withLoraLayers(1), q)) {
      long fromGraph =
          StackedLora.modules(c, l).stream()
              .mapToLong(m -> (long) l.rank() * (m.in() + m.out()))
              .sum();
      assertEquals(fromGraph, MemoryPlan.adapterParameters(c, l));
    }
  }

  @Test
  void scorePlanOfASingleModel() throws Exception {
    ModelConfig c = tiny();
    MemoryPlan p = MemoryPlan.of(MemoryPlan.Request.score(c, EnsembleKind.SINGLE, 1, null, 4, 10));
    assertEquals(M * 4, p.bytes("trunk weights (frozen)"));
    assertEquals(64 * 4, p.bytes("reward heads"));
    // 40 tokens x (9 x 64 + 3 x 32 + 5 x 160) + 3 x 4 sequences x 4 heads x 10 x 10
    long floats = 40L * (576 + 96 + 800) + 3L * 4 * 4 * 100;
    assertEquals(63_680, floats);
    assertEquals((long) (floats * 4 * MemoryPlan.ACTIVATION_CALIBRATION), p.bytes("activations"));
    assertEquals((M + 64) * 4, p.bytes("loading copy (float32 Java arrays)"));
    assertEquals(
        M * 4
            + 256
            + (long) (floats * 4 * MemoryPlan.ACTIVATION_CALIBRATION)
            + (M + 64) * 4
            + MemoryPlan.RUNTIME_BYTES,
        p.total());
  }

  @Test
  void loraTrainingPlanInBfloat16() throws Exception {
    ModelConfig c = tiny();
    LoraConfig lora = LoraConfig.defaults(c); // dropout 0.05: each member copies adapter inputs
    MemoryPlan.Request r =
        new MemoryPlan.Request(
            c, EnsembleKind.LORA, 3, lora, MemoryPlan.Mode.TRAIN, 2, 1, 8, 0, false);
    MemoryPlan p = MemoryPlan.of(r);
    long trained = 3 * (2 * A_BLOCK + 64);
    assertEquals(M * 2, p.bytes("trunk weights (frozen)"));
    assertEquals(trained * 4, p.bytes("trained weights (float32)"));
    assertEquals(trained * 8, p.bytes("AdamW moments"));
    assertEquals(trained * 8, p.bytes("gradients"));
    // 2 sequences x 8 tokens; per block 16 x 1472 + 3 x 2 x 4 x 64; 3 members x 2 blocks + 1;
    // dropout: 3 members x 16 tokens x 2 blocks x (6 x 64 + 160) inputs.
    long block = 16L * 1472 + 3L * 2 * 4 * 64;
    long floats = 7 * block + 3L * 16 * 2 * (6 * 64 + 160);
    assertEquals((long) (floats * 4 * MemoryPlan.ACTIVATION_CALIBRATION), p.bytes("activations"));
    assertEquals(0, p.bytes("loading copy (float32 Java arrays)"));
    assertEquals(
        trained * MemoryPlan.TRAINING_COPY_BYTES,
        p.bytes("training copies (Java side, allocator)"));
    assertEquals(MemoryPlan.TRAIN_RUNTIME_BYTES, p.bytes("runtime (JVM + TensorFlow)"));
    assertEquals(
        (long) (M * 2 * MemoryPlan.FROZEN_TRAIN_OVERHEAD), p.bytes("training over a frozen trunk"));
    // A GPU holds all but the host's parts: runtime, Java-side copies, the measured overhead.
    assertEquals(
        p.total()
            - MemoryPlan.TRAIN_RUNTIME_BYTES
            - trained * MemoryPlan.TRAINING_COPY_BYTES
            - p.bytes("training over a frozen trunk"),
        p.deviceTotal());
  }

  @Test
  void independentEnsemblesHoldKTrunksWhenScoringAndOneWhenTraining() throws Exception {
    ModelConfig c = tiny();
    MemoryPlan.Request r = MemoryPlan.Request.score(c, EnsembleKind.INDEPENDENT, 3, null, 1, 0);
    assertEquals(3 * M * 4, MemoryPlan.of(r).bytes("trunk weights (frozen)"));
    assertEquals(0, MemoryPlan.of(r).bytes("activations")); // no length: not planned
    MemoryPlan t = MemoryPlan.of(r.withMode(MemoryPlan.Mode.TRAIN));
    assertEquals((M + 64) * 4, t.bytes("trained weights (float32)"));
    MemoryPlan linear = MemoryPlan.of(r.withKind(EnsembleKind.LINEAR, 3, null));
    assertEquals(M * 4, linear.bytes("trunk weights (frozen)"));
    assertEquals(3 * 64 * 4, linear.bytes("reward heads"));
  }

  @Test
  void kvCacheOfGeneration() throws Exception {
    ModelConfig c = tiny();
    MemoryPlan.Request r =
        new MemoryPlan.Request(
            c, EnsembleKind.SINGLE, 1, null, MemoryPlan.Mode.GENERATE, 4, 3, 10, 20, false);
    MemoryPlan p = MemoryPlan.of(r);
    // 2 x 2 layers x 3 rows x 2 KV heads x 30 positions x 16 x 4 bytes
    assertEquals(2L * 2 * 3 * 2 * 30 * 16 * 4, p.bytes("KV cache"));
    assertEquals((M + 320 * 64) * 4, p.bytes("trunk + LM head weights (frozen)"));
    // the decode steps' [B, V] tensors: 21 x 3 rows x 320 x 4 bytes
    assertEquals(21L * 3 * 320 * 4, p.bytes("decode steps' vocabulary tensors"));
  }

  @Test
  void ppoHoldsTrainedPolicyAndValueAndFrozenReferenceAndRewardModel() throws Exception {
    ModelConfig c = tiny();
    MemoryPlan p =
        MemoryPlan.of(
            new MemoryPlan.Request(
                c, EnsembleKind.LINEAR, 3, null, MemoryPlan.Mode.PPO, 2, 2, 4, 6, true));
    long lm = 320 * 64;
    long trained = (M + lm) + (M + 64); // policy with its LM head, value model with its head
    assertEquals(trained * 4, p.bytes("trained weights (float32)"));
    assertEquals(
        ((M + lm) + M) * 2, p.bytes("frozen weights (reference policy + reward model trunk)"));
    assertEquals(3 * 64 * 4, p.bytes("reward heads + adapters"));
    assertEquals(2L * 2 * 2 * 2 * 10 * 16 * 4, p.bytes("KV cache"));
    // Java arrays: the policy and the reward model, each loaded once.
    assertEquals(((M + lm) + M + 3 * 64) * 4, p.bytes("loading copy (float32 Java arrays)"));
  }

  @Test
  void aPlanThatDoesNotFitIsRefusedWithTheNumbersAndWhatToChange() throws Exception {
    MemoryPlan p =
        MemoryPlan.of(MemoryPlan.Request.score(tiny(), EnsembleKind.SINGLE, 1, null, 4, 10));
    p.require(new AvailableMemory(p.total(), "test"), "rme score"); // exactly enough: fine
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> p.require(new AvailableMemory(1 << 20, "test"), "rme score of tiny"));
    String msg = e.getMessage();
    assertTrue(msg.startsWith("rme score of tiny needs about "), msg);
    assertTrue(msg.contains("but 1.0 MiB is available (test)"), msg);
    assertTrue(msg.contains("--weights bfloat16"), msg);
    assertTrue(msg.contains("--batch-size"), msg);
    assertTrue(!msg.contains("\n"), msg);
  }

  @Test
  void requestsAreValidated() throws Exception {
    ModelConfig c = tiny();
    assertThrows(
        IllegalArgumentException.class,
        () -> MemoryPlan.Request.score(c, EnsembleKind.LORA, 3, null, 1, 1));
    assertThrows(
        IllegalArgumentException.class,
        () -> MemoryPlan.Request.score(c, EnsembleKind.SINGLE, 1, null, 0, 1));
    assertThrows(
        IllegalArgumentException.class,
        () -> MemoryPlan.Request.score(c, EnsembleKind.SINGLE, 1, null, 1, 257));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new MemoryPlan.Request(
                c, EnsembleKind.SINGLE, 1, null, MemoryPlan.Mode.SCORE, 3, 1, 1, 0, false));
    assertEquals(5L << 30, AvailableMemory.parseBytes("5GiB", "x"));
    assertEquals(80L << 30, AvailableMemory.parseBytes("80 GB", "x"));
    assertEquals(512L << 20, AvailableMemory.parseBytes("512MiB", "x"));
    assertThrows(IllegalArgumentException.class, () -> AvailableMemory.parseBytes("lots", "x"));
  }

  /**
   * A scoring graph that reads the embedding's rows from the file's map: the table leaves the
   * weights, the pages of one batch's rows (a page more than a row each, at most the table) join
   * the host's parts, and a plan without hosting is unchanged.
   */
  @Test
  void aHostedEmbeddingCountsTheRowsOfABatchNotTheTable() throws Exception {
    ModelConfig c =
        ModelConfigs.parse(
            new ObjectMapper()
                .readTree(
                    "{\"model_type\": \"llama\", \"vocab_size\": 1000, \"hidden_size\": 2048,"
                        + " \"intermediate_size\": 64, \"num_hidden_layers\": 1,"
                        + " \"num_attention_heads\": 16, \"num_key_value_heads\": 16,"
                        + " \"head_dim\": 128, \"max_position_embeddings\": 256,"
                        + " \"tie_word_embeddings\": false}"),
            "wide");
    long m = MemoryPlan.trunkParameters(c);
    long table = 1000L * 2048;
    MemoryPlan.Request base =
        new MemoryPlan.Request(
            c, EnsembleKind.INDEPENDENT, 3, null, MemoryPlan.Mode.SCORE, 2, 2, 16, 0, false);
    MemoryPlan held = MemoryPlan.of(base);
    MemoryPlan hosted = MemoryPlan.of(base.withHostedEmbedding(2));
    String rows = "embedding rows (file map)";
    assertEquals(0, held.bytes(rows));
    assertEquals(3 * m * 2, held.bytes("trunk weights (frozen)"));
    assertEquals(3 * (m - table) * 2, hosted.bytes("trunk weights (frozen)"));
    // 2 x 16 = 32 rows of 4,096 bytes, each with a page more: 8 KiB, x 3 members
    assertEquals(3 * 32 * 8192, hosted.bytes(rows));
    assertEquals(held.total() - 3 * table * 2 + 3 * 32 * 8192, hosted.total());
    // the rows are read on the host whatever the device: a GPU's share loses the tables only
    assertEquals(held.deviceTotal() - 3 * table * 2, hosted.deviceTotal());
    // an F32 file: rows of 8,192 bytes, 3 pages each
    MemoryPlan f32 =
        MemoryPlan.of(base.withKind(EnsembleKind.SINGLE, 1, null).withHostedEmbedding(4));
    assertEquals(32 * 3 * 4096, f32.bytes(rows));
    // a batch that can read every row (64 x 16 tokens, 1,000 rows): at most the table
    MemoryPlan wide =
        MemoryPlan.of(
            new MemoryPlan.Request(
                    c, EnsembleKind.SINGLE, 1, null, MemoryPlan.Mode.SCORE, 2, 64, 16, 0, false)
                .withHostedEmbedding(4));
    assertEquals(table * 4, wide.bytes(rows));
    // training holds the embedding in a variable whatever the request says
    MemoryPlan train = MemoryPlan.of(base.withMode(MemoryPlan.Mode.TRAIN).withHostedEmbedding(2));
    assertEquals(0, train.bytes(rows));
    assertThrows(IllegalArgumentException.class, () -> base.withHostedEmbedding(3));
  }
}
