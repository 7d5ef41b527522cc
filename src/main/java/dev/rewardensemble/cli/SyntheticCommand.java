package dev.rewardensemble.cli;

import dev.rewardensemble.data.SyntheticPreferences;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme synthetic-prefs}: a generated, learnable preference set (pre-tokenized JSONL). */
@Command(
    name = "synthetic-prefs",
    mixinStandardHelpOptions = true,
    description = {
      "Write a generated, learnable preference set (pre-tokenized JSONL).",
      "Random token sequences where the",
      "preferred one holds token "
          + SyntheticPreferences.GOOD
          + " more often (a reward model must look at the whole sequence)."
    })
public final class SyntheticCommand implements Callable<Integer> {
  @Option(
      names = "--pairs",
      defaultValue = "1200",
      description = "Number of pairs (default: ${DEFAULT-VALUE}).")
  int pairs;

  @Option(
      names = "--vocab",
      defaultValue = "64",
      description = "Tokens are drawn from [3, vocab) (default: ${DEFAULT-VALUE}).")
  int vocab;

  @Option(
      names = "--min-length",
      defaultValue = "8",
      description = "Shortest sequence (default: ${DEFAULT-VALUE}).")
  int minLength;

  @Option(
      names = "--max-length",
      defaultValue = "16",
      description = "Longest sequence (default: ${DEFAULT-VALUE}).")
  int maxLength;

  @Option(names = "--seed", defaultValue = "1", description = "Seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--out", required = true, description = "Output JSONL file.")
  Path out;

  @Override
  public Integer call() throws Exception {
    Outputs.paths().outputFile("--out", out).check();
    if (pairs < 1) {
      throw new UserError("--pairs must be >= 1, got " + pairs);
    }
    Outputs.writeLines(
        out,
        SyntheticPreferences.toJsonl(
            SyntheticPreferences.counting(pairs, vocab, minLength, maxLength, 3, seed)));
    System.err.printf("wrote %d pairs -> %s%n", pairs, out);
    return 0;
  }
}
