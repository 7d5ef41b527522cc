package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.data.PreferencePair;
import dev.rewardensemble.data.Split;
import dev.rewardensemble.data.Splits;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.testing.Cli;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** rme train-rm's diversity levers: --member-data, --prior-scale, more members. */
class DiversityLeversCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path tmp;
  static Path data;
  static List<PreferencePair> pairs;

  @BeforeAll
  static void data() throws Exception {
    data = tmp.resolve("syn.jsonl");
    pairs = SyntheticPreferences.counting(240, 64, 8, 16, 3, 11);
    Files.write(data, SyntheticPreferences.toJsonl(pairs));
  }

  static Cli.Run train(Path out, String... extra) {
    List<String> a =
        new ArrayList<>(
            List.of(
                "train-rm",
                "--model",
                "tf-graphs/tiny-llama.json",
                "--data",
                data.toString(),
                "--out",
                out.toString(),
                "--epochs",
                "1",
                "--batch-size",
                "16",
                "--grad-accum",
                "1",
                "--lr",
                "1e-3",
                "--lora-lr",
                "1e-3",
                "--eval-fraction",
                "0.25",
                "--lora-rank",
                "4",
                "--lora-alpha",
                "8"));
    if (List.of(extra).contains("--lora-rank")) {
      int at = a.indexOf("--lora-rank");
      a.remove(at + 1);
      a.remove(at);
    }
    a.addAll(List.of(extra));
    return Cli.rme(a.toArray(String[]::new));
  }

  /** Mean chosen-minus-rejected reward of each member over the run's held-out pairs. */
  static double[] heldOutMargins(Path run, int k) throws Exception {
    Split<PreferencePair> split = Splits.split(pairs, 0.25, 42);
    List<int[]> c = new ArrayList<>();
    List<int[]> r = new ArrayList<>();
    split
        .eval()
        .forEach(
            p -> {
              c.add(p.chosen());
              r.add(p.rejected());
            });
    try (RewardModel rm = RewardModel.load(run)) {
      float[][] sc = rm.score(c, 16);
      float[][] sr = rm.score(r, 16);
      double[] m = new double[k];
      for (int i = 0; i < sc.length; i++) {
        for (int h = 0; h < k; h++) {
          m[h] += (sc[i][h] - sr[i][h]) / sc.length;
        }
      }
      return m;
    }
  }

  static double[] doubles(JsonNode a) {
    double[] d = new double[a.size()];
    for (int i = 0; i < d.length; i++) {
      d[i] = a.get(i).asDouble();
    }
    return d;
  }

  static void assertClose(double[] want, double[] got, double tol, String what) {
    assertEquals(want.length, got.length, what);
    for (int i = 0; i < want.length; i++) {
      assertEquals(
          want[i],
          got[i],
          tol,
          what + ": " + Arrays.toString(want) + " vs " + Arrays.toString(got));
    }
  }

  /**
   * A linear ensemble trained with a prior: the saved model (prior folded into its heads) scores
   * the held-out pairs with the margins the training graph (trained head + beta * prior) measured,
   * and its heads are the trained heads' values plus beta times the seeded prior, not the trained
   * part alone.
   */
  @Test
  void linearPriorIsFoldedIntoTheSavedHeads() throws Exception {
    Path out = tmp.resolve("linear-prior");
    var r =
        train(out, "--ensemble", "linear", "--k", "3", "--prior-scale", "3", "--save-every", "5");
    assertEquals(0, r.code(), r.err());
    JsonNode run = JSON.readTree(out.resolve("run.json").toFile());
    double[] trained = doubles(run.get("final_eval").get("margin_per_head"));
    assertClose(trained, heldOutMargins(out, 3), 2e-5, "held-out margins");
    assertEquals(3.0, run.get("provenance").get("prior_scale").asDouble());
    assertEquals(3.0, run.get("fingerprint").get("prior_scale").asDouble());
    // The checkpoint holds the trained part W; the saved head is W + 3 P (bit for bit at step 5,
    // compared here through the prior's size: the saved head moved away from W by the prior).
    FloatTensor saved =
        dev.rewardensemble.io.LazyWeights.ofFile(out.resolve("model.safetensors"))
            .get(RewardHeads.KEY);
    FloatTensor prior = RewardHeads.prior(3, 64, 42, 3.0);
    FloatTensor w = RewardHeads.unfold(saved, prior);
    double moved = 0;
    for (int i = 0; i < w.data().length; i++) {
      moved = Math.max(moved, Math.abs(saved.data()[i] - w.data()[i]));
    }
    assertTrue(moved > 0.05, "the prior is in the saved heads: " + moved);
  }

  /**
   * A LoRA ensemble of K = 5 with disjoint phase-2 data and a prior: trains, records its levers,
   * and its saved adapters' heads (prior folded) reproduce phase 2's held-out margins.
   */
  @Test
  void loraFiveMembersDisjointWithPrior() throws Exception {
    Path out = tmp.resolve("lora5");
    var r =
        train(
            out,
            "--ensemble",
            "lora",
            "--k",
            "5",
            "--member-data",
            "disjoint",
            "--prior-scale",
            "2");
    assertEquals(0, r.code(), r.err());
    JsonNode prov = JSON.readTree(out.resolve("ensemble.json").toFile()).get("provenance");
    assertEquals("disjoint", prov.get("member_data").asText());
    assertEquals(2.0, prov.get("prior_scale").asDouble());
    JsonNode phase2 = JSON.readTree(out.resolve("phase2").resolve("run.json").toFile());
    assertEquals("disjoint", phase2.get("fingerprint").get("member_data").asText());
    double[] trained = doubles(phase2.get("final_eval").get("margin_per_head"));
    assertClose(trained, heldOutMargins(out, 5), 2e-5, "held-out margins");
    // Phase 1 trained its heads without per-member data: no member_data in its fingerprint.
    JsonNode phase1 = JSON.readTree(out.resolve("phase1").resolve("run.json").toFile());
    assertTrue(!phase1.get("fingerprint").has("member_data"));
    assertEquals(2.0, phase1.get("fingerprint").get("prior_scale").asDouble());
    // Five adapters in the PEFT layout.
    for (int m = 0; m < 5; m++) {
      assertTrue(
          Files.isRegularFile(out.resolve("adapters/member-" + m + "/adapter_config.json")),
          "member " + m);
    }
    // K = 8 stacks: the five adapters and three of them again score, member by member, what each
    // adapter scores alone.
    List<Path> eight = new ArrayList<>();
    for (int m : new int[] {0, 1, 2, 3, 4, 0, 1, 2}) {
      eight.add(out.resolve("adapters/member-" + m));
    }
    List<int[]> seqs =
        List.of(pairs.get(0).chosen(), pairs.get(1).rejected(), pairs.get(2).chosen());
    var exec = dev.rewardensemble.config.ExecConfig.defaults();
    try (RewardModel all = RewardModel.load(out.resolve("phase1"), eight, exec)) {
      float[][] s8 = all.score(seqs, 4);
      for (int j = 0; j < 8; j++) {
        try (RewardModel one =
            RewardModel.load(out.resolve("phase1"), List.of(eight.get(j)), exec)) {
          float[][] s1 = one.score(seqs, 4);
          for (int i = 0; i < seqs.size(); i++) {
            assertEquals(s1[i][0], s8[i][j], 1e-5, "member " + j + " sequence " + i);
          }
        }
      }
      assertTrue(Math.abs(s8[0][0] - s8[0][1]) > 1e-4, "members differ");
    }
  }

  /** Disjoint parts change what the heads learn: the same run with shared data differs. */
  @Test
  void disjointLinearHeadsDifferFromShared() throws Exception {
    Path shared = tmp.resolve("linear-shared");
    Path disjoint = tmp.resolve("linear-disjoint");
    assertEquals(0, train(shared, "--ensemble", "linear", "--k", "3").code());
    var r = train(disjoint, "--ensemble", "linear", "--k", "3", "--member-data", "disjoint");
    assertEquals(0, r.code(), r.err());
    Map<String, FloatTensor> a =
        dev.rewardensemble.io.LazyWeights.ofFile(shared.resolve("model.safetensors"));
    Map<String, FloatTensor> b =
        dev.rewardensemble.io.LazyWeights.ofFile(disjoint.resolve("model.safetensors"));
    assertTrue(!Arrays.equals(a.get(RewardHeads.KEY).data(), b.get(RewardHeads.KEY).data()));
    // Resuming with other member data is refused, naming the setting.
    var again =
        train(
            disjoint, "--ensemble", "linear", "--k", "3", "--member-data", "bootstrap", "--resume");
    assertEquals(2, again.code(), again.err());
  }

  @Test
  void badLeverValuesAreOneLineErrors() {
    String[][] bad = {
      {"--ensemble", "linear", "--member-data", "bagging"},
      {"--ensemble", "independent", "--member-data", "disjoint"},
      {"--ensemble", "linear", "--bootstrap", "--member-data", "disjoint"},
      {"--ensemble", "linear", "--prior-scale", "-1"},
      {"--ensemble", "linear", "--diversity-weight", "0.1"},
      {"--ensemble", "lora", "--k", "1", "--diversity-weight", "0.1"},
      {"--ensemble", "lora", "--diversity-weight", "nan"},
    };
    String[] names = {
      "--member-data",
      "--member-data",
      "--bootstrap",
      "--prior-scale",
      "--diversity-weight",
      "--diversity-weight",
      "--diversity-weight"
    };
    for (int i = 0; i < bad.length; i++) {
      Path out = tmp.resolve("bad-" + i);
      var r = train(out, bad[i]);
      assertEquals(2, r.code(), Arrays.toString(bad[i]) + ": " + r.err());
      String[] lines = r.err().strip().split("\n");
      assertEquals(1, lines.length, r.err());
      assertTrue(
          lines[0].startsWith("rme: error: ") && lines[0].contains(names[i]),
          Arrays.toString(bad[i]) + ": " + r.err());
      assertTrue(!Files.exists(out.resolve("run.json")), "nothing written for " + out);
    }
  }

  /** Each module's lora_A of every member, flattened: module key to [K][in * r]. */
  static Map<String, float[][]> adaptersA(Path run, int k) throws Exception {
    Map<String, float[][]> out = new java.util.TreeMap<>();
    for (int m = 0; m < k; m++) {
      Map<String, FloatTensor> w =
          dev.rewardensemble.io.LazyWeights.ofFile(
              run.resolve("adapters/member-" + m + "/adapter_model.safetensors"));
      for (String key : w.keySet()) {
        if (key.contains("lora_A")) {
          out.computeIfAbsent(key, x -> new float[k][])[m] = w.get(key).data();
        }
      }
    }
    return out;
  }

  /** Mean |cosine| between two members' lora_A, over modules and member pairs. */
  static double meanAbsCosine(Map<String, float[][]> a) {
    double sum = 0;
    int n = 0;
    for (float[][] rows : a.values()) {
      for (int i = 0; i < rows.length; i++) {
        for (int j = i + 1; j < rows.length; j++) {
          double dot = 0;
          double ni = 0;
          double nj = 0;
          for (int d = 0; d < rows[i].length; d++) {
            dot += (double) rows[i][d] * rows[j][d];
            ni += (double) rows[i][d] * rows[i][d];
            nj += (double) rows[j][d] * rows[j][d];
          }
          sum += Math.abs(dot / Math.sqrt(ni * nj));
          n++;
        }
      }
    }
    return sum / n;
  }

  /**
   * --diversity-weight: 0 trains exactly what no option trains (bit for bit); a positive weight
   * makes the members' adapters less alike (lower mean |cosine| between members' lora_A) than the
   * same run without it.
   */
  @Test
  void diversityRegulariserPushesAdaptersApart() throws Exception {
    String[] common = {
      "--ensemble", "lora", "--k", "3", "--steps", "16", "--phase1-fraction", "0.3"
    };
    Path base = tmp.resolve("div-none");
    Path zero = tmp.resolve("div-0");
    Path div = tmp.resolve("div-1");
    assertEquals(0, train(base, common).code());
    List<String> z = new ArrayList<>(List.of(common));
    z.addAll(List.of("--diversity-weight", "0"));
    assertEquals(0, train(zero, z.toArray(String[]::new)).code());
    List<String> d = new ArrayList<>(List.of(common));
    d.addAll(List.of("--diversity-weight", "1"));
    var r = train(div, d.toArray(String[]::new));
    assertEquals(0, r.code(), r.err());
    Map<String, float[][]> a0 = adaptersA(base, 3);
    Map<String, float[][]> az = adaptersA(zero, 3);
    for (String key : a0.keySet()) {
      for (int m = 0; m < 3; m++) {
        assertTrue(Arrays.equals(a0.get(key)[m], az.get(key)[m]), key + " member " + m);
      }
    }
    double cos0 = meanAbsCosine(a0);
    double cos1 = meanAbsCosine(adaptersA(div, 3));
    System.err.printf("mean |cos| of members' lora_A: lambda 0 %.5f, lambda 1 %.5f%n", cos0, cos1);
    assertTrue(cos1 < 0.8 * cos0, "lambda 1: " + cos1 + ", lambda 0: " + cos0);
    JsonNode phase2 = JSON.readTree(div.resolve("phase2").resolve("run.json").toFile());
    assertEquals(1.0, phase2.get("fingerprint").get("diversity_weight").asDouble());
  }

  /**
   * --lora-rank 2,4,8: each member is saved as a PEFT adapter of its own rank (adapter_config.json
   * r, lora_A [r, in], lora_B [out, r]) with the common alpha, and the saved ensemble, restacked at
   * rank 8, scores the held-out pairs with the margins phase 2 measured in its padded, masked
   * graph.
   */
  @Test
  void perMemberLoraRanksAreSavedAsThemselves() throws Exception {
    Path out = tmp.resolve("lora-ranks");
    var r = train(out, "--ensemble", "lora", "--k", "3", "--lora-rank", "2,4,8", "--steps", "10");
    assertEquals(0, r.code(), r.err());
    int[] ranks = {2, 4, 8};
    for (int m = 0; m < 3; m++) {
      Path dir = out.resolve("adapters/member-" + m);
      JsonNode cfg = JSON.readTree(dir.resolve("adapter_config.json").toFile());
      assertEquals(ranks[m], cfg.get("r").asInt(), "member " + m);
      assertEquals(8.0, cfg.get("lora_alpha").asDouble(), "member " + m);
      Map<String, FloatTensor> w =
          dev.rewardensemble.io.LazyWeights.ofFile(dir.resolve("adapter_model.safetensors"));
      int seen = 0;
      for (String key : w.keySet()) {
        long[] shape = w.get(key).shape();
        if (key.contains("lora_A")) {
          assertEquals(ranks[m], shape[0], key);
          seen++;
        } else if (key.contains("lora_B")) {
          assertEquals(ranks[m], shape[1], key);
        }
      }
      assertTrue(seen > 0);
    }
    JsonNode phase2 = JSON.readTree(out.resolve("phase2").resolve("run.json").toFile());
    assertEquals("[2,4,8]", phase2.get("fingerprint").get("lora_ranks").toString());
    double[] trained = doubles(phase2.get("final_eval").get("margin_per_head"));
    assertClose(trained, heldOutMargins(out, 3), 2e-5, "held-out margins");
    // A count that is not K is one clear error.
    var bad =
        train(tmp.resolve("ranks-bad"), "--ensemble", "lora", "--k", "3", "--lora-rank", "4,8");
    assertEquals(2, bad.code(), bad.err());
    assertEquals(
        "rme: error: --lora-rank gives 2 ranks for 3 members (--k): give one rank, or one per member",
        bad.err().strip());
  }
}
