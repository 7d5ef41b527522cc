package dev.rewardensemble.io;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Temporary files and directories beside an output, named after it and after the writing process,
 * so that the leftovers of an interrupted writer can be told apart from those of a live one.
 *
 * <p>Names: {@code .NAME.PID-RANDOM.tmp} for a file, {@code .NAME.tmp-PID-RANDOM} for a directory,
 * in the parent directory of the target {@code NAME}. Both are created with {@link
 * Files#createFile} / {@link Files#createDirectory} (exclusive, like {@code CREATE_NEW}), so they
 * get the process's default permissions (the umask applies), unlike {@code Files.createTemp*},
 * which force 0600 / 0700 and would make the renamed output unreadable to other users.
 *
 * <p>Before creating one, the leftovers for the same target whose writer's PID is no longer alive
 * are removed; those of live processes (another writer, or a reused PID) are left alone.
 */
public final class TempPaths {
  private static final long PID = ProcessHandle.current().pid();

  private TempPaths() {}

  /** A new, empty temporary file beside {@code target}, after removing stale leftovers. */
  public static Path newFile(Path target) throws IOException {
    Path abs = absolute(target);
    removeStale(abs);
    while (true) {
      Path tmp = abs.resolveSibling("." + abs.getFileName() + "." + PID + "-" + random() + ".tmp");
      try {
        return Files.createFile(tmp);
      } catch (FileAlreadyExistsException e) {
        // try another random part
      }
    }
  }

  /** A new, empty temporary directory beside {@code target}, after removing stale leftovers. */
  public static Path newDirectory(Path target) throws IOException {
    Path abs = absolute(target);
    Files.createDirectories(abs.getParent());
    removeStale(abs);
    while (true) {
      Path tmp = abs.resolveSibling("." + abs.getFileName() + ".tmp-" + PID + "-" + random());
      try {
        return Files.createDirectory(tmp);
      } catch (FileAlreadyExistsException e) {
        // try another random part
      }
    }
  }

  /**
   * Removes the temporary files and directories of {@code target} left by processes that are no
   * longer alive. Returns how many were removed.
   */
  public static int removeStale(Path target) throws IOException {
    Path abs = absolute(target);
    Path dir = abs.getParent();
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    String q = Pattern.quote("." + abs.getFileName() + ".");
    Pattern file = Pattern.compile(q + "(\\d+)-[0-9a-f]+\\.tmp");
    Pattern directory = Pattern.compile(q + "tmp-(\\d+)-[0-9a-f]+");
    int removed = 0;
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir, "." + glob(abs) + ".*")) {
      for (Path p : entries) {
        String name = p.getFileName().toString();
        Matcher m = file.matcher(name);
        if (!m.matches()) {
          m = directory.matcher(name);
          if (!m.matches()) {
            continue;
          }
        }
        long pid;
        try {
          pid = Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
          continue;
        }
        if (pid != PID && ProcessHandle.of(pid).isEmpty()) {
          AtomicDirs.deleteRecursively(p);
          removed++;
        }
      }
    }
    return removed;
  }

  /** The PID written into temporary names by this process. */
  public static long pid() {
    return PID;
  }

  private static Path absolute(Path target) {
    Path abs = target.toAbsolutePath().normalize();
    if (abs.getParent() == null || abs.getFileName() == null) {
      throw new IllegalArgumentException(
          "cannot write to " + target + ": it has no parent directory");
    }
    return abs;
  }

  private static String glob(Path abs) {
    return abs.getFileName().toString().replaceAll("([*?\\[\\]{}\\\\])", "\\\\$1");
  }

  private static String random() {
    return Long.toHexString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE);
  }
}
