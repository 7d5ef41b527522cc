package dev.rewardensemble.data;

import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The preference pairs read from one file.
 *
 * @param file the file read
 * @param sha256 lower-case hex SHA-256 of the file's bytes (for provenance in run metadata)
 * @param pairs the usable pairs, in file order
 * @param skippedRows number of bad rows skipped (only with skip-bad-rows)
 * @param skippedByReason skipped rows per reason key (e.g. {@code missing_field}), sorted by key
 * @param truncated number of sequences (chosen and rejected counted separately) that were cut to
 *     the maximum length
 */
public record PreferenceData(
    Path file,
    String sha256,
    List<PreferencePair> pairs,
    int skippedRows,
    Map<String, Integer> skippedByReason,
    int truncated) {
  public PreferenceData {
    pairs = List.copyOf(pairs);
    skippedByReason = Collections.unmodifiableMap(new TreeMap<>(skippedByReason));
  }
}
