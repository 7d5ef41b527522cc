package dev.rewardensemble.train;

import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Which training pairs each of the K members (heads, or LoRA adapters with their heads) of a
 * shared-trunk ensemble learns from ({@code rme train-rm --member-data}). Every member still sees
 * every micro-batch (the members share the forward pass); a member's loss is the weighted mean over
 * the batch with per-pair, per-member weights {@code w[b][k]} ({@link BradleyTerry}), so a pair of
 * weight 0 is invisible to that member. All weights are pure functions of the seed and the pair's
 * index in the training split (and, for {@link #POISSON}, of the step and micro-batch), so a
 * resumed run draws what an uninterrupted one would.
 */
public enum MemberData {
  /** Every member trains on every pair (weight 1). */
  SHARED("shared"),
  /**
   * Online bootstrap: fresh Poisson(1) counts for every pair, member and micro-batch (what {@code
   * --bootstrap} has always done); over several epochs each member sees all pairs.
   */
  POISSON("poisson"),
  /**
   * Classic bootstrap: member k trains on its own resample of the training split, n draws with
   * replacement (multinomial counts, seeded per member), fixed for the whole run: about 37% of the
   * pairs are left out of each member, a different 37% for each.
   */
  BOOTSTRAP("bootstrap"),
  /**
   * Disjoint partitions: the training split is shuffled (seeded) and dealt round-robin into K parts
   * of sizes differing by at most 1; member k trains only on part k.
   */
  DISJOINT("disjoint");

  private static final long SALT = 0x3C6EF372FE94F82AL;

  private final String id;

  MemberData(String id) {
    this.id = id;
  }

  public String id() {
    return id;
  }

  /** The mode named {@code name} (case-insensitive), or an error naming the option. */
  public static MemberData byName(String name) {
    for (MemberData m : values()) {
      if (m.id.equals(name.toLowerCase(Locale.ROOT))) {
        return m;
      }
    }
    throw new IllegalArgumentException(
        "--member-data must be shared, poisson, bootstrap or disjoint, got '" + name + "'");
  }

  /**
   * The per-member weights of one run: {@code n} training pairs, {@code k} members, drawn from
   * {@code seed}.
   *
   * @throws IllegalArgumentException for {@link #DISJOINT} with fewer pairs than members
   */
  public Weights weights(int n, int k, long seed) {
    return new Weights(this, n, k, seed);
  }

  /** Per-member weights of the pairs of one run ({@link MemberData#weights}). */
  public static final class Weights {
    private final MemberData mode;
    private final int k;
    private final long seed;
    private final int[] part; // DISJOINT: member of pair i
    private final int[][] counts; // BOOTSTRAP: [n][k] draws of pair i in member k's resample

    private Weights(MemberData mode, int n, int k, long seed) {
      if (k < 1) {
        throw new IllegalArgumentException("members must be >= 1, got " + k);
      }
      this.mode = mode;
      this.k = k;
      this.seed = seed;
      this.part = mode == DISJOINT ? partition(n, k, seed) : null;
      this.counts = mode == BOOTSTRAP ? resample(n, k, seed) : null;
    }

    /**
     * Weights {@code [B][K]} of the micro-batch made of training pairs {@code pairs} (indices into
     * the training split) at optimizer step {@code step}, micro-batch {@code micro}; null for
     * {@link MemberData#SHARED} (every weight 1).
     */
    public float[][] of(int step, int micro, int[] pairs) {
      return switch (mode) {
        case SHARED -> null;
        case POISSON -> TrainingRun.bootstrapWeights(seed, step, micro, pairs.length, k);
        case BOOTSTRAP -> {
          float[][] w = new float[pairs.length][k];
          for (int b = 0; b < pairs.length; b++) {
            for (int m = 0; m < k; m++) {
              w[b][m] = counts[pairs[b]][m];
            }
          }
          yield w;
        }
        case DISJOINT -> {
          float[][] w = new float[pairs.length][k];
          for (int b = 0; b < pairs.length; b++) {
            w[b][part[pairs[b]]] = 1f;
          }
          yield w;
        }
      };
    }

    /** {@link MemberData#DISJOINT}: the member pair {@code i} belongs to. */
    public int memberOf(int i) {
      if (part == null) {
        throw new IllegalStateException(mode + " has no partition");
      }
      return part[i];
    }

    /** {@link MemberData#BOOTSTRAP}: how often pair {@code i} is in member {@code m}'s resample. */
    public int count(int i, int m) {
      if (counts == null) {
        throw new IllegalStateException(mode + " has no resample");
      }
      return counts[i][m];
    }
  }

  /** A seeded shuffle of 0..n-1 dealt round-robin into k parts: part[i] is pair i's member. */
  static int[] partition(int n, int k, long seed) {
    if (n < k) {
      throw new IllegalArgumentException(
          "--member-data disjoint needs at least one training pair per member: "
              + n
              + " pairs for "
              + k
              + " members");
    }
    int[] order = new int[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
    }
    SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ SALT);
    for (int i = n - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      int t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    int[] part = new int[n];
    for (int p = 0; p < n; p++) {
      part[order[p]] = p % k;
    }
    return part;
  }

  /** Member m's resample: n uniform draws with replacement from its own stream (seed, m). */
  static int[][] resample(int n, int k, long seed) {
    int[][] c = new int[n][k];
    if (n == 0) {
      return c;
    }
    for (int m = 0; m < k; m++) {
      SplittableRandom rng = new SplittableRandom((seed ^ SALT) * 1_000_003L + 7919L * m + 1);
      for (int d = 0; d < n; d++) {
        c[rng.nextInt(n)][m]++;
      }
    }
    return c;
  }
}
