package dev.rewardensemble.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * With {@code --peer}, each workload runs on both sides back to back, the side going first
 * alternating; the peer's peak comes from a last call. A stand-in peer script records its calls.
 */
class BenchRunnerPeerTest {
  @TempDir Path tmp;

  private static final String FAKE_PEER =
      String.join(
          "\n",
          "#!/usr/bin/env bash",
          "exec python3 - \"$1\" \"$2\" <<'EOF'",
          "import json, sys",
          "spec = json.load(open(sys.argv[1]))",
          "out = {'info': {}, 'workloads': {}}",
          "if spec.get('peak', True):",
          "    out['peak_matmul_flops'] = 1e9",
          "    print('peak')",
          "for p in spec['presets']:",
          "    for w in p['workloads']:",
          "        names = [p['name'] + '/ensemble-' + k for k in spec['kinds']] if w == 'ensembles'"
              + " else [p['name'] + '/' + w]",
          "        for n in names:",
          "            out['workloads'][n] = {'seconds': 0.5}",
          "        print('ran ' + w)",
          "json.dump(out, open(sys.argv[2], 'w'))",
          "EOF",
          "");

  @Test
  void eachWorkloadRunsOnBothSidesBackToBackAlternatingWhoGoesFirst() throws Exception {
    Path scripts = Files.createDirectories(tmp.resolve("root/scripts"));
    Files.writeString(scripts.resolve("bench-peer.sh"), FAKE_PEER);
    BenchOptions o = new BenchOptions(2, 8, 2, 0, 1, new ExecConfig(1, 1, false), 3);
    List<String> log = new ArrayList<>();
    BenchRunner.Report r =
        BenchRunner.run(
            new BenchRunner.Spec(
                List.of(Path.of("tf-graphs/tiny-llama.json")),
                o,
                true,
                tmp.resolve("root"),
                false,
                64,
                1,
                32,
                tmp.resolve("work"),
                Set.of("score", "generate", "ensembles"),
                List.of("single", "lora"),
                Map.of(),
                false),
            log::add);
    List<String> order = new ArrayList<>();
    for (String line : log) {
      String l = line.trim();
      if (l.startsWith("[peer] ran ")) {
        order.add("peer " + l.substring("[peer] ran ".length()));
      } else if (l.startsWith("[peer] peak")) {
        order.add("peer peak");
      } else if (l.startsWith("tiny-llama/")) {
        order.add("project " + l.substring("tiny-llama/".length()).split("\\s+")[0]);
      } else if (l.startsWith("ensemble lora")) {
        order.add("project ensembles");
      }
    }
    assertEquals(
        List.of(
            "project score",
            "peer score",
            "peer generate",
            "project generate",
            "project ensembles",
            "peer ensembles",
            "peer peak"),
        order,
        String.join("\n", log));
    assertEquals(1e9, r.peerPeakMatmulFlops());
    assertEquals(4, r.workloads().size());
    for (WorkloadResult w : r.workloads()) {
      assertNotNull(w.peer(), w.name());
      // the same work per run in the peer's 0.5 s
      assertEquals(w.project() * w.seconds() / 0.5, w.peer(), 1e-9 * w.peer(), w.name());
    }
    assertTrue(log.stream().anyMatch(l -> l.startsWith("peer: tiny-llama/generate (load")));
  }
}
