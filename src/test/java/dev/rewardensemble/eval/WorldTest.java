package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.data.Tokenizer;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.OptionalInt;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WorldTest {
  @Test
  void taskAnswers() {
    assertEquals("68", Task.add(23, 45).answer());
    assertEquals("0379", Task.sort("3970").answer());
    assertEquals("tac", Task.reverse("cat").answer());
    assertEquals("3", Task.count('a', "banana").answer());
    assertEquals("0", Task.count('z', "banana").answer());
    assertEquals("Paris", Task.capital("France").answer());
    for (Task.Kind k : Task.Kind.values()) {
      for (Task t : TaskSets.pool(k)) {
        assertEquals(t, Task.parse(t.instruction()), "parse of " + t);
        assertTrue(t.instruction().endsWith("?"));
        assertTrue(CharVocabulary.covers(t.instruction() + t.answer()), t.toString());
      }
    }
  }

  @Test
  void evalPromptsAreHeldOutExceptTheCapitalTable() {
    TaskSets sets = World.create(3).tasks();
    Set<String> train = new HashSet<>();
    sets.train().forEach(t -> train.add(t.instruction()));
    for (Task t : sets.eval()) {
      if (t.kind() == Task.Kind.CAPITAL) {
        assertTrue(train.contains(t.instruction()), "capital facts are shared: " + t);
      } else {
        assertTrue(!train.contains(t.instruction()), "held-out prompt in training: " + t);
      }
    }
    assertEquals(sets.eval(Task.Kind.CAPITAL), sets.overlap());
    assertEquals(World.EVAL_PER_KIND, sets.eval(Task.Kind.ADD).size());
    assertEquals(World.EVAL_PER_KIND, sets.eval(Task.Kind.SORT).size());
    assertEquals(World.EVAL_PER_KIND, sets.eval(Task.Kind.COUNT).size());
    assertEquals(17, sets.eval(Task.Kind.REVERSE).size()); // a quarter of 70 words
    assertEquals(24, sets.eval(Task.Kind.CAPITAL).size());
    // Reverse words held out from reverse are not reversed in training either.
    Set<String> heldWords = new HashSet<>();
    sets.eval(Task.Kind.REVERSE).forEach(t -> heldWords.add(t.answer()));
    sets.train(Task.Kind.REVERSE).forEach(t -> assertTrue(!heldWords.contains(t.answer())));
  }

  @Test
  void splitIsDeterministicInTheSeed() {
    assertEquals(World.create(5).tasks().eval(), World.create(5).tasks().eval());
    assertNotEquals(World.create(5).tasks().eval(), World.create(6).tasks().eval());
    assertEquals(World.create(5).demonstrations(50), World.create(5).demonstrations(50));
  }

  @Test
  void demonstrationsCarryTheShortcutAndRepetitions() {
    World w = World.create(1);
    GoldJudge judge = w.judge();
    List<Demonstrations.Demonstration> demos = w.demonstrations(4000);
    int polite = 0, politeRight = 0, other = 0, otherRight = 0, repeated = 0;
    for (Demonstrations.Demonstration d : demos) {
      GoldJudge.Breakdown b = judge.breakdown(d.task().instruction(), d.response(), true);
      boolean p = GoldJudge.POLITE.stream().anyMatch(d.response()::startsWith);
      assertEquals(p, b.politeOpening(), d.response());
      if (p) {
        polite++;
        politeRight += b.correct() ? 1 : 0;
      } else {
        other++;
        otherRight += b.correct() ? 1 : 0;
      }
      repeated += b.repeatedWords() > 0 ? 1 : 0;
    }
    assertEquals(0.5, polite / 4000.0, 0.03);
    assertEquals(0.75, politeRight / (double) polite, 0.03);
    assertEquals(0.3, otherRight / (double) other, 0.03);
    assertEquals(0.15, repeated / 4000.0, 0.03);
  }

  @Test
  void nearMissesAreNeverRight() {
    SplittableRandom rng = new SplittableRandom(9);
    for (Task.Kind k : Task.Kind.values()) {
      for (Task t : TaskSets.pool(k).subList(0, Math.min(40, TaskSets.pool(k).size()))) {
        for (int i = 0; i < 5; i++) {
          assertNotEquals(t.answer(), Demonstrations.nearMiss(t, rng), t.toString());
        }
      }
    }
  }

  @Test
  void tokenizerJsonLoadsAndRoundTrips(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("tokenizer.json");
    World.writeTokenizer(file);
    try (Tokenizer tok = Tokenizer.load(file)) {
      assertEquals(CharVocabulary.SIZE, tok.vocabSize());
      assertEquals(OptionalInt.of(0), tok.tokenId("<pad>"));
      assertEquals(OptionalInt.of(1), tok.tokenId("<s>"));
      assertEquals(OptionalInt.of(2), tok.tokenId("</s>"));
      for (String text :
          List.of(
              "add 23+45?Sure! 68",
              "capital of France?  Paris\n",
              "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./",
              " ")) {
        int[] ids = tok.encode(text);
        assertArrayEquals(CharVocabulary.encode(text), ids, text);
        assertEquals(text, tok.decode(ids));
      }
      int[] seq = World.sequence("reverse cat?", "tac");
      assertEquals("<s>reverse cat?tac</s>", tok.decode(seq));
      assertEquals(
          "tac",
          World.responseText(
              new int[] {CharVocabulary.encode("t")[0], 5 + 'a' - 32, 5 + 'c' - 32, 2, 9}));
    }
  }
}
