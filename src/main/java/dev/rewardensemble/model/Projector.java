package dev.rewardensemble.model;

import java.util.ArrayList;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.family.TFloating;

/**
 * A hook around every weight projection of a trunk, so that LoRA can adapt the frozen base
 * projection without the model families knowing about it (PEFT's wrapper pattern). The family
 * passes the input rows and the base weights of the projections of a block that read the same rows
 * (Llama's q/k/v, its gate/up; one module otherwise); the projector computes the products (the
 * family adds biases afterwards). Products are in the input rows' dtype ({@link
 * Layers#activations}).
 */
public interface Projector {

  /** How a checkpoint stores a projection weight. */
  enum Layout {
    /** torch {@code nn.Linear}: {@code [out, in]}, applied as {@code x @ w^T} (Llama). */
    LINEAR,
    /** Hugging Face {@code Conv1D}: {@code [in, out]}, applied as {@code x @ w} (GPT-2). */
    CONV1D;

    /**
     * The plain product {@code [rows, in] x w -> [rows, out]}, in {@code x}'s dtype and the
     * context's precision ({@link Layers#matMul}).
     */
    public <T extends TFloating> Operand<T> apply(
        BuildContext cx, Operand<T> x, Operand<TFloat32> w) {
      return Layers.matMul(cx, x, w, this == LINEAR);
    }
  }

  /**
   * The projections of block {@code layer} that read the same rows {@code x}.
   *
   * @param modules Hugging Face module keys, e.g. {@code model.layers.0.self_attn.q_proj}
   * @param x input rows {@code [rows, in]}
   * @param weights the modules' base weights, in the order of {@code modules}, stored as {@code
   *     layout} says
   * @param fork null, or the members that share {@code x}: the first projections of the block where
   *     the trunk forks into members ({@link Members#fromLayer()}), whose input no member-specific
   *     weight has touched yet; {@code x} is then the batch's rows once and each output {@code
   *     [K*rows, out]}, member-major, what {@code members.expand(x)} would give (a projector may
   *     compute the shared part once)
   * @return one output {@code [rows, out]} per module, without bias, in {@code x}'s dtype
   */
  <T extends TFloating> List<Operand<T>> project(
      BuildContext cx,
      int layer,
      List<String> modules,
      Operand<T> x,
      List<Operand<TFloat32>> weights,
      Layout layout,
      Members fork);

  /**
   * Plain products of the base weights ({@code fork}: the batch's product, then copied for every
   * member).
   */
  static <T extends TFloating> List<Operand<T>> plain(
      BuildContext cx, Operand<T> x, List<Operand<TFloat32>> weights, Layout layout, Members fork) {
    List<Operand<T>> out = new ArrayList<>(weights.size());
    for (Operand<TFloat32> w : weights) {
      Operand<T> y = layout.apply(cx, x, w);
      out.add(fork == null ? y : fork.expand(cx.tf(), y));
    }
    return out;
  }

  /** Plain projections. */
  Projector NONE =
      new Projector() {
        @Override
        public <T extends TFloating> List<Operand<T>> project(
            BuildContext cx,
            int layer,
            List<String> modules,
            Operand<T> x,
            List<Operand<TFloat32>> weights,
            Layout layout,
            Members fork) {
          return plain(cx, x, weights, layout, fork);
        }
      };
}
