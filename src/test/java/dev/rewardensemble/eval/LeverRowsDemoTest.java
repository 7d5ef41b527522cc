package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A tiny demo with lever rows (one short PPO run per reward, one lever row among them): each row
 * trained with its lever, the phase-2 rows on their base's phase 1, the costs measured (not
 * constants) and charged for reused work, and the levers and cost sections in the report, their
 * gains those of the paired analysis.
 */
class LeverRowsDemoTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static Map<String, String> row(List<Map<String, String>> rows, String method) {
    return rows.stream()
        .filter(r -> r.get("method").equals(method))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no row " + method));
  }

  /** Unit {@code u}'s directory: {@code world-<seed>/seed-<s>} (world-major units). */
  private static Path unitDir(DemoSettings s, Path out, int u) {
    return out.resolve("world-" + s.worldSeed(u / s.seeds())).resolve("seed-" + (u % s.seeds()));
  }

  private static JsonNode json(Path file) throws Exception {
    return JSON.readTree(file.toFile());
  }

  @Test
  void leverRowsAreTrainedWithTheirLeverAndCostsAreMeasured(@TempDir Path dir) throws Exception {
    List<DemoLever> levers =
        List.of(
            DemoLever.LORA_DISJOINT,
            DemoLever.LORA_RANKS,
            DemoLever.LORA_PRIOR,
            DemoLever.LINEAR_DISJOINT,
            DemoLever.LINEAR_5);
    DemoSettings s =
        DemoSettings.tiny(dir.resolve("demo")).toBuilder()
            .ppoIterations(1)
            .ppoSeeds(1)
            .levers(levers)
            .ppoLevers(List.of(DemoLever.LORA_PRIOR))
            .build();
    Demo.Result r = Demo.run(s, msg -> System.err.println(msg));
    Path out = r.report().getParent();
    String md = Files.readString(r.report());
    // Lever rows' gains have verdicts and a Holm family of their own, in the report and
    // results.json.
    assertTrue(md.contains("The lever rows' gains, each against its t threshold: `"), md);
    JsonNode families = json(r.results()).get("multiple_comparisons");
    assertEquals("Levers (Best-of-n)", families.get(families.size() - 1).get("question").asText());
    assertTrue(families.get(families.size() - 1).get("tests").size() >= levers.size());

    // Each row trained with its lever: its run's provenance says so, its base's does not.
    for (int unit = 0; unit < s.units(); unit++) {
      Path sd = unitDir(s, out, unit);
      JsonNode lora = json(sd.resolve("rm-lora-2/run.json")).get("provenance");
      assertEquals("shared", lora.get("member_data").asText());
      assertEquals(0.0, lora.get("prior_scale").asDouble());

      JsonNode disjoint = json(sd.resolve("rm-lora-2-disjoint/run.json")).get("provenance");
      assertEquals("disjoint", disjoint.get("member_data").asText());
      JsonNode ranks = json(sd.resolve("rm-lora-2-ranks/run.json")).get("provenance");
      assertEquals("[4,8]", ranks.get("lora_ranks").toString());
      for (int m = 0; m < 2; m++) {
        JsonNode cfg =
            json(sd.resolve("rm-lora-2-ranks/adapters/member-" + m + "/adapter_config.json"));
        assertEquals(4 << m, cfg.get("r").asInt(), "member " + m + "'s adapter rank");
      }
      JsonNode prior = json(sd.resolve("rm-lora-2-prior/run.json")).get("provenance");
      assertEquals(DemoLever.PRIOR_SCALE, prior.get("prior_scale").asDouble());
      JsonNode linDisjoint = json(sd.resolve("rm-linear-2-disjoint/run.json")).get("provenance");
      assertEquals("disjoint", linDisjoint.get("member_data").asText());
      assertEquals(5, json(sd.resolve("rm-linear-5/ensemble.json")).get("k").asInt());

      // The phase-2 rows start from lora-2's phase 1 of the same seed (byte for byte); the prior
      // row, whose prior is in phase 1 too, trains its own.
      Path basePhase1 = sd.resolve("rm-lora-2/phase1/model.safetensors");
      for (String row : List.of("lora-2-disjoint", "lora-2-ranks")) {
        assertEquals(
            -1L,
            Files.mismatch(basePhase1, sd.resolve("rm-" + row + "/phase1/model.safetensors")),
            row + " reuses lora-2's phase 1");
        assertTrue(
            Files.isDirectory(sd.resolve("rm-" + row + "/adapters/member-1")),
            row + " trained its own phase 2");
      }
      assertNotEquals(
          -1L, Files.mismatch(basePhase1, sd.resolve("rm-lora-2-prior/phase1/model.safetensors")));
    }

    // Costs: measured per method, the reused phase 1 charged at its measured seconds.
    List<Map<String, String>> cost = DemoTest.csv(out.resolve("cost.csv"));
    List<DemoMethod> methods = DemoMethod.all(s);
    assertEquals(methods.size(), cost.size());
    for (Map<String, String> c : cost) {
      assertTrue(DemoTest.num(c, "train_seconds") > 0, c.toString());
      assertTrue(DemoTest.num(c, "score_seconds") > 0, c.toString());
      assertEquals(s.units(), Integer.parseInt(c.get("seeds")), c.toString());
    }
    Map<String, String> lora = row(cost, "lora-2");
    assertTrue(DemoTest.num(lora, "phase1_seconds") > 0);
    assertTrue(DemoTest.num(lora, "phase1_seconds") < DemoTest.num(lora, "own_train_seconds"));
    for (String m : List.of("lora-2-disjoint", "lora-2-ranks")) {
      assertEquals(lora.get("phase1_seconds"), row(cost, m).get("reused_train_seconds"), m);
    }
    assertEquals(0.0, DemoTest.num(row(cost, "lora-2-prior"), "reused_train_seconds"));
    assertEquals(
        lora.get("own_train_seconds"),
        row(cost, "warm-lora-2").get("reused_train_seconds"),
        "a WARM model is charged its source ensemble's training");
    Map<String, String> ind = row(cost, "independent-2");
    assertEquals(
        DemoTest.num(lora, "train_seconds") / DemoTest.num(ind, "train_seconds"),
        DemoTest.num(lora, "train_fraction"),
        1e-3);

    // Inference memory is the loaded scoring model's variable bytes: re-measured here, and for
    // models without adapters equal to 4 bytes per parameter the model holds.
    try (RewardModel single =
            RewardModel.load(
                unitDir(s, out, s.units() - 1).resolve("rm-single"), ExecConfig.defaults());
        RewardModel ind2 =
            RewardModel.load(
                unitDir(s, out, s.units() - 1).resolve("rm-independent-2"), ExecConfig.defaults());
        RewardModel lin5 =
            RewardModel.load(
                unitDir(s, out, s.units() - 1).resolve("rm-linear-5"), ExecConfig.defaults());
        RewardModel ranks =
            RewardModel.load(
                unitDir(s, out, s.units() - 1).resolve("rm-lora-2-ranks"), ExecConfig.defaults())) {
      long sb = single.variableBytes();
      assertEquals(sb, Long.parseLong(row(cost, "single").get("variable_bytes")));
      assertEquals(4 * single.parameterCounts().orElseThrow().total(), sb);
      assertEquals(4 * ind2.parameterCounts().orElseThrow().total(), ind2.variableBytes());
      assertEquals(ind2.variableBytes(), Long.parseLong(ind.get("variable_bytes")));
      assertEquals(
          lin5.variableBytes(), Long.parseLong(row(cost, "linear-5").get("variable_bytes")));
      assertEquals(
          ranks.variableBytes(), Long.parseLong(row(cost, "lora-2-ranks").get("variable_bytes")));
      // Two trunks against one, four extra heads, adapters on top of one trunk.
      assertTrue(ind2.variableBytes() > 1.9 * sb && ind2.variableBytes() < 2.1 * sb);
      assertTrue(lin5.variableBytes() > sb && lin5.variableBytes() < 1.1 * sb);
      assertTrue(ranks.variableBytes() > sb && ranks.variableBytes() < 1.9 * sb);
    }

    // The levers' gains are the paired analysis's.
    List<Map<String, String>> paired = DemoTest.csv(out.resolve("paired.csv"));
    List<Map<String, String>> lev = DemoTest.csv(out.resolve("levers.csv"));
    assertEquals(3 + levers.size(), lev.size(), "independent, linear and lora rows, then levers");
    for (DemoLever l : levers) {
      String name = l.rowName(s.k());
      Map<String, String> lr = row(lev, name);
      assertEquals(l.id(), lr.get("lever"));
      for (String[] vs :
          new String[][] {{"single", "vs_single"}, {"own members alone", "vs_own_members"}}) {
        Map<String, String> p =
            paired.stream()
                .filter(
                    x ->
                        x.get("method").equals(name)
                            && x.get("aggregation").equals("mean")
                            && x.get("versus").equals(vs[0]))
                .findFirst()
                .orElseThrow();
        assertEquals(
            DemoTest.num(p, "win_diff_mean"), DemoTest.num(lr, vs[1] + "_mean"), 1e-6, name);
        assertEquals(DemoTest.num(p, "win_diff_se"), DemoTest.num(lr, vs[1] + "_se"), 1e-6, name);
      }
    }

    // The report's sections.
    String lv = DemoTest.section(md, "## Diversity levers (issue #19)");
    for (DemoLever l : levers) {
      assertTrue(lv.contains("\n| " + l.rowName(s.k()) + " |"), lv);
    }
    assertTrue(lv.contains("\n| independent-2 |"), lv);
    assertTrue(lv.contains("reused (lora-2)"), lv);
    String cs = DemoTest.section(md, "## Cost (measured)");
    for (DemoMethod m : methods) {
      assertTrue(cs.contains("\n| " + m.name() + " |"), m.name() + "\n" + cs);
    }
    assertTrue(cs.contains("**Cost statement.** independent-2 gains"), cs);
    assertTrue(cs.contains("**Goal**"), cs);
    // PPO: one short run per reward, the prior row among them (mean only), no other lever row.
    List<Map<String, String>> ppo = DemoTest.csv(out.resolve("ppo.csv"));
    assertEquals(
        List.of("mean"),
        ppo.stream()
            .filter(p -> p.get("method").equals("lora-2-prior"))
            .map(p -> p.get("aggregation"))
            .distinct()
            .toList());
    assertTrue(ppo.stream().noneMatch(p -> p.get("method").equals("lora-2-disjoint")));
    assertTrue(cs.contains("the shared-trunk ensembles run in PPO: linear-2 "), cs);
    assertTrue(cs.contains(", lora-2-prior "), cs);
    assertTrue(cs.contains("Not run in PPO, so judged on Best-of-n alone: "), cs);
    assertTrue(
        lv.lines().anyMatch(l -> l.startsWith("| lora-2-disjoint |") && l.endsWith("| not run |")),
        lv);
    assertTrue(
        lv.lines().anyMatch(l -> l.startsWith("| lora-2-prior |") && !l.endsWith("| not run |")),
        lv);
    assertTrue(md.contains("and the lever row lora-2-prior (mean)"), md);
    assertTrue(md.contains("- lever rows (issue #19's diversity levers"), md);
    assertTrue(md.contains("| train RM lora-2-disjoint | "), "the Time table has the rows");
    JsonNode root = json(r.results());
    assertEquals(lev.size(), root.get("levers").size());
    assertEquals(cost.size(), root.get("cost").size());
    assertTrue(root.get("cost_statement").asText().startsWith("**Cost statement.**"));
  }
}
