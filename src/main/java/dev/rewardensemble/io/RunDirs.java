package dev.rewardensemble.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The completion marker of a run directory and the clean-up of what killed writes leave in it.
 *
 * <p>A directory written by {@code rme train-rm} (the run directory and each sub-run: {@code
 * member-k/}, {@code phase1/}, {@code phase2/}) has a {@code run.json} of format {@code rme-run/1}
 * whose {@code "complete": true} is written last, after every file the run's loaders read (for an
 * ensemble: after {@code ensemble.json} with its normalisation). Loaders of run directories refuse
 * one without it ({@link #requireComplete}); {@code --resume} finishes it. Directories without a
 * {@code run.json} (Hugging Face checkpoints, runs written before the marker existed with only an
 * {@code ensemble.json}) are not affected.
 */
public final class RunDirs {
  /** The run's settings, provenance and completion marker. */
  public static final String RUN_JSON = "run.json";

  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * Temporary names of this project's atomic writes: {@code .NAME.tmp} (run.json, config.json,
   * ensemble.json, metrics.jsonl), {@code .NAME.HEX.tmp} (safetensors and other {@link
   * AtomicWrite}s), {@code .NAME.PID-HEX.tmp} and {@code .NAME.tmp-PID-HEX} ({@link TempPaths}),
   * {@code .NAME.tmpDIGITS} (directories written through {@code Files.createTempDirectory} by older
   * builds), {@code .NAME.old.DIGITS} (a directory being replaced) and {@code .NAME.staging} (a
   * directory assembled before its rename).
   */
  private static final Pattern LEFTOVER =
      Pattern.compile(
          "\\.(run\\.json|config\\.json|model\\.safetensors|optimizer\\.safetensors|metrics\\.jsonl|ensemble\\.json"
              + "|tokenizer\\.json|COMPLETE|policy|\\.policy\\.staging|member-\\d+|phase[12]|adapters)"
              + "\\.(tmp|tmp\\d+|[0-9a-f]+\\.tmp|\\d+-[0-9a-f]+\\.tmp|tmp-\\d+-[0-9a-f]+|old\\.\\d+|staging)");

  private RunDirs() {}

  /** A run directory whose training did not complete; exit code 2 on the command line. */
  public static final class IncompleteRunException extends IllegalArgumentException {
    public IncompleteRunException(Path dir) {
      super(dir + ": training did not complete (pass --resume to train-rm to finish it)");
    }
  }

  /** {@code dir/run.json}, or null when there is none. */
  public static ObjectNode runJson(Path dir) throws IOException {
    Path f = dir.resolve(RUN_JSON);
    if (!Files.isRegularFile(f)) {
      return null;
    }
    JsonNode n = JSON.readTree(f.toFile());
    if (!(n instanceof ObjectNode o)) {
      throw new IllegalArgumentException(f + ": expected a JSON object");
    }
    return o;
  }

  /**
   * Whether {@code dir} holds a {@code train-rm} run directory ({@code run.json} of format
   * rme-run).
   */
  public static boolean isRunDir(Path dir) throws IOException {
    ObjectNode r = runJson(dir);
    return r != null && r.path("format").asText("").startsWith("rme-run/");
  }

  /** Whether {@code dir}'s {@code run.json} says the run completed. */
  public static boolean isComplete(Path dir) throws IOException {
    ObjectNode r = runJson(dir);
    return r != null && r.path("complete").asBoolean(false);
  }

  /**
   * Refuses a {@code train-rm} run directory whose {@code run.json} does not say {@code "complete":
   * true}; anything else (a checkpoint, a legacy run) passes.
   */
  public static void requireComplete(Path dir) throws IOException {
    if (isRunDir(dir) && !isComplete(dir)) {
      throw new IncompleteRunException(dir);
    }
  }

  /** Writes {@code dir/run.json} atomically (temporary file, forced, renamed). */
  public static void writeRunJson(Path dir, JsonNode node) throws IOException {
    writeJson(dir.resolve(RUN_JSON), node);
  }

  /** Sets {@code "complete": true} in {@code dir/run.json} (the last write of a run). */
  public static void markComplete(Path dir) throws IOException {
    ObjectNode r = runJson(dir);
    if (r == null) {
      throw new IllegalStateException(dir + ": no " + RUN_JSON + " to mark complete");
    }
    r.put("complete", true);
    writeRunJson(dir, r);
  }

  /** Writes a JSON file atomically and durably (through {@link AtomicWrite}). */
  public static void writeJson(Path file, JsonNode node) throws IOException {
    byte[] bytes = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(node);
    AtomicWrite.write(
        file,
        ch -> {
          var out = Channels.newOutputStream(ch);
          out.write(bytes);
          out.write('\n');
          out.flush();
        });
  }

  /**
   * Deletes what killed writes leave in {@code dir} (not recursively): temporary files and
   * directories of this project's atomic writes (see the class comment), never anything else. Call
   * it only while holding the directory's {@link DirLock}.
   *
   * @return the number of entries removed
   */
  public static int cleanLeftovers(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    int n = 0;
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.toList()) {
        if (LEFTOVER.matcher(p.getFileName().toString()).matches()) {
          AtomicDirs.deleteRecursively(p);
          n++;
        }
      }
    }
    return n;
  }
}
