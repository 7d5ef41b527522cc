package dev.rewardensemble.model;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.tensorflow.Graph;
import org.tensorflow.GraphOperation;
import org.tensorflow.Operand;
import org.tensorflow.Output;
import org.tensorflow.op.Op;
import org.tensorflow.op.Ops;
import org.tensorflow.proto.DataType;
import org.tensorflow.types.TFloat32;

/**
 * Activation recomputation (gradient checkpointing) in graph mode, as TF1's {@code recompute_grad}
 * did, without custom gradients: a {@link BlockRunner} that records every block a forward builds
 * (its input, its output and how to build it), and {@link #gradients}, which builds the loss's
 * gradients block by block from the top so that the backward pass only needs the blocks' inputs.
 *
 * <ol>
 *   <li>The part of the graph above the blocks (final norm, heads, loss) is differentiated with
 *       respect to the top blocks' outputs and the trainable variables it reads.
 *   <li>From the last block down, each block is built again over its stored input, every op of the
 *       copy carrying a control dependency on the incoming gradient (so TensorFlow cannot run the
 *       copy during the forward, which would keep all activations alive again), and the copy is
 *       differentiated with that gradient with respect to its input and the trainable variables it
 *       reads. The original block's internals are consumed by forward ops only and are freed as
 *       soon as the forward has passed them.
 *   <li>No gradient is asked for an input that no trainable variable lies below (a LoRA ensemble's
 *       frozen blocks below the fork are never rebuilt); a block with no trainable variable in or
 *       below it is skipped.
 *   <li>Inputs not produced by a block (the embeddings) pass their gradient on to the variables
 *       below them.
 * </ol>
 *
 * <p>Blocks at or above the depth given to {@link #Recompute(int)} are not recorded: they belong to
 * the part of the graph above the recorded blocks and are differentiated with it, through their
 * original ops (their activations are kept, as without recomputation).
 *
 * <p>Every gradient is the same function as {@code tf.gradients} of the whole graph, summed in
 * another order. A block body must be rebuildable: it builds every op that depends on its input
 * with the context it is given ({@link BlockRunner.Block}); stateless random ops (LoRA dropout)
 * draw the same masks in the copy. One instance records the blocks of one training graph.
 */
public final class Recompute implements BlockRunner {
  private record Block(
      int layer,
      Output<TFloat32> input,
      Output<TFloat32> output,
      BuildContext cx,
      BlockRunner.Block body) {}

  private final List<Block> blocks = new ArrayList<>();
  private final int depth;

  /** Op name prefix of the rebuilt blocks ({@code recompute/...}). */
  public static final String SCOPE = "recompute";

  /** Every block recomputed. */
  public Recompute() {
    this(Integer.MAX_VALUE);
  }

  /**
   * The blocks below layer {@code depth} recomputed; the blocks from {@code depth} up are built
   * plainly and keep their activations for the backward pass, which differentiates them with the
   * part of the graph above the blocks (selective recomputation: less time, more memory).
   */
  public Recompute(int depth) {
    if (depth < 0) {
      throw new IllegalArgumentException("recompute depth must be >= 0, got " + depth);
    }
    this.depth = depth;
  }

  @Override
  public Operand<TFloat32> run(
      BuildContext cx, int layer, Operand<TFloat32> x, BlockRunner.Block body) {
    Operand<TFloat32> y = body.build(cx, x);
    if (layer < depth) {
      blocks.add(new Block(layer, x.asOutput(), y.asOutput(), cx.withBlocks(PLAIN), body));
    }
    return y;
  }

  /** The recorded blocks' inputs, in the order they were built (what the backward pass keeps). */
  public List<Output<TFloat32>> inputs() {
    return blocks.stream().map(Block::input).toList();
  }

  /** The recorded blocks' outputs, in the order they were built. */
  public List<Output<TFloat32>> outputs() {
    return blocks.stream().map(Block::output).toList();
  }

  /**
   * The gradients of {@code loss} with respect to {@code vars}, in their order, with the recorded
   * blocks recomputed in the backward pass. A variable the loss does not depend on gets zeros.
   *
   * @param tf ops of the graph the forward was built in
   * @param loss a scalar
   * @param vars the trainable variables (or any float tensors the forward reads)
   */
  public List<Operand<TFloat32>> gradients(
      Ops tf, Operand<TFloat32> loss, List<? extends Operand<TFloat32>> vars) {
    Graph graph = (Graph) tf.scope().env();
    Map<String, Integer> varIndex = new HashMap<>();
    for (int i = 0; i < vars.size(); i++) {
      varIndex.put(key(vars.get(i).asOutput()), i);
    }
    Set<String> boundaries = new HashSet<>();
    Map<String, Output<?>> boundaryOutputs = new HashMap<>();
    Set<String> producedByBlock = new HashSet<>();
    for (Block b : blocks) {
      boundaries.add(key(b.input()));
      boundaries.add(key(b.output()));
      boundaryOutputs.put(key(b.input()), b.input());
      boundaryOutputs.put(key(b.output()), b.output());
      producedByBlock.add(key(b.output()));
    }
    Set<String> needsGradient = dependsOn(vars);
    Map<String, List<Operand<TFloat32>>> boundaryGrads = new HashMap<>();
    List<List<Operand<TFloat32>>> varGrads = new ArrayList<>();
    for (int i = 0; i < vars.size(); i++) {
      varGrads.add(new ArrayList<>());
    }
    // 1. Above the blocks.
    backprop(
        graph,
        tf,
        loss.asOutput(),
        null,
        boundaries,
        boundaryOutputs,
        varIndex,
        vars,
        boundaryGrads,
        varGrads,
        "top");
    // 2. The blocks, from the top; 3. what lies below a block's input that no block produced.
    Set<String> glued = new HashSet<>();
    for (int bi = blocks.size() - 1; bi >= 0; bi--) {
      Block b = blocks.get(bi);
      List<Operand<TFloat32>> dys = boundaryGrads.get(key(b.output()));
      if (dys != null) {
        recompute(graph, b, sum(tf, dys), needsGradient, varIndex, vars, boundaryGrads, varGrads);
      }
      String in = key(b.input());
      if (!producedByBlock.contains(in) && !glued.contains(in) && !usedBelow(bi, in)) {
        glued.add(in);
        List<Operand<TFloat32>> dx = boundaryGrads.get(in);
        if (dx != null && needsGradient.contains(b.input().op().name())) {
          backprop(
              graph,
              tf,
              b.input(),
              sum(tf, dx),
              boundaries,
              boundaryOutputs,
              varIndex,
              vars,
              boundaryGrads,
              varGrads,
              "below_" + b.layer());
        }
      }
    }
    List<Operand<TFloat32>> out = new ArrayList<>();
    for (int i = 0; i < vars.size(); i++) {
      List<Operand<TFloat32>> g = varGrads.get(i);
      out.add(g.isEmpty() ? tf.zerosLike(vars.get(i)) : sum(tf, g));
    }
    return out;
  }

  /** Whether a block recorded before block {@code bi} reads the same input. */
  private boolean usedBelow(int bi, String input) {
    for (int j = 0; j < bi; j++) {
      if (key(blocks.get(j).input()).equals(input)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Rebuilds block {@code b} after its output's gradient {@code dy} and differentiates the copy.
   */
  private void recompute(
      Graph graph,
      Block b,
      Operand<TFloat32> dy,
      Set<String> needsGradient,
      Map<String, Integer> varIndex,
      List<? extends Operand<TFloat32>> vars,
      Map<String, List<Operand<TFloat32>>> boundaryGrads,
      List<List<Operand<TFloat32>>> varGrads) {
    // The variables the block reads (the copy reads the same ones).
    boolean wantInput = needsGradient.contains(b.input().op().name());
    if (!reach(b.output(), Set.of(key(b.input())), varIndex).readsVariables() && !wantInput) {
      return; // nothing trained in or below this block: not rebuilt
    }
    Ops gated =
        b.cx()
            .tf()
            .withSubScope(SCOPE)
            .withSubScope("block" + b.layer())
            .withControlDependencies(List.<Op>of(dy));
    Operand<TFloat32> x = gated.identity(b.input());
    Operand<TFloat32> y = b.body().build(b.cx().with(gated), x);
    Reached r = reach(y.asOutput(), Set.of(key(x.asOutput())), varIndex);
    List<Output<?>> xs = new ArrayList<>();
    if (wantInput) {
      xs.add(x.asOutput());
      checkCut(xs, r.reads());
    }
    for (Read read : r.reads()) {
      xs.add(read.x());
    }
    Output<?>[] grads =
        graph.addGradients(
            prefix(gated, "grad"),
            new Output<?>[] {y.asOutput()},
            xs.toArray(new Output<?>[0]),
            new Output<?>[] {dy.asOutput()});
    int next = 0;
    if (wantInput) {
      boundaryGrads
          .computeIfAbsent(key(b.input()), k -> new ArrayList<>())
          .add(cast(grads[next++]));
    }
    for (Read read : r.reads()) {
      varGrads.get(read.var()).add(cast(grads[next++]));
    }
  }

  /**
   * Differentiates the graph between {@code y} (with initial gradient {@code dy}, null for a scalar
   * loss) and the boundaries and variables it reaches without passing a boundary.
   */
  private static void backprop(
      Graph graph,
      Ops tf,
      Output<?> y,
      Operand<TFloat32> dy,
      Set<String> boundaries,
      Map<String, Output<?>> boundaryOutputs,
      Map<String, Integer> varIndex,
      List<? extends Operand<TFloat32>> vars,
      Map<String, List<Operand<TFloat32>>> boundaryGrads,
      List<List<Operand<TFloat32>>> varGrads,
      String name) {
    Set<String> stop = new HashSet<>(boundaries);
    stop.remove(key(y));
    Reached r = reach(y, stop, varIndex);
    List<Output<?>> xs = new ArrayList<>();
    for (String k : r.boundaries()) {
      xs.add(boundaryOutputs.get(k));
    }
    checkCut(new ArrayList<>(xs), r.reads());
    for (Read read : r.reads()) {
      xs.add(read.x());
    }
    if (xs.isEmpty()) {
      return;
    }
    Ops scoped = tf.withSubScope(SCOPE);
    Output<?>[] grads =
        graph.addGradients(
            prefix(scoped, name),
            new Output<?>[] {y},
            xs.toArray(new Output<?>[0]),
            dy == null ? null : new Output<?>[] {dy.asOutput()});
    int next = 0;
    for (String k : r.boundaries()) {
      Output<?> g = grads[next++];
      if (g != null) {
        boundaryGrads.computeIfAbsent(k, kk -> new ArrayList<>()).add(cast(g));
      }
    }
    for (Read read : r.reads()) {
      Output<?> g = grads[next++];
      if (g != null) {
        varGrads.get(read.var()).add(cast(g));
      }
    }
  }

  /** A read of variable {@code var} in a segment: the tensor to differentiate with respect to. */
  private record Read(int var, Output<?> x) {}

  private record Reached(List<String> boundaries, List<Read> reads) {
    boolean readsVariables() {
      return !reads.isEmpty();
    }
  }

  /**
   * The boundaries (keys in {@code stop}) and variables that {@code from} reads through float
   * tensors, not looking past a boundary: where a gradient from {@code from} can flow (integer
   * tensors such as shapes, positions and masks carry none). A variable read through an {@code
   * Identity} (LoRA's adapters, a tied LM head) is differentiated at that read, so that its other
   * uses (in other segments) stay out of this segment's gradient.
   */
  private static Reached reach(Output<?> from, Set<String> stop, Map<String, Integer> varIndex) {
    Set<String> foundBoundaries = new LinkedHashSet<>();
    Map<String, Read> reads = new java.util.LinkedHashMap<>();
    Set<String> seen = new HashSet<>();
    Deque<GraphOperation> todo = new ArrayDeque<>();
    todo.push((GraphOperation) from.op());
    seen.add(from.op().name());
    while (!todo.isEmpty()) {
      GraphOperation op = todo.pop();
      for (Operand<?> in : op.inputs()) {
        Output<?> o = in.asOutput();
        String k = key(o);
        Integer v = varIndex.get(k);
        if (v != null) {
          Output<?> x = op.type().equals("Identity") && op.numInputs() == 1 ? op.output(0) : o;
          reads.putIfAbsent(key(x), new Read(v, x));
          continue;
        }
        if (!isFloat(o.dataType())) {
          continue;
        }
        if (stop.contains(k)) {
          foundBoundaries.add(k);
          continue;
        }
        if (seen.add(o.op().name())) {
          todo.push((GraphOperation) o.op());
        }
      }
    }
    return new Reached(new ArrayList<>(foundBoundaries), new ArrayList<>(reads.values()));
  }

  /**
   * Refuses a segment whose variable read lies below one of its boundaries too (a variable read
   * directly on both sides of a block): TensorFlow would differentiate it through the original
   * blocks, reading their activations and counting the lower part twice.
   */
  private static void checkCut(List<Output<?>> boundaries, List<Read> reads) {
    if (boundaries.isEmpty() || reads.isEmpty()) {
      return;
    }
    Set<String> below = new HashSet<>();
    Deque<GraphOperation> todo = new ArrayDeque<>();
    for (Output<?> b : boundaries) {
      if (below.add(b.op().name())) {
        todo.push((GraphOperation) b.op());
      }
    }
    while (!todo.isEmpty()) {
      for (Operand<?> in : todo.pop().inputs()) {
        if (below.add(in.op().name())) {
          todo.push((GraphOperation) in.op());
        }
      }
    }
    for (Read r : reads) {
      if (below.contains(r.x().op().name())) {
        throw new IllegalStateException(
            "cannot recompute: "
                + r.x().op().name()
                + " is read directly both above and below a recomputed block; read it through an"
                + " Identity per use");
      }
    }
  }

  /** Names of the ops that read one of {@code vars}, directly or through other ops. */
  private static Set<String> dependsOn(List<? extends Operand<TFloat32>> vars) {
    Set<String> seen = new HashSet<>();
    Deque<GraphOperation> todo = new ArrayDeque<>();
    for (Operand<TFloat32> v : vars) {
      GraphOperation op = (GraphOperation) v.op();
      if (seen.add(op.name())) {
        todo.push(op);
      }
    }
    while (!todo.isEmpty()) {
      for (GraphOperation c : todo.pop().consumers()) {
        if (seen.add(c.name())) {
          todo.push(c);
        }
      }
    }
    return seen;
  }

  private static boolean isFloat(DataType t) {
    return switch (t) {
      case DT_FLOAT, DT_BFLOAT16, DT_HALF, DT_DOUBLE, DT_FLOAT_REF, DT_BFLOAT16_REF -> true;
      default -> false;
    };
  }

  private static String prefix(Ops tf, String name) {
    return tf.scope().makeOpName(name);
  }

  private static Operand<TFloat32> sum(Ops tf, List<Operand<TFloat32>> parts) {
    return parts.size() == 1 ? parts.get(0) : tf.math.addN(parts);
  }

  @SuppressWarnings("unchecked")
  private static Operand<TFloat32> cast(Output<?> o) {
    return (Operand<TFloat32>) o;
  }

  private static String key(Output<?> o) {
    return o.op().name() + ":" + o.index();
  }

  /** Blocks recorded so far. */
  public int size() {
    return blocks.size();
  }
}
