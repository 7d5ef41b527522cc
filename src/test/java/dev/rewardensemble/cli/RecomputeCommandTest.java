package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.config.AvailableMemory;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.Recomputation;
import dev.rewardensemble.config.WeightStorage;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.MemoryPlan;
import dev.rewardensemble.testing.Cli;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code rme train-rm --recompute}: the same loss trace as without, for a single model and for a
 * LoRA ensemble (both phases), and nothing the run stores depends on it.
 */
class RecomputeCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  private Cli.Run train(Path data, Path out, boolean recompute, String... extra) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "train-rm",
                "--model",
                "tf-graphs/tiny-llama.json",
                "--data",
                data.toString(),
                "--out",
                out.toString(),
                "--steps",
                "3",
                "--batch-size",
                "4",
                "--grad-accum",
                "2",
                "--lr",
                "1e-3",
                "--schedule",
                "constant",
                "--warmup-ratio",
                "0",
                "--eval-fraction",
                "0.2",
                "--threads",
                "1",
                "--inter-threads",
                "1"));
    args.addAll(List.of(extra));
    if (recompute) {
      args.add("--recompute");
    }
    return Cli.rme(args.toArray(new String[0]));
  }

  private Path data() throws Exception {
    Path p = tmp.resolve("prefs.jsonl");
    Files.write(
        p, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(40, 64, 8, 16, 3, 5)));
    return p;
  }

  @Test
  void singleModelLossTraceIsTheSame() throws Exception {
    sameTrace();
  }

  @Test
  void loraEnsembleLossTraceIsTheSame() throws Exception {
    sameTrace("--ensemble", "lora", "--k", "3", "--lora-dropout", "0.1");
  }

  private void sameTrace(String... extra) throws Exception {
    Path data = data();
    Path plain = tmp.resolve("plain");
    Path rec = tmp.resolve("recomputed");
    Cli.Run a = train(data, plain, false, extra);
    assertEquals(0, a.code(), a.err());
    Cli.Run b = train(data, rec, true, extra);
    assertEquals(0, b.code(), b.err());
    Map<Path, List<JsonNode>> pm = metrics(plain);
    Map<Path, List<JsonNode>> rm = metrics(rec);
    assertFalse(pm.isEmpty());
    assertEquals(pm.keySet(), rm.keySet());
    int compared = 0;
    for (Path k : pm.keySet()) {
      List<JsonNode> x = pm.get(k);
      List<JsonNode> y = rm.get(k);
      assertEquals(x.size(), y.size(), k.toString());
      for (int i = 0; i < x.size(); i++) {
        compared += compare(x.get(i), y.get(i), k + " row " + i);
      }
    }
    assertTrue(compared >= 4, "compared " + compared + " losses");
    // Nothing stored depends on it: the runs' fingerprints (what --resume checks) are the same.
    for (Path k : runJsons(plain).keySet()) {
      JsonNode fp = JSON.readTree(plain.resolve(k).toFile()).get("fingerprint");
      JsonNode fr = JSON.readTree(rec.resolve(k).toFile()).get("fingerprint");
      assertEquals(fp, fr, k.toString());
    }
  }

  /**
   * A deep model whose activations do not fit unless recomputed: without {@code --recompute} the
   * pre-check refuses it and suggests the flag first; with it the pre-check passes (the weights are
   * then missing: a configuration alone).
   */
  @Test
  void thePreCheckSuggestsRecomputeAndCountsIt() throws Exception {
    Path base = tmp.resolve("deep");
    Files.createDirectories(base);
    Files.writeString(
        base.resolve("config.json"),
        "{\"model_type\": \"llama\", \"architectures\": [\"LlamaForSequenceClassification\"],"
            + " \"vocab_size\": 320, \"hidden_size\": 64, \"intermediate_size\": 160,"
            + " \"num_hidden_layers\": 32, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,"
            + " \"max_position_embeddings\": 512, \"num_labels\": 1}");
    java.util.function.Function<Recomputation, java.util.Optional<MemoryPlan>> plan =
        rc ->
            MemoryCheck.train(
                base,
                EnsembleKind.SINGLE,
                1,
                null,
                8,
                256,
                WeightStorage.AUTO,
                rc,
                Precision.FLOAT32);
    java.util.function.ToLongFunction<Recomputation> planned =
        rc -> plan.apply(rc).orElseThrow().total();
    long plain = planned.applyAsLong(Recomputation.NONE);
    long rec = planned.applyAsLong(Recomputation.ALL);
    assertTrue(rec * 2 < plain, rec + " vs " + plain);
    // room for every block recomputed within auto's share, far from the plain plan
    System.setProperty(AvailableMemory.PROPERTY, Long.toString((long) (rec / 0.85)));
    try {
      Path data = data();
      List<String> args =
          List.of(
              "train-rm",
              "--model",
              base.toString(),
              "--data",
              data.toString(),
              "--out",
              tmp.resolve("run").toString(),
              "--batch-size",
              "8",
              "--max-length",
              "256");
      Cli.Run r = Cli.rme(args.toArray(new String[0]));
      assertEquals(2, r.code(), r.err());
      assertTrue(r.err().contains(" needs about "), r.err());
      // the fewest blocks that fit first, then every block
      assertTrue(r.err().contains("; try --recompute auto (recomputes the lowest "), r.err());
      assertTrue(r.err().contains(", --recompute (activations "), r.err());
      List<String> with = new ArrayList<>(args);
      with.add("--recompute");
      Cli.Run w = Cli.rme(with.toArray(new String[0]));
      assertFalse(w.err().contains(" needs about "), w.err());
      // auto resolves to a number of blocks below 32 that passes the same pre-check
      List<String> auto = new ArrayList<>(args);
      auto.addAll(List.of("--recompute", "auto"));
      Cli.Run a = Cli.rme(auto.toArray(new String[0]));
      assertFalse(a.err().contains(" needs about "), a.err());
      Recomputation resolved = MemoryCheck.autoRecompute(base, plan);
      int n = resolved.blocks();
      assertTrue(n > 0 && n < 32, resolved.id());
      // the fewest within auto's share of the available memory: one fewer is planned above it
      long share = (long) ((long) (rec / 0.85) * MemoryPlan.AUTO_RECOMPUTE_SHARE);
      assertTrue(planned.applyAsLong(resolved) <= share);
      assertTrue(planned.applyAsLong(Recomputation.lowest(n - 1)) > share);
      // one block explicitly does not fit and is refused; a bad value is one line, exit 2
      List<String> fewer = new ArrayList<>(args);
      fewer.addAll(List.of("--recompute", "1"));
      Cli.Run f = Cli.rme(fewer.toArray(new String[0]));
      assertEquals(2, f.code(), f.err());
      assertTrue(f.err().contains(" needs about "), f.err());
      List<String> bad = new ArrayList<>(args);
      bad.addAll(List.of("--recompute", "some"));
      Cli.Run b = Cli.rme(bad.toArray(new String[0]));
      assertEquals(2, b.code(), b.err());
      assertTrue(b.err().contains("--recompute must be all, none, auto or a number"), b.err());
    } finally {
      System.clearProperty(AvailableMemory.PROPERTY);
    }
  }

  /** Compares every loss and gradient norm of two metrics rows; returns how many losses. */
  private static int compare(JsonNode x, JsonNode y, String where) {
    int losses = 0;
    for (Iterator<String> it = x.fieldNames(); it.hasNext(); ) {
      String f = it.next();
      if (f.contains("loss") || f.contains("grad_norm")) {
        double u = x.get(f).asDouble();
        double v = y.get(f).asDouble();
        assertEquals(u, v, 1e-5 * Math.max(1, Math.abs(u)), where + " " + f);
        losses += f.contains("loss") ? 1 : 0;
      }
    }
    return losses;
  }

  private static Map<Path, List<JsonNode>> metrics(Path run) throws Exception {
    Map<Path, List<JsonNode>> out = new TreeMap<>();
    try (Stream<Path> s = Files.walk(run)) {
      for (Path p : s.filter(p -> p.getFileName().toString().equals("metrics.jsonl")).toList()) {
        List<JsonNode> rows = new ArrayList<>();
        for (String line : Files.readAllLines(p)) {
          rows.add(JSON.readTree(line));
        }
        out.put(run.relativize(p), rows);
      }
    }
    return out;
  }

  private static Map<Path, Path> runJsons(Path run) throws Exception {
    Map<Path, Path> out = new TreeMap<>();
    try (Stream<Path> s = Files.walk(run)) {
      s.filter(p -> p.getFileName().toString().equals("run.json"))
          .forEach(p -> out.put(run.relativize(p), p));
    }
    assertFalse(out.isEmpty());
    return out;
  }
}
