package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * Exit codes: the project's own validation is bad input (2); a library's failure is internal (1).
 */
class MainExitCodeTest {

  private static String run(Exception e, int expectedCode) {
    StringWriter sw = new StringWriter();
    CommandLine cl = Main.commandLine();
    cl.setErr(new PrintWriter(sw, true));
    assertEquals(expectedCode, Main.handle(e, cl, null), sw.toString());
    return sw.toString();
  }

  private static IllegalArgumentException fromJdk() {
    try {
      new ArrayList<Integer>(-1); // the JDK's own precondition check: a bug here, not bad input
      throw new AssertionError("unreachable");
    } catch (IllegalArgumentException e) {
      return e;
    }
  }

  @Test
  void ownValidationIsBadInputOnOneLine() {
    String err =
        run(new IllegalArgumentException("data.jsonl:3: response: too long\nsecond line"), 2);
    assertEquals("rme: error: data.jsonl:3: response: too long\n", err.replace("\r", ""));
    assertTrue(Main.isBadInput(new UserError("x")));
    assertTrue(Main.isBadInput(new NumberFormatException("For input string: \"x\"")));
  }

  @Test
  void aLibrarysIllegalArgumentIsAnInternalErrorWithTheTraceHint() {
    IllegalArgumentException e = fromJdk();
    assertFalse(Main.isBadInput(e));
    String err = run(e, 1);
    assertTrue(err.startsWith("rme: internal error: java.lang.IllegalArgumentException"), err);
    assertTrue(err.contains("RME_DEBUG=1"), err);
  }
}
