package dev.rewardensemble.cli;

import dev.rewardensemble.config.AvailableMemory;
import dev.rewardensemble.ensemble.MemoryPlan;

/**
 * The memory pre-check of every command that allocates a model: the plan of the work against the
 * physical memory this process can still use ({@link AvailableMemory}), before any tensor exists. A
 * plan that does not fit is refused with exit code 2 and one line naming the numbers and what to
 * change.
 */
final class MemoryCheck {
  private MemoryCheck() {}

  /**
   * Bytes per frozen parameter the commands plan with: float32, how this build stores weights. (The
   * {@code --weights} execution option sets it once it exists.)
   */
  static final int WEIGHT_BYTES = 4;

  /** Whether loading passes every weight through float32 Java arrays (this build's loaders do). */
  static final boolean JAVA_COPY = true;

  /** Refuses {@code plan} when it needs more than is available; {@code what} names the work. */
  static void require(MemoryPlan plan, String what) {
    plan.require(AvailableMemory.measure(), what);
  }
}
