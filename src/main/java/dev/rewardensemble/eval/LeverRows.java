package dev.rewardensemble.eval;

import dev.rewardensemble.train.TrainListener;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * How the demo trains its lever rows ({@link DemoLever}) beside its own: which rows start from
 * another row's LoRA phase 1, the copy of that phase 1, and the clock that splits a LoRA run's wall
 * time into phase 1 and the rest.
 */
final class LeverRows {
  private LeverRows() {}

  /** The directory of a LoRA run's phase 1 ({@code api.EnsembleTraining}'s layout). */
  static final String PHASE1 = "phase1";

  /**
   * The row whose phase 1 {@code m} starts from: its base ({@code lora-K}) when {@code m} is a
   * lever row that changes phase 2 only, else null. The base comes before {@code m} in {@code
   * methods}, so it is trained first on every seed.
   */
  static DemoMethod phase1Source(List<DemoMethod> methods, DemoMethod m) {
    if (m.lever() == null || !m.lever().reusesPhase1()) {
      return null;
    }
    String base = m.lever().baseName(m.k());
    for (DemoMethod b : methods) {
      if (b == m) {
        break;
      }
      if (b.name().equals(base) && b.lever() == null) {
        return b;
      }
    }
    throw new IllegalStateException("lever row " + m.name() + " needs " + base + " before it");
  }

  /**
   * Copies the finished phase 1 of the LoRA run {@code from} into the run directory {@code to},
   * which then trains with {@code resume}: a LoRA run whose phase 1 is complete skips it and trains
   * phase 2 from its weights. Checkpoints stay behind (a completed phase 1 is read from its {@code
   * model.safetensors}).
   */
  static void copyPhase1(Path from, Path to) throws IOException {
    Path src = from.resolve(PHASE1);
    Path dst = to.resolve(PHASE1);
    if (!Files.isRegularFile(src.resolve("model.safetensors"))) {
      throw new IllegalStateException(src + " holds no trained phase 1");
    }
    if (Files.exists(to)) {
      throw new IllegalArgumentException(to + " already exists: a lever row starts afresh");
    }
    try (Stream<Path> files = Files.walk(src)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        Path rel = src.relativize(f);
        if (rel.getNameCount() > 0 && rel.getName(0).toString().equals("checkpoints")) {
          continue;
        }
        Path t = dst.resolve(rel.toString());
        if (Files.isDirectory(f)) {
          Files.createDirectories(t);
        } else {
          Files.copy(f, t);
        }
      }
    }
  }

  /**
   * A listener that writes into {@code at[0]} the {@link System#nanoTime} at which a LoRA run
   * starts its phase 2 (its message {@code "LoRA phase 2: ..."}), so that phase 1's wall time is
   * measured, not estimated.
   */
  static TrainListener phase2Clock(long[] at) {
    return new TrainListener() {
      @Override
      public void onMessage(String message) {
        if (at[0] == 0 && message.startsWith("LoRA phase 2")) {
          at[0] = System.nanoTime();
        }
      }
    };
  }
}
