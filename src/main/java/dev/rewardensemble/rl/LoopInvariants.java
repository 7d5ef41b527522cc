package dev.rewardensemble.rl;

import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.List;
import org.tensorflow.Graph;
import org.tensorflow.GraphOperation;
import org.tensorflow.Operand;
import org.tensorflow.Output;
import org.tensorflow.internal.c_api.TF_Graph;
import org.tensorflow.internal.c_api.TF_Input;
import org.tensorflow.internal.c_api.TF_Output;
import org.tensorflow.internal.c_api.TF_Status;
import org.tensorflow.internal.c_api.global.tensorflow;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.family.TType;

/**
 * Tensors that a {@code While} loop's body reads but never changes (a decode loop's weights),
 * entered into the loop's frame once, as TensorFlow's own {@code tf.while_loop} enters captured
 * tensors: an {@code Enter} op with {@code is_constant} set, whose output every iteration sees.
 *
 * <p>TensorFlow Java's {@link Graph#whileLoop} builds the body in a graph of its own, which can
 * reach outside tensors only as loop variables; but a loop variable costs four executed ops per
 * iteration ({@code Merge}, {@code Switch}, {@code Identity}, {@code NextIteration}), which on a
 * small model's decode step were a quarter of the step's ops (4 x 39 weights of a 4-block Llama; 4
 * x 148 at GPT-2 124M). So the body reads each invariant from a {@code Placeholder} of its shape
 * and dtype (named {@link #placeholderName}), and once the loop is built, {@link #bind} re-points
 * every reader of the (copied) placeholder to an {@code Enter} of the outside tensor into the
 * loop's frame ({@code TF_UpdateEdge}). The placeholders are then read by nothing: a run prunes
 * them.
 */
final class LoopInvariants {
  private LoopInvariants() {}

  /** Name of the body's stand-in for invariant {@code i}, in the body graph. */
  static String placeholderName(int i) {
    return "invariant_" + i;
  }

  /**
   * Stand-ins for {@code values} in the loop body {@code body}: a placeholder of each value's dtype
   * and static shape, to be re-pointed by {@link #bind} once the loop is built.
   */
  static List<Operand<?>> standIns(Ops body, List<Operand<?>> values) {
    List<Operand<?>> out = new ArrayList<>(values.size());
    for (int i = 0; i < values.size(); i++) {
      Operand<?> v = values.get(i);
      out.add(standIn(body, placeholderName(i), v));
    }
    return out;
  }

  private static <T extends TType> Operand<T> standIn(Ops body, String name, Operand<?> v) {
    @SuppressWarnings("unchecked")
    Class<T> type = (Class<T>) v.type();
    return body.withName(name).placeholder(type, Placeholder.shape(v.shape()));
  }

  /**
   * Re-points the readers of the body's stand-ins to the outside tensors {@code values} (by
   * stand-in index, see {@link #placeholderName}), entered once into the frame of the loop whose
   * outputs are {@code loopOutputs} (its {@code Exit} ops).
   *
   * @param tf ops of the outer graph (where the {@code Enter} ops go)
   */
  static void bind(Graph graph, Ops tf, Output<?>[] loopOutputs, List<Operand<?>> values) {
    String exit = loopOutputs[0].op().name(); // <loop>/Exit...
    String loopName = exit.substring(0, exit.lastIndexOf('/'));
    GraphOperation enter = anEnter(loopOutputs[0]);
    String frame = enter.attributes().getAttrString("frame_name");
    long parallel = enter.attributes().getAttrInt("parallel_iterations");
    TF_Graph handle = nativeHandle(graph);
    for (int i = 0; i < values.size(); i++) {
      GraphOperation stand =
          (GraphOperation) graph.operation(loopName + "/body/" + placeholderName(i));
      if (stand == null || !stand.type().equals("Placeholder")) {
        throw new IllegalStateException(
            "the loop body has no placeholder " + loopName + "/body/" + placeholderName(i));
      }
      Output<?> entered =
          tf.scope()
              .opBuilder("Enter", "Enter")
              .addInput(values.get(i).asOutput())
              .setAttr("frame_name", frame)
              .setAttr("is_constant", true)
              .setAttr("parallel_iterations", parallel)
              .build()
              .output(0);
      for (GraphOperation reader : new ArrayList<>(stand.consumers(0))) {
        for (int j = 0; j < reader.numInputs(); j++) {
          Output<?> in = reader.input(j);
          if (in.op().name().equals(stand.name()) && in.index() == 0) {
            updateEdge(handle, (GraphOperation) entered.op(), reader, j);
          }
        }
      }
      if (stand.numConsumers(0) != 0) {
        throw new IllegalStateException(stand.name() + " is still read after re-pointing");
      }
    }
  }

  /**
   * An {@code Enter} op of the loop an {@code Exit} belongs to: Exit <- Switch <- Merge <- Enter.
   */
  private static GraphOperation anEnter(Output<?> exit) {
    GraphOperation sw = (GraphOperation) ((GraphOperation) exit.op()).input(0).op();
    GraphOperation merge = (GraphOperation) sw.input(0).op();
    for (int i = 0; i < merge.numInputs(); i++) {
      GraphOperation in = (GraphOperation) merge.input(i).op();
      if (in.type().equals("Enter")) {
        return in;
      }
    }
    throw new IllegalStateException("no Enter op found for loop output " + exit.op().name());
  }

  private static void updateEdge(TF_Graph g, GraphOperation src, GraphOperation dst, int index) {
    try (TF_Output out = new TF_Output();
        TF_Input in = new TF_Input()) {
      out.oper(src.getUnsafeNativeHandle()).index(0);
      in.oper(dst.getUnsafeNativeHandle()).index(index);
      TF_Status status = TF_Status.newStatus();
      try {
        tensorflow.TF_UpdateEdge(g, out, in, status);
        status.throwExceptionIfNotOK();
      } finally {
        status.delete();
      }
    }
  }

  /** The native graph of {@code graph} (TensorFlow Java keeps it private). */
  private static TF_Graph nativeHandle(Graph graph) {
    try {
      Field f = Graph.class.getDeclaredField("nativeHandle");
      f.setAccessible(true);
      return (TF_Graph) f.get(graph);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("cannot reach TensorFlow's native graph", e);
    }
  }
}
