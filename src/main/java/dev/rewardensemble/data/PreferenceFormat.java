package dev.rewardensemble.data;

import java.util.Locale;

/** Row layout of a preference file. */
public enum PreferenceFormat {
  /**
   * AlpacaFarm: {@code instruction}, {@code input} (optional, may be empty), {@code output_1},
   * {@code output_2}, {@code preference} (1 or 2: which output is preferred).
   */
  ALPACA_FARM,
  /**
   * TRL: {@code chosen}, {@code rejected} and an optional {@code prompt}; without a prompt, chosen
   * and rejected are full texts.
   */
  TRL,
  /** Pre-tokenized: {@code chosen_ids}, {@code rejected_ids} (arrays of ints). */
  TOKENIZED,
  /** Detected per file from the keys of the first row that matches one of the above. */
  AUTO;

  /**
   * The format of a name, case-insensitive, {@code '-'} or {@code '_'} ({@code "alpaca-farm"},
   * {@code "trl"}, {@code "tokenized"}, {@code "auto"}).
   */
  public static PreferenceFormat byName(String name) {
    if (name != null) {
      String n = name.trim().toUpperCase(Locale.ROOT).replace('-', '_');
      for (PreferenceFormat f : values()) {
        if (f.name().equals(n)) {
          return f;
        }
      }
    }
    throw new IllegalArgumentException(
        "unknown preference format '" + name + "' (known: alpaca-farm, trl, tokenized, auto)");
  }
}
