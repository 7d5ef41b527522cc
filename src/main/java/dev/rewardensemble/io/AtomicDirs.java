package dev.rewardensemble.io;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * Directories that appear complete or not at all: written under a temporary name beside the target,
 * then renamed. An existing target is moved aside first and deleted only after the rename.
 */
public final class AtomicDirs {
  private AtomicDirs() {}

  /** Moves the complete directory {@code tmp} to {@code target}, replacing it if present. */
  public static void replace(Path tmp, Path target) throws IOException {
    Path old = null;
    if (Files.exists(target)) {
      old = target.resolveSibling("." + target.getFileName() + ".old." + System.nanoTime());
      move(target, old);
    }
    move(tmp, target);
    if (old != null) {
      deleteRecursively(old);
    }
  }

  /**
   * Deletes a directory by first renaming it to {@code .prune-NAME} beside it (one atomic step) and
   * then deleting that: a kill in between leaves nothing under {@code NAME}, only a {@code .prune-}
   * leftover for the next run to remove.
   */
  public static void deleteByRenaming(Path dir) throws IOException {
    Path doomed = dir.resolveSibling(".prune-" + dir.getFileName());
    deleteRecursively(doomed); // a leftover of an earlier delete of the same name
    move(dir, doomed);
    CrashPoints.reached("prune");
    deleteRecursively(doomed);
  }

  private static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(from, to);
    }
  }

  /** Deletes a file or directory tree; missing paths are ignored. */
  public static void deleteRecursively(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    Files.walkFileTree(
        root,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
              throws IOException {
            Files.delete(file);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
            Files.delete(dir);
            return FileVisitResult.CONTINUE;
          }
        });
  }
}
