package dev.rewardensemble.cli;

import dev.rewardensemble.config.RewardToken;
import java.util.Optional;
import picocli.CommandLine.Option;

/** {@code --reward-token}: which token a reward model reads its reward at. */
final class RewardTokenOption {
  @Option(
      names = "--reward-token",
      paramLabel = "last-non-pad|last-attended",
      description =
          "Token the reward is read at: last-non-pad (the rightmost attended token whose id is not"
              + " pad_token_id, as transformers' ...ForSequenceClassification reads it) or"
              + " last-attended (the rightmost attended token). Default: the model's own rule (a"
              + " run or SavedModel keeps the rule it was trained with; a Hugging Face checkpoint"
              + " is read as transformers reads it: last-non-pad when its config declares"
              + " pad_token_id, else last-attended).")
  String value;

  /** The rule given, or empty for the model's own. */
  Optional<RewardToken> rule() {
    if (value == null) {
      return Optional.empty();
    }
    try {
      return Optional.of(RewardToken.byName(value));
    } catch (IllegalArgumentException e) {
      throw new UserError("--reward-token: " + e.getMessage());
    }
  }
}
