package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.data.PreferenceData;
import dev.rewardensemble.data.PreferenceFormat;
import dev.rewardensemble.data.PreferenceReader;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.Tokenizer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PreferenceBuilderTest {
  /** Demonstration-like samples: 8 per training prompt of 300 prompts, with duplicates and ties. */
  static Map<String, List<String>> samples(World w) {
    SplittableRandom rng = new SplittableRandom(4);
    Map<String, List<String>> m = new LinkedHashMap<>();
    List<Task> tasks = w.tasks().train();
    for (int i = 0; i < 300; i++) {
      Task t = tasks.get(rng.nextInt(tasks.size()));
      List<String> rs = new java.util.ArrayList<>();
      for (int s = 0; s < 8; s++) {
        rs.add(w.demonstrations().respond(t, rng));
      }
      m.put(t.instruction(), rs);
    }
    return m;
  }

  @Test
  void flipRateIsHonouredAndNoIdenticalOrTiedPairs() {
    World w = World.create(2);
    GoldJudge judge = w.judge();
    Map<String, List<String>> s = samples(w);
    for (double rate : new double[] {0.0, 0.1, 0.25}) {
      PreferenceBuilder.Result r = PreferenceBuilder.buildFromTexts(s, judge, rate, 4, 9);
      assertTrue(r.rows().size() > 800, "rows " + r.rows().size());
      assertTrue(
          r.identical() > 0 && r.tied() > 0,
          "the samples do contain identical and tied pairs: " + r);
      int flipped = 0;
      for (PreferenceBuilder.Row row : r.rows()) {
        assertNotEquals(row.output1(), row.output2());
        double g1 = judge.score(row.instruction(), row.output1());
        double g2 = judge.score(row.instruction(), row.output2());
        assertEquals(g1, row.gold1(), 1e-12);
        assertNotEquals(g1, g2, "tied pair kept: " + row);
        int gold = g1 > g2 ? 1 : 2;
        assertEquals(row.flipped(), row.preference() != gold);
        flipped += row.flipped() ? 1 : 0;
      }
      assertEquals(r.flipped(), flipped);
      double sd = Math.sqrt(rate * (1 - rate) / r.rows().size());
      assertEquals(rate, r.flipFraction(), 4 * sd + 1e-9, "flip rate " + rate);
      assertTrue(
          r.rows().stream()
                  .filter(x -> x.instruction().equals(r.rows().get(0).instruction()))
                  .count()
              <= 4);
    }
  }

  @Test
  void fromPolicySamplesEachPromptAndKeepsItsEndedFlags() {
    World w = World.create(2);
    List<Task> prompts = w.tasks().train().subList(0, 50);
    List<Integer> calls = new java.util.ArrayList<>();
    PreferenceBuilder.ResponseSampler policy =
        (instructions, seed) -> {
          calls.add(instructions.size());
          SplittableRandom rng = new SplittableRandom(seed);
          return instructions.stream()
              .map(
                  i ->
                      new PreferenceBuilder.Response(
                          w.demonstrations().respond(Task.parse(i), rng), rng.nextDouble() < 0.8))
              .toList();
        };
    PreferenceBuilder.Result r =
        PreferenceBuilder.fromPolicy(policy, prompts, 4, w.judge(), 0.0, 6, 3);
    assertEquals(List.of(200), calls);
    assertTrue(r.rows().size() > 50);
    for (PreferenceBuilder.Row row : r.rows()) {
      // Gold scores may include the missing-EOS penalty, so they need not match an ended re-score.
      assertTrue(row.gold1() != row.gold2());
      assertEquals(row.gold1() > row.gold2() ? 1 : 2, row.preference());
    }
  }

  @Test
  void writtenFileIsReadByTheProjectsPreferenceReader(@TempDir Path dir) throws Exception {
    World w = World.create(2);
    PreferenceBuilder.Result r = PreferenceBuilder.buildFromTexts(samples(w), w.judge(), 0.1, 2, 1);
    Path file = dir.resolve("prefs.json");
    PreferenceBuilder.writeAlpacaFarm(r.rows(), file);
    World.writeTokenizer(dir.resolve("tokenizer.json"));
    try (Tokenizer tok = Tokenizer.load(dir.resolve("tokenizer.json"))) {
      PreferenceReader reader =
          PreferenceReader.builder()
              .tokenizer(tok)
              .template(PromptTemplate.RAW)
              .eosId(OptionalInt.of(CharVocabulary.EOS))
              .format(PreferenceFormat.ALPACA_FARM)
              .build();
      PreferenceData data = reader.read(file);
      assertEquals(r.rows().size(), data.pairs().size());
      PreferenceBuilder.Row row0 = r.rows().get(0);
      String chosen = row0.preference() == 1 ? row0.output1() : row0.output2();
      int[] want = World.sequence(row0.instruction(), chosen);
      // The reader encodes prompt + response + EOS without BOS.
      assertEquals(
          java.util.Arrays.toString(java.util.Arrays.copyOfRange(want, 1, want.length)),
          java.util.Arrays.toString(data.pairs().get(0).chosen()));
    }
  }
}
