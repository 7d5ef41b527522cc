package dev.rewardensemble.io;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Output directories that may already hold other files of the user: the files an export writes are
 * staged in a temporary directory beside the target and then published. A target that does not
 * exist yet appears complete or not at all (one rename); into an existing target each written file
 * is renamed over its namesake, and every other file there stays.
 */
public final class OutputDirs {
  private OutputDirs() {}

  /** Fills a staging directory with the files of an output directory. */
  @FunctionalInterface
  public interface Body {
    void writeTo(Path stage) throws IOException;
  }

  /**
   * Runs {@code body} on a fresh staging directory (see {@link TempPaths#newDirectory}) and
   * publishes what it wrote to {@code dir}: by renaming the staging directory when {@code dir} does
   * not exist, else by moving each file (subdirectories recursively) into {@code dir}, replacing a
   * file of the same name and leaving the others. On failure before publishing, {@code dir} is
   * untouched and the staging directory removed.
   */
  public static void write(Path dir, Body body) throws IOException {
    Path target = dir.toAbsolutePath().normalize();
    if (Files.exists(target) && !Files.isDirectory(target)) {
      throw new IllegalArgumentException(
          "cannot write to " + dir + ": it exists and is not a directory");
    }
    Path stage = TempPaths.newDirectory(target);
    try {
      body.writeTo(stage);
      if (!Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
        move(stage, target);
        return;
      }
      mergeInto(stage, target);
    } finally {
      AtomicDirs.deleteRecursively(stage);
    }
  }

  private static void mergeInto(Path from, Path to) throws IOException {
    List<Path> entries = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(from)) {
      ds.forEach(entries::add);
    }
    // Weights before their config: a reader that sees the new config.json sees the new weights.
    entries.sort((a, b) -> Boolean.compare(isConfig(a), isConfig(b)));
    for (Path p : entries) {
      Path dest = to.resolve(p.getFileName().toString());
      if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
        if (Files.isDirectory(dest)) {
          mergeInto(p, dest);
        } else if (!Files.exists(dest, LinkOption.NOFOLLOW_LINKS)) {
          move(p, dest);
        } else {
          throw new IllegalArgumentException(
              "cannot write the directory " + dest + ": a file of that name is in the way");
        }
      } else {
        if (Files.isDirectory(dest, LinkOption.NOFOLLOW_LINKS)) {
          throw new IllegalArgumentException(
              "cannot write " + dest + ": a directory of that name is in the way");
        }
        move(p, dest);
      }
    }
  }

  private static boolean isConfig(Path p) {
    return p.getFileName().toString().endsWith("config.json");
  }

  private static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
    }
  }
}
