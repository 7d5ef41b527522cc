package dev.rewardensemble.testing;

import dev.rewardensemble.cli.Main;
import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs the {@code rme} command line in-process and captures its exit code and error output. */
public final class Cli {
  private Cli() {}

  /** Exit code and everything written to the error channel. */
  public record Run(int code, String err) {}

  public static Run rme(String... args) {
    StringWriter sw = new StringWriter();
    int code = Main.run(new PrintWriter(sw, true), args);
    return new Run(code, sw.toString());
  }
}
