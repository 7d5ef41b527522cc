package dev.rewardensemble.model;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.Precision;
import java.util.Objects;
import org.tensorflow.Graph;
import org.tensorflow.op.Ops;

/**
 * What a graph builder needs to know besides the model: the {@link Ops} it builds with, the {@link
 * Precision} of its weight products ({@link Layers#matMul}), whether the session that runs the
 * graph compiles it with XLA (LoRA's scoring products take another form then, see {@link
 * dev.rewardensemble.lora.StackedLora}) and how forwards run their blocks ({@link BlockRunner}:
 * plainly, or recorded for recomputation in the backward pass by {@link Recompute}). Passed
 * explicitly to every builder whose ops depend on them; nothing about a graph is kept anywhere
 * else.
 *
 * @param tf the ops of the graph being built (placed on a device, scoped, named as the builder
 *     needs)
 * @param precision of every product with a weight matrix
 * @param xla the graph will run in a session with XLA's JIT
 * @param blocks how forwards run their blocks ({@link BlockRunner#PLAIN} when null)
 * @param inference no gradient will be taken through the graph (scoring, generation): weight
 *     products may take the form that is fastest forward ({@link Layers#matMul}); a gradient taken
 *     anyway is still correct, only slower
 * @param decoding the graph is a decode step's (one token per row, so a few rows per weight
 *     product): weight products may take the form fastest for few rows ({@link Layers#matMul});
 *     implies {@code inference}
 */
public record BuildContext(
    Ops tf,
    Precision precision,
    boolean xla,
    BlockRunner blocks,
    boolean inference,
    boolean decoding) {

  public BuildContext {
    Objects.requireNonNull(tf, "tf");
    Objects.requireNonNull(precision, "precision");
    blocks = blocks == null ? BlockRunner.PLAIN : blocks;
    inference |= decoding;
  }

  /** Blocks built plainly, for training. */
  public BuildContext(Ops tf, Precision precision, boolean xla) {
    this(tf, precision, xla, BlockRunner.PLAIN, false, false);
  }

  /** For training, blocks run by {@code blocks}. */
  public BuildContext(Ops tf, Precision precision, boolean xla, BlockRunner blocks) {
    this(tf, precision, xla, blocks, false, false);
  }

  /**
   * Float32 products, no XLA: graphs whose session is not configured by an {@link ExecConfig}
   * (tests, SavedModel export, the GraphDef of {@code rme graph}).
   */
  public static BuildContext float32(Ops tf) {
    return new BuildContext(tf, Precision.FLOAT32, false);
  }

  /**
   * For {@code graph}, to be run by a session of {@code exec}: its device placement ({@link
   * ExecConfig#ops}), its compute precision and its XLA setting.
   */
  public static BuildContext of(Graph graph, ExecConfig exec) {
    return new BuildContext(exec.ops(graph), exec.compute(), exec.xla());
  }

  /**
   * The same precision, XLA setting, block runner and inference flags with other ops (a sub-scope,
   * or the graph of a loop body).
   */
  public BuildContext with(Ops other) {
    return new BuildContext(other, precision, xla, blocks, inference, decoding);
  }

  /** The same context with forwards running their blocks through {@code runner}. */
  public BuildContext withBlocks(BlockRunner runner) {
    return new BuildContext(tf, precision, xla, runner, inference, decoding);
  }

  /** The same context for a graph (or part) through which no gradient is taken. */
  public BuildContext forInference() {
    return new BuildContext(tf, precision, xla, blocks, true, decoding);
  }

  /** The same context for a decode step's graph (one token per row; see {@code decoding}). */
  public BuildContext forDecoding() {
    return new BuildContext(tf, precision, xla, blocks, true, true);
  }
}
