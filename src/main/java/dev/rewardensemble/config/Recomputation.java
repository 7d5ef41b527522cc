package dev.rewardensemble.config;

import java.util.Locale;

/**
 * How much of a training graph recomputes its blocks in the backward pass ({@code --recompute}):
 * the lowest {@code blocks} blocks of every trained stack keep only their inputs and are rebuilt in
 * the backward pass ({@code model.Recompute}); the blocks above them keep their activations as
 * usual. {@link #NONE} recomputes nothing, {@link #ALL} every block. The gradients are the same in
 * every setting; recomputing fewer blocks costs less time (each recomputed block runs its forward
 * twice) and more memory (each kept block holds its activations).
 *
 * @param blocks the number of lowest blocks recomputed, per stack (a LoRA ensemble's members above
 *     the fork, an independent ensemble's every member); {@link Integer#MAX_VALUE} for all
 */
public record Recomputation(int blocks) {
  /** Nothing recomputed. */
  public static final Recomputation NONE = new Recomputation(0);

  /** Every block recomputed (the plain {@code --recompute}). */
  public static final Recomputation ALL = new Recomputation(Integer.MAX_VALUE);

  public Recomputation {
    if (blocks < 0) {
      throw new IllegalArgumentException("recomputed blocks must be >= 0, got " + blocks);
    }
  }

  /** {@link #ALL} when {@code on}, else {@link #NONE}. */
  public static Recomputation of(boolean on) {
    return on ? ALL : NONE;
  }

  /** The lowest {@code n} blocks ({@code n >= 0}). */
  public static Recomputation lowest(int n) {
    return n == 0 ? NONE : n == Integer.MAX_VALUE ? ALL : new Recomputation(n);
  }

  /** Whether any block is recomputed. */
  public boolean any() {
    return blocks > 0;
  }

  /** Whether every block is recomputed. */
  public boolean all() {
    return blocks == Integer.MAX_VALUE;
  }

  /** Whether block {@code layer} (0 = the lowest) is recomputed. */
  public boolean covers(int layer) {
    return layer < blocks;
  }

  /** Blocks recomputed of a stack of {@code layers}. */
  public int of(int layers) {
    return Math.min(blocks, layers);
  }

  /**
   * {@code all} (or {@code on}, {@code true}), {@code none} (or {@code off}, {@code false}) or a
   * number of lowest blocks N >= 0; the error names the value. ({@code auto} is the CLI's: it
   * resolves to a number from the memory plan.)
   */
  public static Recomputation parse(String s) {
    String v = s == null ? "" : s.trim().toLowerCase(Locale.ROOT);
    switch (v) {
      case "all", "on", "true":
        return ALL;
      case "none", "off", "false":
        return NONE;
      default:
        try {
          int n = Integer.parseInt(v);
          if (n >= 0) {
            return lowest(n);
          }
        } catch (NumberFormatException e) {
          // fall through to the error
        }
        throw new IllegalArgumentException(
            "--recompute must be all, none, auto or a number of blocks >= 0, got '"
                + (s == null ? "" : s.trim())
                + "'");
    }
  }

  /** The value on the command line: {@code all}, {@code none} or N. */
  public String id() {
    return blocks == Integer.MAX_VALUE ? "all" : blocks == 0 ? "none" : Integer.toString(blocks);
  }
}
