package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.testing.Cli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The families beyond GPT-2 and Llama 2 through the command line, on the transformers checkpoints
 * of {@code src/test/resources/hf-families/}: {@code rme info} counts every tensor of the
 * checkpoint, and a LoRA ensemble (K = 2) trains for two steps, exports to PEFT under PEFT's module
 * names (the integrator's {@code scripts/python-interop.sh} loads them with peft) and scores the
 * same from the export as from its run directory.
 */
class FamilyCommandsTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int K = 2;
  private static final int RANK = 4;
  private static final List<String> ATTENTION = List.of("q_proj", "k_proj", "v_proj", "o_proj");
  private static final List<String> MLP = List.of("gate_proj", "up_proj", "down_proj");

  @TempDir Path tmp;

  static Path fixture(String name) throws Exception {
    return Path.of(
            FamilyCommandsTest.class.getResource("/hf-families/" + name + "/config.json").toURI())
        .getParent();
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama3", "qwen2", "qwen3", "mistral"})
  void infoCountsEveryTensorOfTheCheckpoint(String family) throws Exception {
    for (String kind : List.of("seqcls", "causal")) {
      Path dir = fixture(family + "-" + kind);
      long trunk = 0;
      try (Safetensors st = Safetensors.open(dir.resolve("model.safetensors"))) {
        for (String key : st.keys()) {
          if (!key.equals("score.weight") && !key.equals("lm_head.weight")) {
            trunk += Arrays.stream(st.info(key).shape()).reduce(1, (a, b) -> a * b);
          }
        }
      }
      long hidden = JSON.readTree(dir.resolve("config.json").toFile()).get("hidden_size").asLong();
      String out = info(dir);
      assertTrue(
          out.contains("M = " + trunk + " (trunk), L = " + hidden + " (one head)"),
          family + "-" + kind + ": " + out);
      assertTrue(out.contains("total in memory: " + (trunk + hidden)), out);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama3", "qwen2", "qwen3", "mistral"})
  void loraEnsembleTrainsExportsToPeftAndScoresTheSame(String family) throws Exception {
    Path base = fixture(family + "-seqcls");
    JsonNode cfg = JSON.readTree(base.resolve("config.json").toFile());
    int vocab = cfg.get("vocab_size").asInt();
    int layers = cfg.get("num_hidden_layers").asInt();
    Path data = preferences(vocab, 16);
    Path run = tmp.resolve("run");
    Cli.Run r =
        Cli.rme(
            "train-rm",
            "--model",
            base.toString(),
            "--data",
            data.toString(),
            "--out",
            run.toString(),
            "--ensemble",
            "lora",
            "--k",
            String.valueOf(K),
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--grad-accum",
            "1",
            "--eval-fraction",
            "0",
            "--lr",
            "1e-3",
            "--lora-lr",
            "1e-3",
            "--lora-rank",
            String.valueOf(RANK),
            "--lora-alpha",
            "8");
    assertEquals(0, r.code(), family + ": " + r.err());

    Path peft = tmp.resolve("peft");
    r = Cli.rme("export", "--model", run.toString(), "--format", "peft", "--out", peft.toString());
    assertEquals(0, r.code(), family + ": " + r.err());
    List<Path> members = new ArrayList<>();
    try (Safetensors baseWeights = Safetensors.open(base.resolve("model.safetensors"))) {
      for (int k = 0; k < K; k++) {
        Path member = peft.resolve("member-" + k);
        members.add(member);
        JsonNode ac = JSON.readTree(member.resolve("adapter_config.json").toFile());
        assertEquals("SEQ_CLS", ac.get("task_type").asText());
        List<String> targets = new ArrayList<>();
        ac.get("target_modules").forEach(t -> targets.add(t.asText()));
        List<String> all = new ArrayList<>(ATTENTION);
        all.addAll(MLP);
        assertEquals(all, targets, family + " target_modules");
        try (Safetensors st = Safetensors.open(member.resolve("adapter_model.safetensors"))) {
          for (int i = 0; i < layers; i++) {
            for (String module : all) {
              String path =
                  "model.layers."
                      + i
                      + (ATTENTION.contains(module) ? ".self_attn." : ".mlp.")
                      + module;
              long[] w = baseWeights.info(path + ".weight").shape(); // [out, in]
              String a = "base_model.model." + path + ".lora_A.weight";
              String b = "base_model.model." + path + ".lora_B.weight";
              assertTrue(st.contains(a) && st.contains(b), family + ": " + a + " in " + st.keys());
              assertArrayEquals(new long[] {RANK, w[1]}, st.info(a).shape(), a);
              assertArrayEquals(new long[] {w[0], RANK}, st.info(b).shape(), b);
              // B starts at zero: trained away from it only if the family's forward routes this
              // module's product through the LoRA projector.
              float[] bData = st.read(b).data();
              assertTrue(
                  java.util.stream.IntStream.range(0, bData.length).anyMatch(j -> bData[j] != 0),
                  family + ": " + b + " was not trained");
            }
          }
        }
      }
    }

    List<int[]> seqs = List.of(new int[] {5, 7, 9, 7, 11}, new int[] {4, 40, 8, 30, 31, 7, 250});
    try (RewardModel fromRun = RewardModel.load(run);
        RewardModel fromPeft =
            RewardModel.loadWithAdapters(run.resolve("phase1"), members, ExecConfig.defaults())) {
      float[][] a = fromRun.score(seqs, 2);
      float[][] b = fromPeft.score(seqs, 2);
      for (int i = 0; i < a.length; i++) {
        assertEquals(K, a[i].length);
        assertArrayEquals(a[i], b[i], family + " row " + i);
      }
    }
    String out = info(run);
    assertTrue(out.contains("kind: lora, K = " + K), out);
  }

  /** {@code n} pre-tokenized preference rows over ids 3..vocab-1. */
  private Path preferences(int vocab, int n) throws Exception {
    SplittableRandom rng = new SplittableRandom(7);
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int[] prompt = rng.ints(3 + rng.nextInt(4), 3, vocab).toArray();
      int[] chosen = concat(prompt, rng.ints(3, 3, vocab).toArray());
      int[] rejected = concat(prompt, rng.ints(2, 3, vocab).toArray());
      lines.add(JSON.writeValueAsString(Map.of("chosen_ids", chosen, "rejected_ids", rejected)));
    }
    Path p = tmp.resolve("pref.jsonl");
    Files.write(p, lines);
    return p;
  }

  private static int[] concat(int[] a, int[] b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  /** Standard output of {@code rme info --model dir}. */
  private static String info(Path dir) {
    PrintStream old = System.out;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setOut(new PrintStream(buf, true));
    try {
      Cli.Run r = Cli.rme("info", "--model", dir.toString());
      assertEquals(0, r.code(), r.err());
    } finally {
      System.setOut(old);
    }
    return buf.toString();
  }
}
