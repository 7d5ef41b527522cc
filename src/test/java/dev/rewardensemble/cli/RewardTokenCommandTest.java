package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.serving.SavedModels;
import dev.rewardensemble.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --reward-token} through the CLI on the pad = eos fixture: the default is transformers'
 * reading, the other rule persists with a trained run and its SavedModel, and contradicting a
 * stored rule or naming an unknown one is refused with exit 2.
 */
class RewardTokenCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  /** The fixture's sequences (each ending with EOS = pad) as score rows. */
  private Path scoreRows(JsonNode e) throws Exception {
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    List<String> rows = new ArrayList<>();
    for (int i = 0; i < ids.length; i++) {
      int len = Arrays.stream(mask[i]).sum();
      rows.add("{\"input_ids\": " + JSON.writeValueAsString(Arrays.copyOf(ids[i], len)) + "}");
    }
    Path p = tmp.resolve("rows.jsonl");
    Files.write(p, rows);
    return p;
  }

  private double[] score(Path model, Path rows, String... extra) throws Exception {
    Path out = tmp.resolve("scores-" + System.nanoTime() + ".jsonl");
    List<String> args =
        new ArrayList<>(
            List.of(
                "score",
                "--model",
                model.toString(),
                "--data",
                rows.toString(),
                "--out",
                out.toString()));
    args.addAll(List.of(extra));
    var r = ScoreCommandTest.rme(args.toArray(String[]::new));
    assertEquals(0, r.code(), r.err());
    List<String> lines = Files.readAllLines(out);
    double[] v = new double[lines.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = JSON.readTree(lines.get(i)).get("reward").asDouble();
    }
    return v;
  }

  private static void assertRewards(float[] want, double[] got, String what) {
    assertEquals(want.length, got.length, what);
    for (int i = 0; i < want.length; i++) {
      assertEquals(want[i], got[i], 1e-4 * Math.max(1, Math.abs(want[i])), what + " row " + i);
    }
  }

  @Test
  void scoreReadsAsTransformersByDefaultAndAtTheEosWhenAsked() throws Exception {
    Path dir = Fixtures.dir("llama-padeos-seqcls");
    JsonNode e = Fixtures.expected("llama-padeos-seqcls");
    Path rows = scoreRows(e);
    assertRewards(Fixtures.floats(e.get("rewards")), score(dir, rows), "default");
    assertRewards(
        Fixtures.floats(e.get("rewards")),
        score(dir, rows, "--reward-token", "last-non-pad"),
        "last-non-pad");
    assertRewards(
        Fixtures.floats(e.get("rewards_last_attended")),
        score(dir, rows, "--reward-token", "last-attended"),
        "last-attended");
  }

  @Test
  void aRunTrainedAtTheLastAttendedTokenIsScoredThereWithoutTheOption() throws Exception {
    Path dir = Fixtures.dir("llama-padeos-seqcls");
    JsonNode e = Fixtures.expected("llama-padeos-seqcls");
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    List<String> pairs = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      int a = i % ids.length;
      int b = (i + 1) % ids.length;
      pairs.add(
          "{\"chosen_ids\": "
              + JSON.writeValueAsString(Arrays.copyOf(ids[a], Arrays.stream(mask[a]).sum()))
              + ", \"rejected_ids\": "
              + JSON.writeValueAsString(Arrays.copyOf(ids[b], Arrays.stream(mask[b]).sum()))
              + "}");
    }
    Path data = tmp.resolve("pairs.jsonl");
    Files.write(data, pairs);
    Path run = tmp.resolve("run");
    // A learning rate so small that the weights stay the fixture's (to 1e-4 in the rewards).
    var t =
        ScoreCommandTest.rme(
            "train-rm",
            "--model",
            dir.toString(),
            "--data",
            data.toString(),
            "--out",
            run.toString(),
            "--steps",
            "1",
            "--batch-size",
            "2",
            "--grad-accum",
            "1",
            "--lr",
            "1e-9",
            "--eval-fraction",
            "0",
            "--reward-token",
            "last-attended");
    assertEquals(0, t.code(), t.err());
    JsonNode manifest = JSON.readTree(run.resolve("ensemble.json").toFile());
    assertEquals("last-attended", manifest.path("reward_token").asText());
    JsonNode runJson = JSON.readTree(run.resolve("run.json").toFile());
    assertEquals("last-attended", runJson.path("provenance").path("reward_token").asText());

    Path rows = scoreRows(e);
    float[] atEos = Fixtures.floats(e.get("rewards_last_attended"));
    assertRewards(atEos, score(run, rows), "run scored without --reward-token");

    var refused =
        ScoreCommandTest.rme(
            "score",
            "--model",
            run.toString(),
            "--data",
            rows.toString(),
            "--reward-token",
            "last-non-pad");
    assertEquals(2, refused.code(), refused.err());
    assertTrue(
        refused.err().contains("ensemble.json") && refused.err().contains("last-attended"),
        refused.err());

    // The SavedModel export bakes the rule into its graph and records it.
    Path root = tmp.resolve("savedmodels");
    var x =
        ScoreCommandTest.rme(
            "export", "--model", run.toString(), "--name", "rm", "--root", root.toString());
    assertEquals(0, x.code(), x.err());
    Path saved = root.resolve("rm").resolve("1");
    JsonNode meta = JSON.readTree(saved.resolve(SavedModels.ASSET).toFile());
    assertEquals("last-attended", meta.path("reward_token").asText());
    assertRewards(atEos, score(saved, rows), "SavedModel");
    var refusedSaved =
        ScoreCommandTest.rme(
            "score",
            "--model",
            saved.toString(),
            "--data",
            rows.toString(),
            "--reward-token",
            "last-non-pad");
    assertEquals(2, refusedSaved.code(), refusedSaved.err());
    assertTrue(refusedSaved.err().contains("reward_token"), refusedSaved.err());
  }

  @Test
  void anUnknownRuleIsRefusedNamingIt() throws Exception {
    Path dir = Fixtures.dir("llama-padeos-seqcls");
    Path rows = scoreRows(Fixtures.expected("llama-padeos-seqcls"));
    for (String cmd : List.of("score", "train-rm")) {
      var r =
          cmd.equals("score")
              ? ScoreCommandTest.rme(
                  "score",
                  "--model",
                  dir.toString(),
                  "--data",
                  rows.toString(),
                  "--reward-token",
                  "eos")
              : ScoreCommandTest.rme(
                  "train-rm",
                  "--model",
                  dir.toString(),
                  "--data",
                  rows.toString(),
                  "--out",
                  tmp.resolve("never").toString(),
                  "--reward-token",
                  "eos");
      assertEquals(2, r.code(), cmd + ": " + r.err());
      assertTrue(
          r.err().startsWith("rme: error: --reward-token: reward token 'eos' is not one of"),
          r.err());
      assertTrue(r.err().contains("last-non-pad, last-attended"), r.err());
    }
    assertTrue(!Files.exists(tmp.resolve("never").resolve("ensemble.json")));
  }
}
