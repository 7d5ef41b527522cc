package dev.rewardensemble.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.testing.Cli;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Configuration values that overflow or cannot work are refused with one line naming the key (exit
 * 2) before anything is allocated: no division by zero, no wrapped integers, no heap filled by
 * weights that cannot fit.
 */
class ConfigLimitsTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  private Path preset(String key, String rawValue) throws Exception {
    ObjectNode n = (ObjectNode) JSON.readTree(Path.of("tf-graphs/tiny-llama.json").toFile());
    n.set(key, JSON.readTree(rawValue));
    Path p = tmp.resolve("bad-" + key + "-" + Math.abs(rawValue.hashCode()) + ".json");
    Files.writeString(p, JSON.writeValueAsString(n));
    return p;
  }

  private Cli.Run trainRm(Path preset) throws Exception {
    Path data = tmp.resolve("pairs.jsonl");
    if (!Files.exists(data)) {
      Files.write(
          data, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(20, 64, 8, 16, 3, 1)));
    }
    return Cli.rme(
        "train-rm",
        "--model",
        preset.toString(),
        "--data",
        data.toString(),
        "--out",
        tmp.resolve("run-" + preset.getFileName()).toString(),
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--eval-fraction",
        "0",
        "--threads",
        "1");
  }

  private static void assertRefused(Cli.Run r, String key, String... more) {
    assertEquals(2, r.code(), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertTrue(r.err().startsWith("rme: error: "), r.err());
    assertTrue(r.err().contains(key), "expected the key '" + key + "' in: " + r.err());
    for (String m : more) {
      assertTrue(r.err().contains(m), "expected '" + m + "' in: " + r.err());
    }
  }

  @Test
  @Timeout(120)
  void eachImpossibleValueIsOneLineNamingTheKey() throws Exception {
    assertRefused(trainRm(preset("num_attention_heads", "0")), "num_attention_heads");
    assertRefused(trainRm(preset("vocab_size", "2147483647")), "vocab_size");
    assertRefused(trainRm(preset("hidden_size", "1000000000")), "hidden_size");
    assertRefused(trainRm(preset("num_hidden_layers", "100000")), "num_hidden_layers");
    assertRefused(
        trainRm(preset("max_position_embeddings", "2147483647")), "max_position_embeddings");
  }

  @Test
  @Timeout(60)
  void integersMustBeExactAndInRange() throws Exception {
    // 1e20 wrapped to 1661992960 as a Java int; an integer-valued big number is not an int either.
    assertRefused(trainRm(preset("hidden_size", "1e20")), "hidden_size", "1.0E20");
    assertRefused(
        trainRm(preset("hidden_size", "100000000000000000000")),
        "hidden_size",
        "100000000000000000000");
    assertRefused(trainRm(preset("eos_token_id", "100000000000000000000")), "eos_token_id");
    assertRefused(trainRm(preset("num_hidden_layers", "\"1\"")), "num_hidden_layers");
    assertRefused(trainRm(preset("num_hidden_layers", "1.9")), "num_hidden_layers");
    assertRefused(trainRm(preset("num_hidden_layers", "-3")), "num_hidden_layers");
  }

  @Test
  @Timeout(60)
  void memoryIsCheckedWhereWeightsAreMaterialisedNotForGraphs() throws Exception {
    // 4096 layers of the tiny model is a valid architecture that does not fit this JVM's heap
    // when every weight is initialised: refused with the estimate, before allocating.
    ObjectNode n = (ObjectNode) JSON.readTree(Path.of("tf-graphs/tiny-llama.json").toFile());
    n.put("hidden_size", 4096)
        .put("intermediate_size", 11008)
        .put("num_attention_heads", 32)
        .put("num_key_value_heads", 32)
        .put("head_dim", 128)
        .put("num_hidden_layers", 4096);
    Path big = tmp.resolve("big.json");
    Files.writeString(big, JSON.writeValueAsString(n));
    assertRefused(trainRm(big), "num_hidden_layers", "GiB");
    // The paper's 7B backbone still builds as a graph (no weights are allocated).
    var g =
        Cli.rme(
            "graph",
            "--spec",
            "tf-graphs/llama-7b.json",
            "--out",
            tmp.resolve("7b.pbtxt").toString());
    assertEquals(0, g.code(), g.err());
  }
}
