package dev.rewardensemble.rl;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * How many decode loops a {@link Sampler} runs at once ("lanes"), and with how many intra-op
 * threads each: the thread budget of {@link ExecConfig#intraOpThreads} (0: one per core) split
 * between the lanes, so a run never uses more cores than it was given.
 *
 * <p>Why: a decode step of a small model is hundreds of small ops (one row of tokens per prompt
 * through every projection), which TensorFlow's executor runs one after the other and which are too
 * small for oneDNN to split between threads: on the 2-core AMD EPYC the bench presets (hidden 256)
 * generated as fast with one intra-op thread as with two. Two decode loops over the two halves of
 * the prompts, each on one thread, keep both cores busy: 1.4-1.7x the tokens/s there. A lane reads
 * every weight of the model once per step, so lanes pay only while the weights stay in the CPU's
 * caches: measured there (last-level cache 32 MiB), 1.5x at 29 MB of weights, 1.25x at 41 MB, 1.08x
 * at 66 MB, 0.86x at 200 MB and 0.9x at GPT-2 124M's 500 MB. So the automatic choice runs one lane
 * per thread when the weights a step reads (stored precision) are at most {@link #CACHE_MULTIPLE}
 * times the last-level cache, counted at most {@link #CACHE_CAP_BYTES}, and one lane otherwise; the
 * Java property {@value #PROPERTY} ({@code auto} or a number) overrides it.
 *
 * <p>Why the cap: a VM's OS reports its host's whole last-level cache, of which a 2-core VM gets a
 * share. A 2-core Intel Xeon VM reports 260 MiB, which let GPT-2 124M's 500 MB run two lanes there,
 * and two lanes measured 0.88x of one; there as on the EPYC the crossover lies between 67 MB (1.32-
 * 1.43x) and 236 MB (0.92x), so twice the EPYC's 32 MiB holds on both.
 *
 * <p>A lane needs threads of its own, and TensorFlow sizes the intra-op pool once per process, from
 * the first session's options, and shares it between sessions, unless the environment variable
 * {@value #OWN_POOLS_ENV} is true when the process starts ({@code ./rme} sets it): then every
 * session has a pool of its own size. So the automatic choice runs lanes only with that variable
 * set (without it, two lanes sharing the process's pool measured 1.1x, and a sampler's one-thread
 * session opened first would have shrunk every later session's pool). Each lane's session also gets
 * inter-op threads of its own ({@link ExecConfig#newSession(org.tensorflow.Graph, boolean)}).
 *
 * <p>Lanes change which prompts share a batch, not what a row generates: a row's random draws
 * depend on its index in the request only ({@link Sampler}), and its tokens are the same as in any
 * other batch within float rounding. Lanes are a CPU matter: with {@code --device gpu...} a sampler
 * runs one lane.
 *
 * @param lanes decode loops run at once (>= 1)
 * @param intraThreads the intra-op threads the sampler's session asks for when {@code lanes > 1}
 *     (0: the configuration's, for a process whose sessions share one pool)
 */
public record GenerationLanes(int lanes, int intraThreads) {
  /** The Java property that overrides the automatic choice: {@code auto} or a number >= 1. */
  public static final String PROPERTY = "rme.generationLanes";

  /** TensorFlow's switch for a thread pool per session (read once, when the process starts). */
  public static final String OWN_POOLS_ENV = "TF_OVERRIDE_GLOBAL_THREADPOOL";

  /** Lanes pay while a step's weights are at most this many times the last-level cache. */
  public static final int CACHE_MULTIPLE = 2;

  /** The last-level cache assumed when the OS does not say (the EPYC's, where it was measured). */
  static final long DEFAULT_CACHE_BYTES = 32L << 20;

  /**
   * The most of the reported last-level cache the automatic rule counts: the EPYC's 32 MiB, where
   * lanes were measured to pay up to about twice it; on the Intel Xeon VM, whose OS reports 260
   * MiB, the measured crossover is the same.
   */
  static final long CACHE_CAP_BYTES = 32L << 20;

  /** One lane, the configuration's threads: what a sampler did before lanes. */
  public static final GenerationLanes ONE = new GenerationLanes(1, 0);

  public GenerationLanes {
    if (lanes < 1) {
      throw new IllegalArgumentException("generation lanes must be >= 1, got " + lanes);
    }
    if (intraThreads < 0) {
      throw new IllegalArgumentException("intra-op threads must be >= 0, got " + intraThreads);
    }
  }

  /**
   * The lanes for {@code config} with weights stored as {@code stored} under {@code exec}: {@link
   * #PROPERTY} when set, else the automatic rule above with this machine's cores, last-level cache
   * (at most {@link #CACHE_CAP_BYTES}) and {@link #OWN_POOLS_ENV}.
   */
  public static GenerationLanes choose(ModelConfig config, Precision stored, ExecConfig exec) {
    return choose(
        config,
        stored,
        exec,
        System.getProperty(PROPERTY, "auto"),
        Runtime.getRuntime().availableProcessors(),
        Math.min(lastLevelCacheBytes(), CACHE_CAP_BYTES),
        sessionsOwnPools());
  }

  /**
   * The rule itself: {@code requested} is {@code auto} or a number of lanes; the thread budget is
   * {@code exec}'s intra-op threads ({@code cores} when 0); {@code ownPools}: sessions have
   * intra-op pools of their own; on a GPU device one lane.
   */
  static GenerationLanes choose(
      ModelConfig config,
      Precision stored,
      ExecConfig exec,
      String requested,
      int cores,
      long cacheBytes,
      boolean ownPools) {
    int threads = exec.intraOpThreads() > 0 ? exec.intraOpThreads() : Math.max(1, cores);
    String r = requested == null ? "auto" : requested.trim().toLowerCase(Locale.ROOT);
    int lanes;
    if (r.equals("auto")) {
      boolean small = weightBytes(config, stored) <= CACHE_MULTIPLE * cacheBytes;
      lanes = small && ownPools ? threads : 1;
    } else {
      try {
        lanes = Integer.parseInt(r);
      } catch (NumberFormatException e) {
        lanes = 0;
      }
      if (lanes < 1) {
        throw new IllegalArgumentException(
            PROPERTY + " must be auto or a number >= 1, got '" + requested + "'");
      }
    }
    if (exec.device().startsWith("gpu") || lanes == 1) {
      return ONE;
    }
    return new GenerationLanes(lanes, ownPools ? Math.max(1, threads / lanes) : 0);
  }

  /**
   * Whether this process's sessions have intra-op pools of their own ({@link #OWN_POOLS_ENV} true
   * in its environment).
   */
  public static boolean sessionsOwnPools() {
    return ownPools(System.getenv(OWN_POOLS_ENV));
  }

  /** Whether {@code value} of {@link #OWN_POOLS_ENV} is true, as TensorFlow reads it. */
  static boolean ownPools(String value) {
    String v = value == null ? "" : value.trim().toLowerCase(Locale.ROOT);
    return v.equals("true") || v.equals("1");
  }

  /**
   * Bytes of the weights a decode step reads, as stored: every trunk parameter and the LM head (the
   * embedding when tied, counted once).
   */
  static long weightBytes(ModelConfig config, Precision stored) {
    long params = 0;
    for (long[] shape : config.parameterShapes().values()) {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      params += n;
    }
    if (!config.tieWordEmbeddings()) {
      params += (long) config.vocabSize() * config.hiddenSize();
    }
    return params * (stored == Precision.BFLOAT16 ? 2 : 4);
  }

  /** The session configuration of a sampler with these lanes. */
  public ExecConfig sessionConfig(ExecConfig exec) {
    if (lanes == 1) {
      return exec;
    }
    // every lane's ops need an inter-op thread to run on at the same time as the others'
    int intra = intraThreads > 0 ? intraThreads : exec.intraOpThreads();
    return exec.withThreads(intra, Math.max(exec.interOpThreads(), lanes));
  }

  /**
   * The largest CPU cache the OS reports for cpu0 (Linux sysfs), or {@link #DEFAULT_CACHE_BYTES}.
   */
  static long lastLevelCacheBytes() {
    long best = 0;
    for (int i = 0; i < 8; i++) {
      Path size = Path.of("/sys/devices/system/cpu/cpu0/cache/index" + i + "/size");
      try {
        best = Math.max(best, parseCacheSize(Files.readString(size)));
      } catch (IOException | RuntimeException e) {
        // no such level, or not Linux
      }
    }
    return best > 0 ? best : DEFAULT_CACHE_BYTES;
  }

  /** {@code 32768K}, {@code 2M}, {@code 512} (bytes) as sysfs writes cache sizes. */
  static long parseCacheSize(String s) {
    String v = s.trim().toUpperCase(Locale.ROOT);
    long unit = 1;
    if (v.endsWith("K")) {
      unit = 1L << 10;
    } else if (v.endsWith("M")) {
      unit = 1L << 20;
    } else if (v.endsWith("G")) {
      unit = 1L << 30;
    }
    if (unit > 1) {
      v = v.substring(0, v.length() - 1);
    }
    return Long.parseLong(v) * unit;
  }

  @Override
  public String toString() {
    if (lanes == 1) {
      return "1 lane";
    }
    return lanes
        + " lanes"
        + (intraThreads > 0 ? " of " + intraThreads + " thread(s)" : " sharing the intra-op pool");
  }
}
