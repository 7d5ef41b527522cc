package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.rewardensemble.testing.Cli;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code rme demo}'s option checks: one line naming the option and the value, exit 2, nothing run.
 */
class DemoCommandTest {
  @TempDir Path tmp;

  private void rejects(String expected, String... options) throws Exception {
    Path out = tmp.resolve("demo");
    String[] args = new String[options.length + 3];
    args[0] = "demo";
    args[1] = "--out";
    args[2] = out.toString();
    System.arraycopy(options, 0, args, 3, options.length);
    Cli.Run r = Cli.rme(args);
    assertEquals(2, r.code(), r.err());
    assertEquals("rme: error: " + expected, r.err().strip());
    assertFalse(Files.exists(out), "nothing ran");
  }

  @Test
  void badOptionsAreOneLineNamingTheOption() throws Exception {
    rejects("--seeds must be >= 1, got 0", "--seeds", "0");
    rejects("--preference-pairs must be >= 4, got 3", "--preference-pairs", "3");
    rejects("--pool must be >= 2, got 1", "--pool", "1");
    rejects("--eval-prompts must be >= 1, got 0", "--eval-prompts", "0");
    rejects("--ppo-iterations must be >= 0, got -1", "--ppo-iterations", "-1");
    rejects("--noise must be in [0, 0.5], got 0.6", "--noise", "0.6");
    rejects("--clean-noise must be in [0, 0.5], got -0.1", "--clean-noise", "-0.1");
    rejects("--worlds must be >= 1, got 0", "--worlds", "0");
    rejects("--ppo-seeds must be >= 1, got 0", "--ppo-seeds", "0");
    rejects(
        "--ppo-seeds must be <= worlds x seeds = 4, got 5",
        "--worlds",
        "2",
        "--seeds",
        "2",
        "--ppo-seeds",
        "5");
    rejects("--ppo-kl must be finite and >= 0, got -0.5", "--ppo-kl", "-0.5");
    rejects("--ppo-lr must be finite and > 0, got 0.0", "--ppo-lr", "0");
    rejects(
        "--levers: unknown lever 'lora-9' (choose from "
            + dev.rewardensemble.eval.DemoLever.names()
            + ", or all, fast, none)",
        "--levers",
        "lora-disjoint,lora-9");
    rejects(
        "--ppo-levers: unknown lever 'lora-9' (choose from "
            + dev.rewardensemble.eval.DemoLever.names()
            + ", or all, fast, none)",
        "--ppo-levers",
        "lora-9");
    rejects(
        "--ppo-levers: lora-5 is not a lever row of this run (--levers: lora-prior,linear-8)",
        "--ppo-levers",
        "lora-prior,lora-5");
    rejects(
        "--ppo-levers: lora-prior is not a lever row of this run (--levers: none)",
        "--levers",
        "none",
        "--ppo-levers",
        "fast");
  }

  @Test
  void helpNamesEveryLever() throws Exception {
    String help =
        new picocli.CommandLine(new DemoCommand()).getUsageMessage().replaceAll("\\s+", " ");
    for (dev.rewardensemble.eval.DemoLever l : dev.rewardensemble.eval.DemoLever.values()) {
      org.junit.jupiter.api.Assertions.assertTrue(
          help.contains(l.id() + ",") || help.contains(l.id() + ";"), l.id() + " not in the help");
    }
  }
}
