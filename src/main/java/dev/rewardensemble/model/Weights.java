package dev.rewardensemble.model;

import java.util.Map;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * Where a forward reads its weights: by Hugging Face checkpoint key ({@code
 * model.layers.0.self_attn.q_proj.weight}). Graphs over variables read a {@link ParameterStore}
 * ({@link #of(ParameterStore, Map)}); the body of the in-graph decode loop reads its loop variables
 * ({@link #of(Map)}), because a loop body cannot capture outside tensors.
 */
@FunctionalInterface
public interface Weights {

  /** The weight stored under {@code key}; an unknown key is an error naming it. */
  Operand<TFloat32> get(String key);

  /**
   * These weights, read only once {@code x} (a block's input) has been computed: forwards call it
   * at the top of each block ({@code w = w.after(x)}) so that weights stored in bfloat16 are
   * widened block by block ({@link ParameterStore#value(String, long[], Operand)}). Weights that
   * need no widening return themselves.
   */
  default Weights after(Operand<?> x) {
    return this;
  }

  /**
   * Rows {@code ids} of the weight {@code key} (an embedding lookup), as float32. Weights over a
   * {@link ParameterStore} gather in the variable's storage dtype and widen only the rows.
   */
  default Operand<TFloat32> rows(Ops tf, String key, Operand<TInt32> ids) {
    return tf.gather(get(key), ids, tf.constant(0));
  }

  /**
   * Rows {@code [start, start + count)} of the matrix {@code key} as float32: for a weight held in
   * bfloat16 ({@link #widened}) only those rows are widened, once this view's gate ({@link #after})
   * has been computed.
   */
  default Operand<TFloat32> rowRange(Ops tf, String key, int start, int count) {
    return tf.slice(
        get(key), tf.constant(new int[] {start, 0}), tf.constant(new int[] {count, -1}));
  }

  /**
   * Rows {@code [start, start + count)} of the matrix {@code t} (float32 or bfloat16) as float32:
   * sliced, then widened when it is bfloat16, both once {@code after} has been computed (null: at
   * once). What {@link #rowRange} does over a store's variables and over the decode loop's tensors.
   */
  static Operand<TFloat32> rowRange(Ops tf, Operand<?> t, int start, int count, Operand<?> after) {
    Ops o =
        after == null
            ? tf
            : tf.withControlDependencies(java.util.List.<org.tensorflow.op.Op>of(after));
    Operand<?> slice =
        o.slice(t, o.constant(new int[] {start, 0}), o.constant(new int[] {count, -1}));
    if (t.type() == TFloat32.class) {
      @SuppressWarnings("unchecked")
      Operand<TFloat32> f = (Operand<TFloat32>) slice;
      return f;
    }
    return o.dtypes.cast(slice, TFloat32.class);
  }

  /**
   * Whether {@code key} is held in bfloat16 and widened to float32 where it is read ({@link #get}
   * then makes a float32 copy of the whole weight).
   */
  default boolean widened(String key) {
    return false;
  }

  /**
   * The variables of {@code p}, created on first use with their shape from {@code shapes}
   * (checkpoint key to shape, e.g. {@link
   * dev.rewardensemble.config.ModelConfig#parameterShapes()}).
   */
  static Weights of(ParameterStore p, Map<String, long[]> shapes) {
    return gated(p, shapes, null);
  }

  private static Weights gated(ParameterStore p, Map<String, long[]> shapes, Operand<?> gate) {
    return new Weights() {
      @Override
      public Operand<TFloat32> get(String key) {
        return p.value(key, shape(key), gate);
      }

      @Override
      public Weights after(Operand<?> x) {
        return gated(p, shapes, x);
      }

      @Override
      public Operand<TFloat32> rows(Ops tf, String key, Operand<TInt32> ids) {
        return p.rows(key, shape(key), ids);
      }

      @Override
      public Operand<TFloat32> rowRange(Ops tf, String key, int start, int count) {
        return p.rowRange(key, shape(key), start, count, gate);
      }

      @Override
      public boolean widened(String key) {
        return p.stored(key, shape(key)).type() != TFloat32.class;
      }

      private long[] shape(String key) {
        long[] shape = shapes.get(key);
        if (shape == null) {
          throw new IllegalArgumentException("the model has no weight '" + key + "'");
        }
        return shape;
      }
    };
  }

  /**
   * Given tensors by key in float32 or bfloat16 (e.g. the loop variables of the decode loop, which
   * carry the variables in their storage dtype): a bfloat16 tensor is widened with {@code tf} where
   * it is used, block by block ({@link #after}), and an embedding lookup gathers its rows before
   * widening, as over a {@link ParameterStore}.
   */
  static Weights widening(Ops tf, Map<String, ? extends Operand<?>> tensors) {
    return widening(tf, tensors, null);
  }

  private static Weights widening(
      Ops tf, Map<String, ? extends Operand<?>> tensors, Operand<?> gate) {
    return new Weights() {
      @Override
      public Operand<TFloat32> get(String key) {
        Operand<?> t = find(key);
        if (t.type() == TFloat32.class) {
          @SuppressWarnings("unchecked")
          Operand<TFloat32> f = (Operand<TFloat32>) t;
          return f;
        }
        Ops o =
            gate == null
                ? tf
                : tf.withControlDependencies(java.util.List.<org.tensorflow.op.Op>of(gate));
        return o.dtypes.cast(t, TFloat32.class);
      }

      @Override
      public Weights after(Operand<?> x) {
        return widening(tf, tensors, x);
      }

      @Override
      public Operand<TFloat32> rowRange(Ops ops, String key, int start, int count) {
        return Weights.rowRange(ops, find(key), start, count, gate);
      }

      @Override
      public boolean widened(String key) {
        return find(key).type() != TFloat32.class;
      }

      @Override
      public Operand<TFloat32> rows(Ops ops, String key, Operand<TInt32> ids) {
        Operand<?> t = find(key);
        if (t.type() == TFloat32.class) {
          return ops.gather(get(key), ids, ops.constant(0));
        }
        return ops.dtypes.cast(ops.gather(t, ids, ops.constant(0)), TFloat32.class);
      }

      private Operand<?> find(String key) {
        Operand<?> t = tensors.get(key);
        if (t == null) {
          throw new IllegalArgumentException("the model has no weight '" + key + "'");
        }
        return t;
      }
    };
  }

  /** Given tensors by key (e.g. loop variables). */
  static Weights of(Map<String, ? extends Operand<TFloat32>> tensors) {
    return key -> {
      Operand<TFloat32> t = tensors.get(key);
      if (t == null) {
        throw new IllegalArgumentException("the model has no weight '" + key + "'");
      }
      return t;
    };
  }
}
