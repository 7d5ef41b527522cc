package dev.rewardensemble.config;

import static dev.rewardensemble.config.ModelConfig.check;

import java.util.Locale;
import org.tensorflow.DeviceSpec;
import org.tensorflow.Graph;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;
import org.tensorflow.proto.ConfigProto;
import org.tensorflow.proto.GPUOptions;
import org.tensorflow.proto.GraphOptions;
import org.tensorflow.proto.OptimizerOptions;

/**
 * How sessions execute, validated on construction: thread pools, XLA, device placement and GPU
 * options. Every graph of the project is built through {@link #ops(Graph)}, so {@code device} pins
 * all of its ops; soft placement lets an op without a kernel on that device fall back to the CPU
 * (and the GPU build falls back to the CPU entirely when no GPU or no CUDA is present). The graph
 * builders get {@link #compute} and {@link #xla} through their build context ({@code
 * model.BuildContext.of(graph, exec)}), and sessions are opened by {@link #newSession}.
 *
 * <p>XLA's CPU JIT is the one process-wide setting: TensorFlow's auto-clustering flag {@code
 * tf_xla_cpu_global_jit} belongs to the process, not to a session, and TensorFlow honours it only
 * when it is set before the process's first session. {@link #newSession} of every configuration
 * switches it on ({@link #enableXlaCpuJit}), and it then stays on for the process; it only permits
 * CPU clustering, so sessions opened without XLA's JIT level (every configuration without {@link
 * #xla}) stay unclustered.
 *
 * <p>Which graphs compile is {@link #xlaMode} ({@link XlaMode}): under {@code AUTO} the fixed-shape
 * graphs resolve to {@code ON} through {@link #forFixedShapes} and pad their batches to shape
 * buckets; {@link #xla()} says whether a session compiles.
 *
 * <p>Defaults ({@link #defaults()}): TensorFlow's thread pools (one intra-op thread per core), no
 * XLA, as on the command line ({@code --xla off}: on the 2-core AMD EPYC this was measured on,
 * {@link XlaMode#AUTO}'s compiled scoring and training ran at 0.6-0.9x of TensorFlow's own kernels,
 * interleaved in one process), float32, TensorFlow's placement, GPU memory growth on.
 *
 * @param intraOpThreads threads inside one op (MatMul); 0 = all cores
 * @param interOpThreads ops run concurrently; 0 = TensorFlow's default
 * @param xlaMode which graphs XLA's JIT compiles (on the CPU too: {@link #newSession} sets
 *     TensorFlow's process-wide CPU auto-clustering flag); {@link XlaMode#OFF} when null
 * @param device where ops are placed: {@code ""} (TensorFlow decides), {@code cpu}, {@code cpu:N},
 *     {@code gpu} or {@code gpu:N}
 * @param gpuMemoryGrowth allocate GPU memory as needed instead of all of it up front
 * @param visibleDevices GPUs the process may use, e.g. {@code "0,1"} ({@code ""} = all)
 * @param logPlacement log the device of every op (TensorFlow's log_device_placement)
 * @param compute precision of the matrix products ({@link Precision}); float32 by default
 * @param weights storage dtype of frozen weights ({@link WeightStorage}); {@code auto} by default:
 *     bfloat16 when the checkpoint is bf16, else float32
 * @param recompute which blocks training graphs recompute ({@link Recomputation}): those keep only
 *     their inputs for the backward pass and are rebuilt there ({@code model.Recompute}): the same
 *     gradients for one block's activations instead of each recomputed block's, at the cost of a
 *     second forward of those blocks. Graphs without a backward pass ignore it; nothing a run
 *     stores depends on it
 */
public record ExecConfig(
    int intraOpThreads,
    int interOpThreads,
    XlaMode xlaMode,
    String device,
    boolean gpuMemoryGrowth,
    String visibleDevices,
    boolean logPlacement,
    Precision compute,
    WeightStorage weights,
    Recomputation recompute) {

  /**
   * Which graphs XLA's JIT compiles ({@code --xla off|auto|on}).
   *
   * <ul>
   *   <li>{@link #OFF}: none;
   *   <li>{@link #AUTO}: the fixed-shape graphs only (scoring, and the forward + backward of reward
   *       training), whose callers pad the sequence length to a few buckets ({@link
   *       dev.rewardensemble.data.Padding#bucket}) so that compilations stay few; the generation
   *       loop, PPO and everything else run on TensorFlow's kernels;
   *   <li>{@link #ON}: every graph a session of this configuration runs (the old {@code --xla}),
   *       the decode loop included.
   * </ul>
   */
  public enum XlaMode {
    OFF,
    AUTO,
    ON;

    /** {@code off}, {@code auto} or {@code on} (any case); the error names the value. */
    public static XlaMode parse(String s) {
      String v = s == null ? "" : s.trim().toLowerCase(Locale.ROOT);
      return switch (v) {
        case "off", "false" -> OFF;
        case "auto" -> AUTO;
        case "on", "true" -> ON;
        default ->
            throw new IllegalArgumentException(
                "XLA mode must be off, auto or on, got '" + (s == null ? "" : s.trim()) + "'");
      };
    }

    /** The name on the command line. */
    public String id() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  public ExecConfig {
    xlaMode = xlaMode == null ? XlaMode.OFF : xlaMode;
    check(intraOpThreads >= 0, "intra-op threads must be >= 0, got " + intraOpThreads);
    check(interOpThreads >= 0, "inter-op threads must be >= 0, got " + interOpThreads);
    device = device == null ? "" : device.trim().toLowerCase(Locale.ROOT);
    check(
        device.isEmpty() || device.matches("(cpu|gpu)(:\\d+)?"),
        "device must be cpu, cpu:N, gpu or gpu:N, got '" + device + "'");
    visibleDevices = visibleDevices == null ? "" : visibleDevices.trim();
    check(
        visibleDevices.isEmpty() || visibleDevices.matches("\\d+(,\\d+)*"),
        "visible devices must be a comma-separated list of GPU indices, got '"
            + visibleDevices
            + "'");
    compute = compute == null ? Precision.FLOAT32 : compute;
    weights = weights == null ? WeightStorage.AUTO : weights;
    recompute = recompute == null ? Recomputation.NONE : recompute;
  }

  /**
   * Everything but recomputation (off); {@code xla} true: {@link XlaMode#ON} (every graph), false:
   * {@link XlaMode#OFF}.
   */
  public ExecConfig(
      int intraOpThreads,
      int interOpThreads,
      boolean xla,
      String device,
      boolean gpuMemoryGrowth,
      String visibleDevices,
      boolean logPlacement,
      Precision compute,
      WeightStorage weights) {
    this(
        intraOpThreads,
        interOpThreads,
        xla ? XlaMode.ON : XlaMode.OFF,
        device,
        gpuMemoryGrowth,
        visibleDevices,
        logPlacement,
        compute,
        weights,
        Recomputation.NONE);
  }

  /** Everything but the weight storage, which is {@link WeightStorage#AUTO}. */
  public ExecConfig(
      int intraOpThreads,
      int interOpThreads,
      boolean xla,
      String device,
      boolean gpuMemoryGrowth,
      String visibleDevices,
      boolean logPlacement,
      Precision compute) {
    this(
        intraOpThreads,
        interOpThreads,
        xla,
        device,
        gpuMemoryGrowth,
        visibleDevices,
        logPlacement,
        compute,
        WeightStorage.AUTO);
  }

  /** Everything but the precision, which is float32. */
  public ExecConfig(
      int intraOpThreads,
      int interOpThreads,
      boolean xla,
      String device,
      boolean gpuMemoryGrowth,
      String visibleDevices,
      boolean logPlacement) {
    this(
        intraOpThreads,
        interOpThreads,
        xla,
        device,
        gpuMemoryGrowth,
        visibleDevices,
        logPlacement,
        Precision.FLOAT32);
  }

  /** This configuration with matrix products in {@code p}. */
  public ExecConfig withCompute(Precision p) {
    return new ExecConfig(
        intraOpThreads,
        interOpThreads,
        xlaMode,
        device,
        gpuMemoryGrowth,
        visibleDevices,
        logPlacement,
        p,
        weights,
        recompute);
  }

  /** This configuration with frozen weights stored as {@code w}. */
  public ExecConfig withWeights(WeightStorage w) {
    return new ExecConfig(
        intraOpThreads,
        interOpThreads,
        xlaMode,
        device,
        gpuMemoryGrowth,
        visibleDevices,
        logPlacement,
        compute,
        w,
        recompute);
  }

  /**
   * This configuration with training graphs recomputing every block in the backward pass ({@code
   * r}) or none.
   */
  public ExecConfig withRecompute(boolean r) {
    return withRecompute(Recomputation.of(r));
  }

  /** This configuration with training graphs recomputing the blocks {@code r} covers. */
  public ExecConfig withRecompute(Recomputation r) {
    return new ExecConfig(
        intraOpThreads,
        interOpThreads,
        xlaMode,
        device,
        gpuMemoryGrowth,
        visibleDevices,
        logPlacement,
        compute,
        weights,
        r);
  }

  /** This configuration with {@code intra} intra-op and {@code inter} inter-op threads. */
  public ExecConfig withThreads(int intra, int inter) {
    return new ExecConfig(
        intra,
        inter,
        xlaMode,
        device,
        gpuMemoryGrowth,
        visibleDevices,
        logPlacement,
        compute,
        weights,
        recompute);
  }

  /** Threads and XLA; everything else at its default. */
  public ExecConfig(int intraOpThreads, int interOpThreads, boolean xla) {
    this(intraOpThreads, interOpThreads, xla, "", true, "", false);
  }

  /** Threads and an XLA mode; everything else at its default. */
  public ExecConfig(int intraOpThreads, int interOpThreads, XlaMode xla) {
    this(
        intraOpThreads,
        interOpThreads,
        xla,
        "",
        true,
        "",
        false,
        Precision.FLOAT32,
        WeightStorage.AUTO,
        Recomputation.NONE);
  }

  /**
   * Whether a session of this configuration compiles its graph with XLA's JIT: {@link XlaMode#ON}.
   * Under {@link XlaMode#AUTO} the fixed-shape graphs resolve to {@code ON} through {@link
   * #forFixedShapes} and everything else stays uncompiled, so this is false until resolved.
   */
  public boolean xla() {
    return xlaMode == XlaMode.ON;
  }

  /** This configuration with XLA mode {@code m}. */
  public ExecConfig withXla(XlaMode m) {
    return new ExecConfig(
        intraOpThreads,
        interOpThreads,
        m,
        device,
        gpuMemoryGrowth,
        visibleDevices,
        logPlacement,
        compute,
        weights,
        recompute);
  }

  /**
   * The configuration of a fixed-shape graph (scoring; the forward + backward of reward training),
   * whose caller pads the sequence length to {@link dev.rewardensemble.data.Padding#bucket}s: under
   * {@link XlaMode#AUTO} it compiles ({@link XlaMode#ON}) in float32 without recomputation; {@code
   * ON} and {@code OFF} stay as they are. Graphs that do not call this (the decode loop, PPO) stay
   * uncompiled under {@code AUTO}, and so do graphs with {@link #recompute} (XLA's common
   * subexpression elimination may merge the rebuilt blocks with the forward's and keep the
   * activations recomputation exists to drop) or {@code --compute bfloat16} (not measured under
   * XLA): {@code --xla on} still compiles those.
   */
  public ExecConfig forFixedShapes() {
    boolean pays = compute == Precision.FLOAT32 && !recompute.any();
    return xlaMode == XlaMode.AUTO ? withXla(pays ? XlaMode.ON : XlaMode.OFF) : this;
  }

  /** TensorFlow's defaults, no XLA. */
  public static ExecConfig defaults() {
    return new ExecConfig(0, 0, false);
  }

  /** Single-threaded and deterministic, for tests. */
  public static ExecConfig deterministic() {
    return new ExecConfig(1, 1, false);
  }

  /** {@link Ops} for {@code graph}, placed on {@link #device} when one is set. */
  public Ops ops(Graph graph) {
    Ops tf = Ops.create(graph);
    if (device.isEmpty()) {
      return tf;
    }
    String[] parts = device.split(":");
    DeviceSpec.Builder b =
        DeviceSpec.newBuilder()
            .deviceType(
                parts[0].equals("gpu") ? DeviceSpec.DeviceType.GPU : DeviceSpec.DeviceType.CPU);
    b.deviceIndex(parts.length > 1 ? Integer.parseInt(parts[1]) : 0);
    return tf.withDevice(b.build());
  }

  /**
   * A session of {@code graph} with these options: the one place sessions are opened from an {@code
   * ExecConfig}. It first switches on XLA's process-wide CPU flag ({@link #enableXlaCpuJit}), which
   * TensorFlow only honours when it is set before the process's first session. With an explicit
   * {@link #interOpThreads} the session gets an inter-op pool of its own of that size ({@link
   * #newSession(Graph, boolean)}): TensorFlow's process-wide pool is sized by the process's first
   * session, so a later session's count would otherwise be ignored, and sessions meant to run side
   * by side (the demo's jobs) would share the first one's threads.
   */
  public Session newSession(Graph graph) {
    return newSession(graph, false);
  }

  /**
   * {@link #newSession}, and with {@code ownInterOpPool} (or an explicit {@link #interOpThreads})
   * the session runs its ops on an inter-op thread pool of its own, of {@link #interOpThreads}
   * threads (TensorFlow's {@code use_per_session_threads}), instead of the process-wide pool the
   * process's first session sized. The intra-op pool stays the process's: TensorFlow sizes it once,
   * from the first session's options (unless {@code TF_OVERRIDE_GLOBAL_THREADPOOL} is set in the
   * environment).
   */
  public Session newSession(Graph graph, boolean ownInterOpPool) {
    // TensorFlow reads the CPU JIT flag once, when the process's first session is set up: set
    // after that, a later XLA session silently runs uncompiled (measured: no executable at all
    // after an earlier session without XLA). So every session sets it, whatever its mode; it only
    // permits clustering, sessions without XLA's JIT level stay unclustered.
    enableXlaCpuJit();
    return new Session(graph, sessionProto(ownInterOpPool));
  }

  /**
   * The options {@link #newSession(Graph, boolean)} opens a session with: {@link #toProto}, on an
   * inter-op pool of the session's own when asked or when {@link #interOpThreads} is explicit.
   */
  public ConfigProto sessionProto(boolean ownInterOpPool) {
    ConfigProto proto = toProto();
    if (ownInterOpPool || interOpThreads > 0) {
      proto = proto.toBuilder().setUsePerSessionThreads(true).build();
    }
    return proto;
  }

  /** The session options (no side effect: open sessions with {@link #newSession}). */
  public ConfigProto toProto() {
    ConfigProto.Builder b = ConfigProto.newBuilder();
    if (intraOpThreads > 0) {
      b.setIntraOpParallelismThreads(intraOpThreads);
    }
    if (interOpThreads > 0) {
      b.setInterOpParallelismThreads(interOpThreads);
    }
    b.setAllowSoftPlacement(true);
    b.setLogDevicePlacement(logPlacement);
    GPUOptions.Builder gpu = GPUOptions.newBuilder().setAllowGrowth(gpuMemoryGrowth);
    if (!visibleDevices.isEmpty()) {
      gpu.setVisibleDeviceList(visibleDevices);
    }
    b.setGpuOptions(gpu);
    if (xla()) {
      b.setGraphOptions(
          GraphOptions.newBuilder()
              .setOptimizerOptions(
                  OptimizerOptions.newBuilder()
                      .setGlobalJitLevel(OptimizerOptions.GlobalJitLevel.ON_1)));
    }
    return b.build();
  }

  /**
   * Switches on XLA's auto-clustering of CPU ops for the whole process. XLA skips CPU ops unless
   * {@code tf_xla_cpu_global_jit} is set (normally through {@code
   * TF_XLA_FLAGS=--tf_xla_cpu_global_jit}); this sets it in-process through TensorFlow's C API, so
   * that {@link #xla} alone is enough. The flag is TensorFlow's, global to the process and never
   * switched off again; it only permits CPU clustering: a session clusters only with XLA's JIT
   * level in its options ({@link #toProto} with {@link #xla}). Called by {@link #newSession};
   * idempotent.
   */
  public static void enableXlaCpuJit() {
    org.tensorflow.internal.c_api.global.tensorflow.TF_SetTfXlaCpuGlobalJit((byte) 1);
    // Strict, not lazy, compilation: by default TensorFlow runs a cluster's second and later input
    // shapes on its own kernels until it has seen them twice, and gives up compiling a cluster
    // that sees many shapes; both would mix XLA's and TensorFlow's arithmetic within one run (and
    // make a resumed run differ from an uninterrupted one in the last bits). Compiled graphs pad
    // to a few shape buckets instead, so compiling every shape at its first use stays bounded.
    org.tensorflow.internal.c_api.global.tensorflow.TF_SetXlaEnableLazyCompilation((byte) 0);
  }
}
