package dev.rewardensemble.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.data.ScoreRow;
import dev.rewardensemble.ensemble.MemberScores;
import dev.rewardensemble.io.TempPaths;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Output rows and files of the command line. */
final class Outputs {
  private static final ObjectMapper JSON = new ObjectMapper();

  private Outputs() {}

  /**
   * One scored row: {@code line}, the input's {@code id} if any, {@code reward}; for ensembles also
   * {@code members}, {@code members_standardized} (when normalised), {@code mean}, {@code std}.
   */
  static ObjectNode scoreRow(ScoreRow row, MemberScores s) {
    return dev.rewardensemble.server.ScoreOutput.row(row, s); // one definition, /v1/score's too
  }

  /** True when an output option means standard output: absent, or {@code -}. */
  static boolean isStdout(Path file) {
    return file == null || file.toString().equals("-");
  }

  /**
   * Writes lines to {@code file}, or to standard output when {@code file} is null or {@code -}.
   *
   * <p>A regular file (or a new name) is written atomically: to a temporary file beside it (created
   * with the default permissions, see {@link TempPaths}; an existing file's permissions are kept),
   * synced, then renamed over it; a symbolic link is kept and the file it points to is replaced. An
   * existing device, FIFO or socket (e.g. {@code /dev/null}) is written in place: opened for
   * writing without being created, truncated or replaced. A directory is refused.
   */
  static void writeLines(Path file, List<String> lines) throws IOException {
    if (isStdout(file)) {
      Writer w = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
      writeTo(w, lines);
      w.flush();
      return;
    }
    Path abs = file.toAbsolutePath();
    if (Files.isDirectory(abs)) {
      throw new UserError(file + " is a directory: give the name of a file to write");
    }
    if (Files.exists(abs) && !Files.isRegularFile(abs)) {
      try (Writer w =
          new BufferedWriter(
              new OutputStreamWriter(
                  Files.newOutputStream(abs, StandardOpenOption.WRITE), StandardCharsets.UTF_8))) {
        writeTo(w, lines);
      }
      return;
    }
    Set<PosixFilePermission> keep = null;
    if (Files.exists(abs)) {
      abs = abs.toRealPath(); // through symbolic links: replace the file, keep the link
      try {
        keep = Files.getPosixFilePermissions(abs);
      } catch (UnsupportedOperationException e) {
        keep = null;
      }
    }
    Files.createDirectories(abs.getParent());
    Path tmp = TempPaths.newFile(abs);
    try {
      try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        Writer w = new BufferedWriter(Channels.newWriter(ch, StandardCharsets.UTF_8));
        writeTo(w, lines);
        w.flush();
        ch.force(true);
      }
      if (keep != null) {
        Files.setPosixFilePermissions(tmp, keep);
      }
      try {
        Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
      }
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static void writeTo(Writer w, List<String> lines) throws IOException {
    for (String l : lines) {
      w.write(l);
      w.write('\n');
    }
  }

  /** A new check of a command's input and output paths (see {@link PathCheck#check}). */
  static PathCheck paths() {
    return new PathCheck();
  }

  /**
   * The input and output paths of one command, checked before any work starts, so that no output
   * can overwrite an input and a wrong kind of path gets one clear line (exit 2). Null paths are
   * ignored (options not given). Paths are compared as files (symbolic links, hard links, {@code
   * ./F} against {@code F}: {@link Files#isSameFile} and real paths), not as strings.
   */
  static final class PathCheck {
    private record Named(String option, Path path) {
      String show() {
        return option + " " + path;
      }
    }

    private final List<Named> inputFiles = new ArrayList<>();
    private final List<Named> inputs = new ArrayList<>();
    private final List<Named> outputFiles = new ArrayList<>();
    private final List<Named> outputDirs = new ArrayList<>();
    private final List<Named> notDirs = new ArrayList<>();

    private PathCheck() {}

    /** An input that must be a file (data, prompts): a directory is refused. */
    PathCheck inputFile(String option, Path p) {
      if (p != null) {
        inputFiles.add(new Named(option, p));
        inputs.add(new Named(option, p));
      }
      return this;
    }

    /** Inputs that must be files. */
    PathCheck inputFiles(String option, List<Path> ps) {
      if (ps != null) {
        ps.forEach(p -> inputFile(option, p));
      }
      return this;
    }

    /** An input file or directory (a model, adapters). */
    PathCheck input(String option, Path p) {
      if (p != null) {
        inputs.add(new Named(option, p));
      }
      return this;
    }

    /** Input files or directories. */
    PathCheck inputs(String option, List<Path> ps) {
      if (ps != null) {
        ps.forEach(p -> input(option, p));
      }
      return this;
    }

    /**
     * An output file, replaced as a whole: must not be an existing directory nor the same file as
     * an input or another output. Null and {@code -} (standard output) are ignored.
     */
    PathCheck outputFile(String option, Path p) {
      if (!isStdout(p)) {
        outputFiles.add(new Named(option, p));
      }
      return this;
    }

    /**
     * A directory into which the command writes the files {@code names} (and nothing else): it must
     * not be an existing non-directory, and each file is checked as an {@link #outputFile}.
     */
    PathCheck outputFilesIn(String option, Path dir, String... names) {
      if (dir != null) {
        notDirs.add(new Named(option, dir));
        for (String n : names) {
          outputFile(option, dir.resolve(n));
        }
      }
      return this;
    }

    /**
     * An output directory the command writes into (a run directory, an export): must not be an
     * existing non-directory, nor be or contain an input.
     */
    PathCheck outputDir(String option, Path p) {
      if (p != null) {
        outputDirs.add(new Named(option, p));
      }
      return this;
    }

    /** Throws a {@link UserError} naming the paths at the first problem. */
    void check() throws IOException {
      for (Named in : inputFiles) {
        if (Files.isDirectory(in.path())) {
          throw new UserError(in.show() + " is a directory (expected a file)");
        }
      }
      for (Named out : notDirs) {
        if (Files.exists(out.path()) && !Files.isDirectory(out.path())) {
          throw new UserError(out.show() + " exists and is not a directory");
        }
      }
      for (Named out : outputFiles) {
        if (Files.isDirectory(out.path())) {
          throw new UserError(out.show() + " is a directory (give the name of a file to write)");
        }
        for (Named in : inputs) {
          if (same(out.path(), in.path())) {
            throw new UserError(
                out.show()
                    + " is the same file as "
                    + in.show()
                    + ": refusing to overwrite an input (choose another "
                    + out.option()
                    + ")");
          }
        }
      }
      for (int i = 0; i < outputFiles.size(); i++) {
        for (int j = i + 1; j < outputFiles.size(); j++) {
          Named a = outputFiles.get(i);
          Named b = outputFiles.get(j);
          if (same(a.path(), b.path())) {
            throw new UserError(
                a.show() + " and " + b.show() + " are the same file: give two different files");
          }
        }
      }
      for (Named out : outputDirs) {
        if (Files.exists(out.path()) && !Files.isDirectory(out.path())) {
          throw new UserError(out.show() + " exists and is not a directory");
        }
        if (!Files.isDirectory(out.path())) {
          continue; // a new directory holds no input
        }
        Path real = out.path().toRealPath();
        for (Named in : inputs) {
          if (!Files.exists(in.path())) {
            continue;
          }
          Path inReal = in.path().toRealPath();
          if (inReal.equals(real) || Files.isSameFile(in.path(), out.path())) {
            throw new UserError(
                out.show()
                    + " is the same as "
                    + in.show()
                    + ": refusing to write over an input (choose another "
                    + out.option()
                    + ")");
          }
          if (inReal.startsWith(real)) {
            throw new UserError(
                out.show()
                    + " contains "
                    + in.show()
                    + ": writing there could overwrite the input (choose another "
                    + out.option()
                    + ")");
          }
        }
      }
    }

    /** Whether two paths name the same existing file (or, when new, the same absolute path). */
    private static boolean same(Path a, Path b) throws IOException {
      if (Files.exists(a) && Files.exists(b)) {
        return Files.isSameFile(a, b);
      }
      return a.toAbsolutePath().normalize().equals(b.toAbsolutePath().normalize());
    }
  }
}
