package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.testing.Cli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Gemma 2 reward model (the bf16 fixture {@code hf-families/gemma2-seqcls}) through the command
 * line: a LoRA ensemble of two members trained for a few steps, exported to PEFT with PEFT's module
 * names and scored back identically, and {@code rme info}'s parameter counts.
 */
class Gemma2CommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path tmp;
  static Path model;
  static Path run;

  @BeforeAll
  static void trainALoraEnsemble() throws Exception {
    model =
        Path.of(
                Gemma2CommandTest.class
                    .getResource("/hf-families/gemma2-seqcls/expected.json")
                    .toURI())
            .getParent();
    Path data = tmp.resolve("prefs.jsonl");
    Files.write(
        data, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(48, 300, 6, 12, 3, 5)));
    run = tmp.resolve("lora");
    Cli.Run r =
        Cli.rme(
            "train-rm",
            "--model",
            model.toString(),
            "--data",
            data.toString(),
            "--out",
            run.toString(),
            "--ensemble",
            "lora",
            "--k",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--grad-accum",
            "1",
            "--lr",
            "1e-4",
            "--lora-lr",
            "1e-3",
            "--eval-fraction",
            "0.25",
            "--lora-rank",
            "2",
            "--lora-alpha",
            "4");
    assertEquals(0, r.code(), r.err());
  }

  @Test
  void loraEnsemblePeftExportNamesModulesAsPeftAndScoresBackIdentically() throws Exception {
    Path peft = tmp.resolve("peft");
    Cli.Run r =
        Cli.rme("export", "--model", run.toString(), "--format", "peft", "--out", peft.toString());
    assertEquals(0, r.code(), r.err());
    Pattern peftKey =
        Pattern.compile(
            "base_model\\.model\\.model\\.layers\\.[01]\\."
                + "(self_attn\\.(q_proj|k_proj|v_proj|o_proj)|mlp\\.(gate_proj|up_proj|down_proj))"
                + "\\.lora_[AB]\\.weight|base_model\\.model\\.score\\.weight");
    List<Path> members = List.of(peft.resolve("member-0"), peft.resolve("member-1"));
    for (Path member : members) {
      JsonNode cfg = JSON.readTree(member.resolve("adapter_config.json").toFile());
      assertEquals("LORA", cfg.get("peft_type").asText());
      assertEquals("SEQ_CLS", cfg.get("task_type").asText());
      Set<String> targets = new HashSet<>();
      cfg.get("target_modules").forEach(t -> targets.add(t.asText()));
      assertEquals(
          Set.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
          targets);
      Set<String> keys;
      try (Safetensors st = Safetensors.open(member.resolve("adapter_model.safetensors"))) {
        keys = Set.copyOf(st.keys());
      }
      assertTrue(keys.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
      for (String k : keys) {
        assertTrue(peftKey.matcher(k).matches(), "not a PEFT name: " + k);
      }
    }
    List<int[]> seqs =
        List.of(new int[] {35, 75, 236, 218, 281, 177, 27, 282, 11}, new int[] {145, 71, 89, 7});
    try (RewardModel a = RewardModel.load(run);
        RewardModel b =
            RewardModel.loadWithAdapters(run.resolve("phase1"), members, ExecConfig.defaults())) {
      float[][] ra = a.score(seqs, 2);
      float[][] rb = b.score(seqs, 2);
      for (int i = 0; i < ra.length; i++) {
        assertEquals(2, ra[i].length);
        for (float v : ra[i]) {
          assertTrue(Float.isFinite(v));
        }
        assertArrayEquals(ra[i], rb[i]);
      }
      assertFalse(ra[0][0] == ra[0][1], "the two members differ after training");
    }
  }

  @Test
  void infoCountsTheFixturesParameters() throws Exception {
    // vocab 300, hidden 64, 2 layers, 4 heads x 24, 2 kv heads, intermediate 144, tied, 4 norms
    long h = 64;
    long perLayer = 4 * h + h * 96 + 2 * h * 48 + 96 * h + 3 * h * 144;
    long trunk = 300 * h + 2 * perLayer + h;
    String out = info("--model", model.toString());
    assertTrue(
        out.contains("parameters: M = " + trunk + " (trunk), L = " + h + " (one head)"), out);
    assertTrue(out.contains("Gemma2Config["), out);
    out = info("--model", run.toString());
    long adapters = 2 * 2 * ((h + 96) + 2 * (h + 48) + (96 + h) + 2 * (h + 144) + (144 + h));
    assertTrue(out.contains("A = " + adapters + " (one member's adapters)"), out);
    assertTrue(out.contains("kind: lora, K = 2"), out);
  }

  private static String info(String... args) {
    PrintStream old = System.out;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
    try {
      String[] all = new String[args.length + 1];
      all[0] = "info";
      System.arraycopy(args, 0, all, 1, args.length);
      Cli.Run r = Cli.rme(all);
      assertEquals(0, r.code(), r.err());
    } finally {
      System.setOut(old);
    }
    return buf.toString(StandardCharsets.UTF_8);
  }
}
