package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A reduced {@code rme demo} end to end: every phase runs for real on tiny settings. */
class DemoTest {
  @Test
  void reducedDemoWritesAConsistentReport(@TempDir Path dir) throws Exception {
    // A full-mode run on tiny settings: PPO over 2 seeds with standard errors, as --full does with 5.
    Demo.Settings s = Demo.Settings.tiny(dir.resolve("demo")).asFull();
    assertEquals(2, s.ppoSeeds());
    Demo.Result r = Demo.run(s, msg -> System.err.println(msg));
    assertTrue(Files.isRegularFile(r.report()));
    String md = Files.readString(r.report());
    JsonNode root = new ObjectMapper().readTree(r.results().toFile());
    int methods = Demo.methods(s.k()).size();
    int[] ns = Demo.nsFor(s.pool());
    JsonNode bon = root.get("best_of_n");
    assertEquals(methods * Demo.AGGREGATIONS.size() * ns.length, bon.size());
    Set<String> rows = new HashSet<>();
    for (JsonNode o : bon) {
      rows.add(o.get("method").asText() + "|" + o.get("aggregation").asText() + "|" + o.get("n").asInt());
      double w = o.get("win_mean").asDouble();
      assertTrue(w >= 0 && w <= 1, "win rate in [0,1]: " + o);
      assertTrue(o.get("win_se").isNumber() && o.get("win_se").asDouble() >= 0, "standard error present: " + o);
      assertEquals(s.seeds(), o.get("win_per_seed").size());
      if (o.get("n").asInt() == 1) {
        assertEquals(0.5, w, 1e-9, "Best-of-1 is the SFT policy: win rate 1/2");
      }
    }
    assertEquals(bon.size(), rows.size(), "one row per method, aggregation and n");
    for (Demo.Method m : Demo.methods(s.k())) {
      assertTrue(md.contains("| " + m.name() + " |"), "report has a row for " + m.name());
    }
    assertEquals(methods * Demo.AGGREGATIONS.size(), root.get("reward_models").size());
    for (JsonNode o : root.get("reward_models")) {
      double a = o.get("gold_pair_accuracy_mean").asDouble();
      assertTrue(a >= 0 && a <= 1, o.toString());
    }
    for (JsonNode c : root.get("ppo")) {
      for (JsonNode p : c.get("points")) {
        double w = p.get("winRate").asDouble();
        assertTrue(w >= 0 && w <= 1, p.toString());
        double se = p.get("winRateSe").asDouble();
        assertTrue(se >= 0 && se <= 0.5, "PPO win rate needs a standard error over seeds: " + p);
      }
    }
    assertTrue(root.get("ppo").size() > 0, "PPO ran");
    assertTrue(md.contains("over 2 PPO seeds"), "the report says PPO ran over seeds");
    assertTrue(md.contains("**Q1") && md.contains("**Q2") && md.contains("**Q3"), md);
    for (String png : new String[] {"bon_win_vs_n.png", "bon_gold_proxy_vs_kl.png", "bon_lcb_vs_mean.png",
        "ppo_win_vs_iteration.png", "ppo_gold_proxy_vs_kl.png"}) {
      Path p = r.report().getParent().resolve(png);
      assertTrue(Files.isRegularFile(p) && Files.size(p) > 1000, png);
    }
    for (String csv : new String[] {"bon.csv", "bon_summary.csv", "rm_accuracy.csv", "paired.csv", "ppo.csv"}) {
      assertTrue(Files.isRegularFile(r.report().getParent().resolve(csv)), csv);
    }
  }
}
