package dev.rewardensemble.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An exclusive lock on a directory that a process writes (a run directory, a SavedModel version
 * being exported): an OS file lock ({@link FileChannel#tryLock}) on a lock file whose content names
 * the holder, {@code pid} and command. A second process is refused with {@link InUseException}
 * ("DIR is in use by pid 1234 (rme train-rm ...)"); the OS drops the lock when the holder exits or
 * is killed, so a lock file left behind by a dead process never blocks.
 *
 * <p>OS file locks belong to the process, not to a channel, so this JVM keeps its own table of held
 * locks: a second thread asking for a held lock is refused the same way, and the thread that holds
 * it may acquire it again (nested holds are released with the outermost). The lock file is never
 * opened twice by this JVM (closing any descriptor of a file drops the process's locks on it).
 */
public final class DirLock implements AutoCloseable {
  /** The lock file of a run directory. */
  public static final String RUN_DIR_LOCK = ".lock";

  private static final Map<Path, Held> HELD = new ConcurrentHashMap<>();

  private final Held held;
  private boolean closed;

  private static final class Held {
    final Path lockFile;
    final Path guarded;
    final Thread owner;
    final FileChannel channel;
    final FileLock lock;
    final String holder;
    final boolean createdDir;
    final boolean deleteFile;
    int depth = 1;

    Held(
        Path lockFile,
        Path guarded,
        FileChannel channel,
        FileLock lock,
        String holder,
        boolean createdDir,
        boolean deleteFile) {
      this.lockFile = lockFile;
      this.guarded = guarded;
      this.owner = Thread.currentThread();
      this.channel = channel;
      this.lock = lock;
      this.holder = holder;
      this.createdDir = createdDir;
      this.deleteFile = deleteFile;
    }
  }

  /** Another process (or thread) holds the lock. Exit code 2 on the command line. */
  public static final class InUseException extends IllegalArgumentException {
    private final long pid;

    InUseException(Path guarded, long pid, String command) {
      super(
          guarded
              + " is in use by "
              + (pid > 0 ? "pid " + pid : "another process")
              + (command == null || command.isBlank() ? "" : " (" + command + ")")
              + ": wait for it to finish or stop it");
      this.pid = pid;
    }

    /** The holder's process id (0 when the lock file did not name one yet). */
    public long pid() {
      return pid;
    }
  }

  private DirLock(Held held) {
    this.held = held;
  }

  /**
   * Locks the run directory {@code dir} ({@code dir/.lock}), creating {@code dir} if needed. When
   * this call created {@code dir} and nothing but the lock file is in it at release, the directory
   * is removed again (a command refused on bad input leaves no empty run directory behind).
   */
  public static DirLock runDir(Path dir) throws IOException {
    Path abs = dir.toAbsolutePath().normalize();
    boolean created = !Files.exists(abs);
    Files.createDirectories(abs);
    return acquire(abs.resolve(RUN_DIR_LOCK), dir, created, false);
  }

  /**
   * Locks a directory that is about to be written beside its siblings, e.g. {@code
   * savedmodels/NAME/V} with the lock file {@code savedmodels/NAME/.V.lock}; the parent is created
   * if needed. The lock file is removed at release (while still locked), so {@code NAME/} holds
   * only versions between writes.
   */
  public static DirLock sibling(Path dir) throws IOException {
    Path abs = dir.toAbsolutePath().normalize();
    Files.createDirectories(abs.getParent());
    return acquire(abs.resolveSibling("." + abs.getFileName() + ".lock"), dir, false, true);
  }

  private static synchronized DirLock acquire(
      Path lockFile, Path guarded, boolean createdDir, boolean deleteFile) throws IOException {
    Path key = lockFile.toAbsolutePath().normalize();
    Held h = HELD.get(key);
    if (h != null) {
      if (h.owner == Thread.currentThread()) {
        h.depth++;
        return new DirLock(h);
      }
      throw new InUseException(guarded, ProcessHandle.current().pid(), h.holder);
    }
    for (int attempt = 0; ; attempt++) {
      FileChannel ch =
          FileChannel.open(
              key, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
      FileLock lock;
      try {
        lock = ch.tryLock();
      } catch (OverlappingFileLockException e) {
        lock = null; // held by this JVM through a channel we do not know: treat as in use
      } catch (IOException | RuntimeException e) {
        ch.close();
        throw e;
      }
      if (lock == null) {
        ch.close();
        throw inUse(key, guarded);
      }
      if (!Files.exists(key) && attempt < 3) {
        // The previous holder removed the file between our open and our lock: the lock is on a
        // file nobody else will open. Start over on the path. (A third process creating and
        // locking a new file in the same microseconds is not guarded against.)
        ch.close();
        continue;
      }
      String holder = command();
      byte[] text =
          (ProcessHandle.current().pid() + "\n" + holder + "\n").getBytes(StandardCharsets.UTF_8);
      ch.truncate(0);
      ch.write(ByteBuffer.wrap(text), 0);
      ch.force(false);
      Held held = new Held(key, guarded, ch, lock, holder, createdDir, deleteFile);
      HELD.put(key, held);
      return new DirLock(held);
    }
  }

  private static InUseException inUse(Path lockFile, Path guarded) {
    long pid = 0;
    String command = null;
    try {
      List<String> lines = Files.readAllLines(lockFile, StandardCharsets.UTF_8);
      if (!lines.isEmpty()) {
        pid = Long.parseLong(lines.get(0).trim());
      }
      if (lines.size() > 1) {
        command = lines.get(1).trim();
      }
    } catch (IOException | NumberFormatException e) {
      // the holder has not written its name yet: the message says "another process"
    }
    return new InUseException(guarded, pid, command);
  }

  /**
   * This process's command as the user typed it: {@code rme ARGS} when it runs the CLI's main
   * class, otherwise the Java command line, at most 200 characters.
   */
  static String command() {
    String main = "dev.rewardensemble.cli.Main";
    // The launcher's own record of the main class and its arguments: the OS's copy of the command
    // line (ProcessHandle) is cut at a page (4 KiB) on Linux, which ./rme's class path alone
    // exceeds.
    String launched = System.getProperty("sun.java.command", "");
    if (launched.equals(main) || launched.startsWith(main + " ")) {
      return clip("rme" + launched.substring(main.length()));
    }
    ProcessHandle.Info info = ProcessHandle.current().info();
    String[] args = info.arguments().orElse(new String[0]);
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals(main)) {
        StringBuilder sb = new StringBuilder("rme");
        for (int j = i + 1; j < args.length; j++) {
          sb.append(' ').append(args[j]);
        }
        return clip(sb.toString());
      }
    }
    return clip(info.commandLine().orElse("java"));
  }

  private static String clip(String s) {
    s = s.replace('\n', ' ');
    return s.length() <= 200 ? s : s.substring(0, 197) + "...";
  }

  /** The directory this lock guards. */
  public Path dir() {
    return held.guarded;
  }

  /** Releases this hold; the lock itself with the outermost hold. */
  @Override
  public void close() throws IOException {
    synchronized (DirLock.class) {
      if (closed) {
        return;
      }
      closed = true;
      if (--held.depth > 0) {
        return;
      }
      HELD.remove(held.lockFile);
      try {
        held.channel.truncate(0);
        if (held.deleteFile) {
          Files.deleteIfExists(held.lockFile);
        } else if (held.createdDir) {
          Path dir = held.lockFile.getParent();
          try (var s = Files.list(dir)) {
            if (s.allMatch(p -> p.equals(held.lockFile))) {
              Files.delete(held.lockFile);
              Files.delete(dir);
            }
          } catch (NoSuchFileException | java.nio.file.DirectoryNotEmptyException e) {
            // someone else's files appeared: leave the directory
          }
        }
      } finally {
        try {
          held.lock.release();
        } finally {
          held.channel.close();
        }
      }
    }
  }
}
