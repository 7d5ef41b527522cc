package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gradients;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

/**
 * The diversity regulariser's value is the nuclear norm of the members' normalised stacked {@code
 * lora_A}, and its assembled gradient (forward Svd, {@code U V^T} held constant) is that norm's
 * gradient: compared with central finite differences of the norm itself.
 */
class LoraDiversityTest {
  @Test
  void surrogateHasTheNuclearNormsValueAndGradient() {
    int k = 3;
    int in = 5;
    int r = 2;
    float[] a = new float[k * in * r];
    SplittableRandom rng = new SplittableRandom(3);
    for (int i = 0; i < a.length; i++) {
      a[i] = (float) rng.nextGaussian();
    }
    try (Graph g = new Graph();
        Session s = new Session(g)) {
      Ops tf = Ops.create(g);
      Placeholder<TFloat32> x =
          tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(k, in, r)));
      Operand<TFloat32> norm = LoraDiversity.nuclearNorm(tf, x);
      Operand<TFloat32> sur = LoraDiversity.surrogate(tf, x);
      Gradients grad = tf.gradients(sur, List.of(x));
      float[] value;
      float[] gradient;
      try (TFloat32 t = Tensors.of(Shape.of(k, in, r), a);
          Result res = s.runner().feed(x, t).fetch(norm).fetch(sur).fetch(grad.dy(0)).run()) {
        value = new float[] {Tensors.scalar(res.get(0)), Tensors.scalar(res.get(1))};
        gradient = Tensors.floats(res.get(2));
      }
      assertEquals(value[0], value[1], 1e-5, "surrogate value = nuclear norm");
      assertTrue(value[0] > 1 && value[0] < k, "between parallel (1) and orthogonal (K)");
      double eps = 1e-2;
      for (int i = 0; i < a.length; i += 3) {
        float[] plus = a.clone();
        float[] minus = a.clone();
        plus[i] += (float) eps;
        minus[i] -= (float) eps;
        double fd =
            (eval(s, x, norm, k, in, r, plus) - eval(s, x, norm, k, in, r, minus)) / (2 * eps);
        assertEquals(fd, gradient[i], 2e-3, "d||M||_*/da[" + i + "]");
      }
    }
  }

  private static double eval(
      Session s, Placeholder<TFloat32> x, Operand<TFloat32> norm, int k, int in, int r, float[] a) {
    try (TFloat32 t = Tensors.of(Shape.of(k, in, r), a);
        Result res = s.runner().feed(x, t).fetch(norm).run()) {
      return Tensors.scalar(res.get(0));
    }
  }
}
