package dev.rewardensemble.bench;

import dev.rewardensemble.config.ExecConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.linalg.MatMul;
import org.tensorflow.types.TFloat32;

/**
 * Hidden entry point for investigating a decode step's weight products (issue #16): the four
 * products of each of {@code LAYERS} GPT-2 blocks ({@code c_attn} {@code in -> 3 in}, {@code
 * c_proj}, {@code c_fc} {@code in -> 4 in}, the MLP's {@code c_proj}), chained as a block chains
 * them, at {@code ROWS} rows (the batch of a decode step), every weight its own variable as in the
 * sampler. A step reads every weight once, so the rate that matters is weight bytes per second,
 * against the memory bandwidth of the machine ({@code scripts/decode_stack_peer.py} prints torch's
 * rate on the same shapes and the bandwidth torch's own two-thread sum reads). Forms, median of
 * rounds that rotate their order: one product per weight on the session's intra-op threads (what
 * the sampler does); the same on one thread; each product split in two halves of its output
 * columns, run at once on two inter-op threads of one intra-op thread each (two cores on two
 * products, for when a library does not share one small product between threads); and {@code x @
 * w^T} of a weight stored {@code [out, in]}.
 *
 * <p>Usage: {@code java -cp CP dev.rewardensemble.bench.DecodeStackProbe [--rows 8] [--layers 12]
 * [--hidden 768] [--reps 30]}.
 */
public final class DecodeStackProbe {
  private DecodeStackProbe() {}

  /** How the products of one measured stack are formed. */
  enum Form {
    ONE_PRODUCT("x @ w, 2 threads", 2, 1),
    ONE_THREAD("x @ w, 1 thread", 1, 1),
    TWO_HALVES("two halves at once", 1, 2),
    TRANSPOSED("x @ w^T, 2 threads", 2, 1);

    final String label;
    final int intra;
    final int inter;

    Form(String label, int intra, int inter) {
      this.label = label;
      this.intra = intra;
      this.inter = inter;
    }
  }

  public static void main(String[] args) throws Exception {
    int rows = 8;
    int layers = 12;
    int hidden = 768;
    int reps = 30;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--rows" -> rows = Integer.parseInt(args[++i]);
        case "--layers" -> layers = Integer.parseInt(args[++i]);
        case "--hidden" -> hidden = Integer.parseInt(args[++i]);
        case "--reps" -> reps = Integer.parseInt(args[++i]);
        default -> {
          System.err.println(
              "usage: DecodeStackProbe [--rows 8] [--layers 12] [--hidden 768] [--reps 30]");
          System.exit(2);
        }
      }
    }
    long weightBytes = 4L * layers * 12L * hidden * hidden;
    System.out.printf(
        Locale.ROOT,
        "decode stack: %d rows, %d blocks of hidden %d, %.1f MB of float32 weights per step%n",
        rows,
        layers,
        hidden,
        weightBytes / 1e6);
    double[][] times = new double[Form.values().length][reps];
    List<Stack> stacks = new ArrayList<>();
    try {
      for (Form f : Form.values()) {
        stacks.add(new Stack(f, rows, layers, hidden));
      }
      for (Stack s : stacks) {
        for (int w = 0; w < 3; w++) {
          s.run();
        }
      }
      for (int r = 0; r < reps; r++) {
        for (int k = 0; k < stacks.size(); k++) {
          int which = (k + r) % stacks.size();
          long t0 = System.nanoTime();
          stacks.get(which).run();
          times[which][r] = (System.nanoTime() - t0) / 1e9;
        }
      }
    } finally {
      for (Stack s : stacks) {
        s.close();
      }
    }
    for (Form f : Form.values()) {
      double t = Timing.median(times[f.ordinal()]);
      System.out.printf(
          Locale.ROOT,
          "  %-22s %8.2f ms  %6.1f GB/s of weights%n",
          f.label,
          t * 1e3,
          weightBytes / t / 1e9);
    }
  }

  /** One form's graph and session (its own, for its own thread counts). */
  private static final class Stack implements AutoCloseable {
    private final Graph graph = new Graph();
    private final Session session;
    private final TFloat32 input;
    private final Placeholder<TFloat32> x;
    private final Operand<TFloat32> out;

    Stack(Form form, int rows, int layers, int hidden) {
      Ops tf = Ops.create(graph);
      x = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(rows, hidden)));
      int[] seed = {1};
      Operand<TFloat32> h = x;
      for (int l = 0; l < layers; l++) {
        Operand<TFloat32> qkv = product(tf, form, h, hidden, 3 * hidden, seed);
        Operand<TFloat32> att =
            tf.slice(qkv, tf.constant(new int[] {0, 0}), tf.constant(new int[] {rows, hidden}));
        Operand<TFloat32> o = tf.math.add(h, product(tf, form, att, hidden, hidden, seed));
        Operand<TFloat32> fc = tf.math.tanh(product(tf, form, o, hidden, 4 * hidden, seed));
        h = tf.math.add(o, product(tf, form, fc, 4 * hidden, hidden, seed));
      }
      out = tf.sum(h, tf.constant(new int[] {0, 1}));
      session = new ExecConfig(form.intra, form.inter, false).newSession(graph);
      input = TFloat32.tensorOf(Shape.of(rows, hidden));
      for (int i = 0; i < rows; i++) {
        for (int j = 0; j < hidden; j++) {
          input.setFloat((float) (0.1 * Math.sin(31.0 * i + j)), i, j);
        }
      }
    }

    void run() {
      session.runner().feed(x, input).fetch(out).run().close();
    }

    @Override
    public void close() {
      input.close();
      session.close();
      graph.close();
    }

    private static Operand<TFloat32> weight(Ops tf, int a, int b, int[] seed) {
      return tf.variable(
          tf.math.mul(
              tf.random.statelessRandomUniform(
                  tf.constant(new int[] {a, b}),
                  tf.constant(new long[] {seed[0]++, 7}),
                  TFloat32.class),
              tf.constant(0.02f)));
    }

    private static Operand<TFloat32> product(
        Ops tf, Form form, Operand<TFloat32> x, int in, int out, int[] seed) {
      return switch (form) {
        case ONE_PRODUCT, ONE_THREAD -> tf.linalg.matMul(x, weight(tf, in, out, seed));
        case TRANSPOSED -> tf.linalg.matMul(x, weight(tf, out, in, seed), MatMul.transposeB(true));
        case TWO_HALVES ->
            tf.concat(
                List.of(
                    tf.linalg.matMul(x, weight(tf, in, out / 2, seed)),
                    tf.linalg.matMul(x, weight(tf, in, out - out / 2, seed))),
                tf.constant(1));
      };
    }
  }
}
