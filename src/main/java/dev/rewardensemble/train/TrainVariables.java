package dev.rewardensemble.train;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.tensorflow.Graph;
import org.tensorflow.GraphOperationBuilder;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Variable;
import org.tensorflow.proto.DataType;
import org.tensorflow.types.TFloat32;

/**
 * Helpers shared by the training-state builders ({@link AdamW}, {@link GradientAccumulator}).
 *
 * <p>Why {@link #zeros}: optimizer state must carry predictable names ({@code <varName>/adam_m}) so
 * that checkpoints can find it, but TF Java's name scopes reject {@code '/'} in {@code withName}
 * and silently uniquify sub-scopes ({@code withSubScope("w")} becomes {@code "w_1"} once an op
 * {@code "w"} exists). The variable is therefore built with the exact name through {@link
 * Graph#opBuilder}.
 */
public final class TrainVariables {
  private TrainVariables() {}

  /**
   * Creates a float32 {@code VariableV2} named exactly {@code name} (no scope prefix, no
   * uniquifying) with a zero initial value. The initialiser lives in the init scope, so it runs on
   * the first {@code Session.run} (or on the first run after it was added) and never again.
   *
   * @param tf the ops of the graph (its device is kept; its name scope and control dependencies are
   *     not)
   * @param name the full graph name, e.g. {@code "score/weight/adam_m"}
   * @param shape a fully defined shape
   * @throws IllegalArgumentException if the shape is not fully defined, or the name is taken
   */
  public static Variable<TFloat32> zeros(Ops tf, String name, Shape shape) {
    if (shape.isUnknown() || shape.hasUnknownDimension()) {
      throw new IllegalArgumentException(
          "variable " + name + " needs a fully defined shape, got " + shape);
    }
    if (!(tf.scope().env() instanceof Graph graph)) {
      throw new IllegalArgumentException(
          "training variables need graph mode, got " + tf.scope().env());
    }
    if (graph.operation(name) != null) {
      throw new IllegalArgumentException("graph already has an operation named " + name);
    }
    Ops init = tf.withInitScope();
    GraphOperationBuilder builder = graph.opBuilder(Variable.OP_NAME, name, init.scope());
    builder.setAttr("shape", shape).setAttr("dtype", DataType.DT_FLOAT);
    Variable<TFloat32> variable = new Variable<>(builder.build());
    init.assign(variable, init.zeros(init.constant(shape.asArray()), TFloat32.class));
    return variable;
  }

  /** The graph name of a variable (its operation's name). */
  public static String name(Variable<?> variable) {
    return variable.op().name();
  }

  /**
   * Checks a variable/gradient pairing: same length, no duplicate variable, fully defined float
   * shapes, and gradient shapes compatible with the variable shapes (an unknown gradient dimension
   * is accepted).
   */
  static void checkPairs(
      String what, List<Variable<TFloat32>> vars, List<? extends Operand<TFloat32>> grads) {
    if (vars.isEmpty()) {
      throw new IllegalArgumentException(what + ": the variable list is empty");
    }
    if (vars.size() != grads.size()) {
      throw new IllegalArgumentException(
          what + ": " + vars.size() + " variables but " + grads.size() + " gradients");
    }
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < vars.size(); i++) {
      Variable<TFloat32> v = vars.get(i);
      Operand<TFloat32> g = grads.get(i);
      if (v == null || g == null) {
        throw new IllegalArgumentException(what + ": null variable or gradient at index " + i);
      }
      String name = name(v);
      if (!seen.add(name)) {
        throw new IllegalArgumentException(what + ": variable " + name + " is listed twice");
      }
      Shape vs = v.shape();
      if (vs.isUnknown() || vs.hasUnknownDimension()) {
        throw new IllegalArgumentException(
            what + ": variable " + name + " needs a fully defined shape, got " + vs);
      }
      if (!compatible(vs, g.shape())) {
        throw new IllegalArgumentException(
            what + ": gradient of " + name + " has shape " + g.shape() + ", variable has " + vs);
      }
    }
  }

  private static boolean compatible(Shape a, Shape b) {
    if (a.isUnknown() || b.isUnknown()) {
      return true;
    }
    if (a.numDimensions() != b.numDimensions()) {
      return false;
    }
    for (int d = 0; d < a.numDimensions(); d++) {
      long x = a.get(d);
      long y = b.get(d);
      if (x >= 0 && y >= 0 && x != y) {
        return false;
      }
    }
    return true;
  }
}
