package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig.XlaMode;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code --xla off|auto|on}: off without the option, on for the bare flag (as before). */
class ExecOptionsTest {
  @CommandLine.Command(name = "probe")
  static final class Probe {
    @CommandLine.Mixin ExecOptions exec = new ExecOptions();

    @CommandLine.Option(names = "--model")
    String model;
  }

  private static Probe parse(String... args) {
    Probe p = new Probe();
    new CommandLine(p).parseArgs(args);
    return p;
  }

  @Test
  void xlaIsOffByDefaultOnAloneAndNamedOtherwise() {
    assertEquals(XlaMode.OFF, parse().exec.config().xlaMode());
    Probe bare = parse("--xla", "--model", "m");
    assertEquals(XlaMode.ON, bare.exec.config().xlaMode());
    assertEquals("m", bare.model);
    assertEquals(XlaMode.ON, parse("--model", "m", "--xla").exec.config().xlaMode());
    assertEquals(XlaMode.OFF, parse("--xla", "off").exec.config().xlaMode());
    assertEquals(XlaMode.OFF, parse("--xla=off").exec.config().xlaMode());
    assertEquals(XlaMode.AUTO, parse("--xla", "auto").exec.config().xlaMode());
  }

  @Test
  void aBadModeIsAUserErrorNamingTheOptionAndValue() {
    UserError e = assertThrows(UserError.class, () -> parse("--xla", "fast").exec.config());
    assertTrue(e.getMessage().startsWith("--xla: "), e.getMessage());
    assertTrue(e.getMessage().contains("'fast'"), e.getMessage());
    assertTrue(Main.isBadInput(e));
  }
}
