package dev.rewardensemble.ensemble;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.config.AvailableMemory;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.lora.LoraConfig;
import org.junit.jupiter.api.Test;

/** The activations of a training step with {@code --recompute}, against hand-computed ones. */
class MemoryPlanRecomputeTest {
  /** Per block of tiny-llama for 2 sequences x 8 tokens (see MemoryPlanTest). */
  static final long BLOCK = 16L * 1472 + 3L * 2 * 4 * 64;

  static long bytes(long floats) {
    return (long) (floats * 4 * MemoryPlan.ACTIVATION_CALIBRATION);
  }

  static ModelConfig llama(int layers) throws Exception {
    String json =
        "{\"model_type\": \"llama\", \"vocab_size\": 320, \"hidden_size\": 64,"
            + " \"intermediate_size\": 160, \"num_hidden_layers\": "
            + layers
            + ", \"num_attention_heads\": 4,"
            + " \"num_key_value_heads\": 2, \"head_dim\": 16, \"max_position_embeddings\": 512,"
            + " \"tie_word_embeddings\": false}";
    return ModelConfigs.parse(new ObjectMapper().readTree(json), "tiny");
  }

  @Test
  void singleModelKeepsEveryBlockInputAndOneBlock() throws Exception {
    MemoryPlan.Request r =
        new MemoryPlan.Request(
            llama(2), EnsembleKind.SINGLE, 1, null, MemoryPlan.Mode.TRAIN, 4, 1, 8, 0, false);
    // Without: 2 blocks kept + the block being computed.
    assertEquals(bytes(3 * BLOCK), MemoryPlan.of(r).bytes("activations"));
    // With: 2 block inputs [16, 64] + one block recomputed + the block being computed.
    MemoryPlan p = MemoryPlan.of(r.withRecompute(true));
    assertEquals(bytes(2 * 16 * 64 + 2 * BLOCK), p.bytes("activations"));
    assertTrue(p.table().contains("one block recomputed"), p.table());
    // Everything else is the same.
    assertEquals(
        MemoryPlan.of(r).total() - MemoryPlan.of(r).bytes("activations"),
        p.total() - p.bytes("activations"));
  }

  @Test
  void loraEnsembleKeepsEachMembersBlockInputsAboveTheFork() throws Exception {
    ModelConfig c = llama(2);
    LoraConfig lora = LoraConfig.defaults(c); // fork at 0, dropout 0.05
    MemoryPlan.Request r =
        new MemoryPlan.Request(
                c, EnsembleKind.LORA, 3, lora, MemoryPlan.Mode.TRAIN, 2, 1, 8, 0, false)
            .withRecompute(true);
    // Inputs: the fork block's once, block 1's for 3 members: 4 x [16, 64]; one block for 3
    // members + the block being computed; one block's share of the dropout copies.
    long dropout = 3L * 16 * 2 * (6 * 64 + 160);
    long floats = 4L * 16 * 64 + 3 * BLOCK + BLOCK + dropout / 2;
    assertEquals(bytes(floats), MemoryPlan.of(r).bytes("activations"));
    // Without: 3 members x 2 blocks + 1, and all the dropout copies (MemoryPlanTest).
    assertEquals(
        bytes(7 * BLOCK + dropout), MemoryPlan.of(r.withRecompute(false)).bytes("activations"));
  }

  @Test
  void deepModelsSaveMostOfTheirActivations() throws Exception {
    MemoryPlan.Request r =
        new MemoryPlan.Request(
            llama(32), EnsembleKind.SINGLE, 1, null, MemoryPlan.Mode.TRAIN, 4, 4, 256, 0, false);
    long without = MemoryPlan.of(r).bytes("activations");
    long with = MemoryPlan.of(r.withRecompute(true)).bytes("activations");
    assertTrue(with * 8 < without, with + " vs " + without);
  }

  @Test
  void thePreCheckSuggestsRecomputeWhenActivationsDoNotFit() throws Exception {
    MemoryPlan.Request r =
        new MemoryPlan.Request(
            llama(32), EnsembleKind.SINGLE, 1, null, MemoryPlan.Mode.TRAIN, 4, 4, 256, 0, false);
    MemoryPlan plain = MemoryPlan.of(r);
    MemoryPlan recomputed = MemoryPlan.of(r.withRecompute(true));
    // every block recomputed fits even within --recompute auto's share of it
    AvailableMemory enough = new AvailableMemory((long) (recomputed.total() / 0.85), "test");
    recomputed.require(enough, "rme train-rm --recompute"); // fits
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> plain.require(enough, "rme train-rm"));
    String msg = e.getMessage();
    // the fewest blocks that fit first (faster), then recomputing every block
    assertTrue(msg.contains("; try --recompute auto (recomputes the lowest "), msg);
    assertTrue(msg.contains(", --recompute (activations "), msg);
    assertFalse(msg.contains("\n"), msg);
    // Already recomputing: not suggested again.
    IllegalArgumentException again =
        assertThrows(
            IllegalArgumentException.class,
            () -> recomputed.require(new AvailableMemory(1 << 20, "test"), "rme train-rm"));
    assertFalse(again.getMessage().contains("--recompute"), again.getMessage());
  }

  @Test
  void ppoKeepsBothModelsBlockInputsAndOneBlock() throws Exception {
    // 2 rollouts of 3 prompt + 5 new tokens: 2 sequences x 8 tokens, as BLOCK.
    MemoryPlan.Request r =
        new MemoryPlan.Request(
            llama(2), EnsembleKind.SINGLE, 1, null, MemoryPlan.Mode.PPO, 4, 2, 3, 5, false);
    long logits = 2L * 2 * 8 * 320;
    // Without: policy and value model, 2 x 2 blocks, and both models' logits-sized rows.
    assertEquals(bytes(4 * BLOCK + logits), MemoryPlan.of(r).bytes("activations"));
    // With: the inputs [16, 64] of 4 blocks + one block recomputed + the block being computed.
    MemoryPlan p = MemoryPlan.of(r.withRecompute(true));
    assertEquals(bytes(4 * 16 * 64 + 2 * BLOCK + logits), p.bytes("activations"));
    assertTrue(p.table().contains("one block recomputed"), p.table());
    assertEquals(
        MemoryPlan.of(r).total() - MemoryPlan.of(r).bytes("activations"),
        p.total() - p.bytes("activations"));
    // The pre-check suggests it for PPO too, and not again when already recomputing.
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> MemoryPlan.of(r).require(new AvailableMemory(p.total(), "test"), "rme ppo"));
    assertTrue(e.getMessage().contains("--recompute (activations "), e.getMessage());
    p.require(new AvailableMemory(p.total(), "test"), "rme ppo --recompute"); // fits
  }
}
