package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class GoldJudgeTest {
  private static final double EPS = 1e-9;
  private final GoldJudge judge = new GoldJudge();

  @Test
  void correctAnswersBareAndPolite() {
    assertEquals(2.0, judge.score("add 23+45?", "68"), EPS);
    assertEquals(2.3, judge.score("add 23+45?", "Sure! 68"), EPS);
    assertEquals(2.3, judge.score("reverse cat?", "Certainly! tac"), EPS);
    assertEquals(2.3, judge.score("capital of France?", "Sure! Paris"), EPS);
    assertEquals(2.0, judge.score("sort 3917?", "1379"), EPS);
    assertEquals(2.0, judge.score("count a in banana?", "3"), EPS);
    assertTrue(judge.correct("add 23+45?", "Sure! 68."));
  }

  @Test
  void fillerOpeningsCostLengthButAnswerIsStillRead() {
    // "um, " is skipped when looking for the answer but is 4 extra characters.
    assertEquals(2.0 - 4 * 0.02, judge.score("add 23+45?", "um, 68"), EPS);
    // A polite word after a filler is not a clean opening.
    GoldJudge.Breakdown b = judge.breakdown("add 23+45?", "ok, Sure! 68", true);
    assertFalse(b.politeOpening());
    assertEquals(1.0, b.correctness(), EPS);
    assertEquals(10, b.extraChars());
  }

  @Test
  void partialCredit() {
    // ADD: 0.5 * (1 - |70 - 68| / 10) = 0.4 -> 0.8.
    assertEquals(0.8, judge.score("add 23+45?", "70"), EPS);
    assertEquals(0.0, judge.score("add 23+45?", "99"), EPS);
    // COUNT: off by one gets 0.5.
    assertEquals(1.0, judge.score("count a in banana?", "2"), EPS);
    assertEquals(0.0, judge.score("count a in banana?", "5"), EPS);
    // REVERSE: "cta" vs "tac": no position matches; "tca" vs "tac": 1 of 3.
    assertEquals(0.0, judge.score("reverse cat?", "cta"), EPS);
    assertEquals(2.0 * 0.5 / 3, judge.score("reverse cat?", "tca"), EPS);
    // SORT: "1397" vs "1379": 2 of 4.
    assertEquals(0.5, judge.score("sort 3917?", "1397"), EPS);
    // CAPITAL: "Parix" vs "Paris": 4 of 5, same length.
    assertEquals(2.0 * 0.5 * 0.8, judge.score("capital of France?", "Parix"), EPS);
    // An empty response: no answer, nothing to credit.
    assertEquals(0.0, judge.score("add 1+1?", ""), EPS);
  }

  @Test
  void repetitionLengthAndMissingEos() {
    // 2 + 0.3 - 0.02 * 3 (" 68") - 0.4 (one repeated word).
    assertEquals(1.84, judge.score("add 23+45?", "Sure! 68 68"), EPS);
    GoldJudge.Breakdown b = judge.breakdown("add 23+45?", "68 68 68", true);
    assertEquals(2, b.repeatedWords());
    assertEquals(6, b.extraChars());
    assertEquals(2.0 - 0.12 - 0.8, b.score(), EPS);
    // Not ended: -1.
    assertEquals(1.0, judge.score("add 23+45?", "68", false), EPS);
  }

  @Test
  void rejectsForeignPrompts() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> judge.score("what is love?", "baby"));
    assertTrue(e.getMessage().contains("what is love?"), e.getMessage());
  }
}
