package dev.rewardensemble.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.io.AtomicDirs;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.io.TempPaths;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Training checkpoints under {@code RUN_DIR/checkpoints/step-NNNNNNNN/}: {@code model.safetensors}
 * (every weight), {@code optimizer.safetensors} (AdamW slots) and {@code state.json} (step, data
 * position, seed, run fingerprint). Each is written into a temporary directory and renamed when
 * complete, so a run killed at any moment leaves only complete checkpoints; the newest {@code keep}
 * are kept. Old checkpoints are pruned by renaming them to {@code .prune-step-N} first and deleting
 * them after, so a kill while pruning never leaves a half-deleted directory under a checkpoint's
 * name; {@link #list} removes every kind of leftover (temporary, pruned, and half-deleted {@code
 * step-N} directories without {@code state.json} from older versions).
 */
public final class Checkpoints {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String PREFIX = "step-";

  private Checkpoints() {}

  /** A checkpoint read back. */
  public record Loaded(
      Path dir,
      int step,
      ObjectNode state,
      Map<String, FloatTensor> weights,
      Map<String, FloatTensor> optimizer) {}

  public static Path root(Path runDir) {
    return runDir.resolve("checkpoints");
  }

  /**
   * Writes checkpoint {@code step} atomically and prunes all but the newest {@code keep}. The maps
   * may be {@link LazyWeights} (e.g. variables still in a session): each tensor is streamed into
   * its file in turn.
   */
  public static Path save(
      Path runDir,
      int step,
      Map<String, FloatTensor> weights,
      Map<String, FloatTensor> optimizer,
      ObjectNode state,
      int keep)
      throws IOException {
    Path root = root(runDir);
    Files.createDirectories(root);
    Path target = root.resolve(String.format("%s%08d", PREFIX, step));
    // Not Files.createTempDirectory: that makes the directory mode 0700; a checkpoint gets the
    // ordinary permissions of a new directory (the umask applies).
    Path tmp = TempPaths.newDirectory(target);
    try {
      Safetensors.write(tmp.resolve("model.safetensors"), weights);
      Safetensors.write(tmp.resolve("optimizer.safetensors"), optimizer);
      JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.resolve("state.json").toFile(), state);
      AtomicDirs.replace(tmp, target);
    } catch (IOException | RuntimeException e) {
      AtomicDirs.deleteRecursively(tmp);
      throw e;
    }
    List<Path> all = list(runDir);
    for (int i = 0; i < all.size() - keep; i++) {
      AtomicDirs.deleteByRenaming(all.get(i)); // .prune-step-N, then deleted
    }
    return target;
  }

  /**
   * Complete checkpoints, oldest first. Leftovers of killed writes and prunes are removed:
   * temporary and pruned directories, and {@code step-N} directories without {@code state.json}
   * (written last into the temporary directory, so such a directory was never a complete checkpoint
   * or is one half deleted).
   */
  public static List<Path> list(Path runDir) throws IOException {
    Path root = root(runDir);
    if (!Files.isDirectory(root)) {
      return List.of();
    }
    List<Path> out = new ArrayList<>();
    try (Stream<Path> s = Files.list(root)) {
      for (Path p : s.toList()) {
        String name = p.getFileName().toString();
        if (name.startsWith(".tmp-") || name.startsWith(".step-") || name.startsWith(".prune-")) {
          AtomicDirs.deleteRecursively(p); // an interrupted write or prune: never complete
        } else if (name.startsWith(PREFIX) && Files.isDirectory(p)) {
          if (Files.isRegularFile(p.resolve("state.json"))) {
            out.add(p);
          } else {
            AtomicDirs.deleteRecursively(p); // half deleted by an older version's prune
          }
        }
      }
    }
    out.sort(Comparator.comparing(p -> p.getFileName().toString()));
    return out;
  }

  /** The newest complete checkpoint, if any. */
  public static Optional<Loaded> latest(Path runDir) throws IOException {
    List<Path> all = list(runDir);
    if (all.isEmpty()) {
      return Optional.empty();
    }
    Path dir = all.get(all.size() - 1);
    Path stateFile = dir.resolve("state.json");
    JsonNode read;
    try {
      read = JSON.readTree(stateFile.toFile());
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(
          stateFile
              + ": not valid JSON (line "
              + e.getLocation().getLineNr()
              + ", column "
              + e.getLocation().getColumnNr()
              + "); delete this checkpoint to resume from the one before");
    }
    if (!(read instanceof ObjectNode state)
        || !state.path("step").canConvertToExactIntegral()
        || state.path("step").asInt() < 1) {
      throw new IllegalArgumentException(
          stateFile + ": expected an object with a positive integer \"step\"");
    }
    // Validated from the headers and left on disk: restoring streams them tensor by tensor.
    Map<String, FloatTensor> w = LazyWeights.ofFile(dir.resolve("model.safetensors"));
    Map<String, FloatTensor> o = LazyWeights.ofFile(dir.resolve("optimizer.safetensors"));
    return Optional.of(new Loaded(dir, state.get("step").asInt(), state, w, o));
  }
}
