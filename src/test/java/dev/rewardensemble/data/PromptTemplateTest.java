package dev.rewardensemble.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class PromptTemplateTest {
  @Test
  void alpacaWithInput() {
    assertEquals(
        "Below is an instruction that describes a task, paired with an input that provides further"
            + " context. Write a response that appropriately completes the request.\n\n"
            + "### Instruction:\nTranslate.\n\n### Input:\nBonjour\n\n### Response:",
        PromptTemplate.ALPACA.prompt("Translate.", "Bonjour"));
  }

  @Test
  void alpacaWithoutInput() {
    String want =
        "Below is an instruction that describes a task. Write a response that appropriately"
            + " completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:";
    assertEquals(want, PromptTemplate.ALPACA.prompt("Say hi.", ""));
    assertEquals(want, PromptTemplate.ALPACA.prompt("Say hi.", null));
  }

  @Test
  void rawIsVerbatim() {
    assertEquals(
        "Human: hi\n\nAssistant:", PromptTemplate.RAW.prompt("Human: hi\n\nAssistant:", ""));
    assertEquals("a\n\nb", PromptTemplate.RAW.prompt("a", "b"));
  }

  @Test
  void byNameAndDefault() {
    assertSame(PromptTemplate.ALPACA, PromptTemplate.DEFAULT);
    assertSame(PromptTemplate.ALPACA, PromptTemplate.byName("alpaca"));
    assertSame(PromptTemplate.RAW, PromptTemplate.byName(" RAW "));
    var e = assertThrows(IllegalArgumentException.class, () -> PromptTemplate.byName("chatml"));
    assertTrue(e.getMessage().contains("chatml"));
  }
}
