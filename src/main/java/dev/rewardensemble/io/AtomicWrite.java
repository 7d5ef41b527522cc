package dev.rewardensemble.io;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes a file through a temporary file in the same directory that is renamed over the target only
 * once it is complete and synced, so that the target name never holds a half-written file.
 */
final class AtomicWrite {

  /** Writes the content of a file. */
  @FunctionalInterface
  interface Body {
    void writeTo(FileChannel channel) throws IOException;
  }

  private AtomicWrite() {}

  /**
   * Runs {@code body} on a fresh temporary file next to {@code target}, forces it to disk and
   * renames it to {@code target} (atomically where the file system can, else replacing). On any
   * failure the temporary file is deleted and {@code target} is left as it was.
   */
  static void write(Path target, Body body) throws IOException {
    Path absolute = target.toAbsolutePath();
    Path dir = absolute.getParent();
    if (dir == null) {
      throw new IllegalArgumentException(
          "cannot write to " + target + ": it has no parent directory");
    }
    if (Files.isDirectory(absolute)) {
      throw new IllegalArgumentException("cannot write to " + target + ": it is a directory");
    }
    // Not Files.createTempFile: that creates mode 0600 files, and the final file should get the
    // ordinary permissions of a newly created file. The name carries this process's PID, so that
    // the leftovers of an interrupted writer are removed by the next write of the same target.
    Path tmp = TempPaths.newFile(absolute);
    FileChannel channel;
    try {
      channel = FileChannel.open(tmp, StandardOpenOption.WRITE);
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(tmp);
      throw e;
    }
    try {
      try (channel) {
        body.writeTo(channel);
        channel.force(true);
      }
      try {
        Files.move(tmp, absolute, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, absolute, StandardCopyOption.REPLACE_EXISTING);
      }
    } catch (Throwable t) {
      // The failure in flight is what the caller needs; a failed cleanup rides along with it.
      try {
        Files.deleteIfExists(tmp);
      } catch (IOException | RuntimeException cleanup) {
        t.addSuppressed(cleanup);
      }
      throw t;
    }
  }
}
