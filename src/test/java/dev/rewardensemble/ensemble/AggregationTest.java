package dev.rewardensemble.ensemble;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.testing.Runs;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/** Each aggregation rule in a graph against the same rule in plain Java. */
class AggregationTest {

  @Test
  void plainJavaValuesAndPopulationStd() {
    float[] r = {1, 2, 3, 6};
    assertEquals(3.0, Aggregation.mean(r), 0);
    assertEquals(3.5, Aggregation.variance(r), 1e-12); // (4 + 1 + 0 + 9) / 4, divisor K
    assertEquals(Math.sqrt(3.5), Aggregation.std(r), 1e-12);
    assertEquals(1.0, Aggregation.min(r), 0);
    assertEquals(3.0, AggregationConfig.mean().apply(r), 0);
    assertEquals(3.0 - 2 * Math.sqrt(3.5), AggregationConfig.lcb(2).apply(r), 1e-12);
    assertEquals(1.0, AggregationConfig.min().apply(r), 0);
    assertEquals(3.0 - 0.5 * 3.5, AggregationConfig.uwo(0.5).apply(r), 1e-12);
  }

  @Test
  void graphMatchesPlainJava() {
    int b = 5;
    int k = 4;
    Random rnd = new Random(7);
    float[] data = new float[b * k];
    for (int i = 0; i < data.length; i++) {
      data[i] = (float) rnd.nextGaussian();
    }
    List<AggregationConfig> rules =
        List.of(
            AggregationConfig.mean(),
            AggregationConfig.lcb(1.5),
            AggregationConfig.min(),
            AggregationConfig.uwo(0.7));
    try (Graph g = new Graph();
        Session s = new Session(g)) {
      Ops tf = Ops.create(g);
      var in =
          tf.placeholder(TFloat32.class, org.tensorflow.op.core.Placeholder.shape(Shape.of(-1, k)));
      List<Operand<TFloat32>> outs = new java.util.ArrayList<>();
      rules.forEach(rule -> outs.add(rule.apply(tf, in)));
      outs.add(Aggregation.std(tf, in));
      try (TFloat32 t = TFloat32.tensorOf(Shape.of(b, k), DataBuffers.of(data, true, false))) {
        Session.Runner runner = s.runner().feed(in, t);
        outs.forEach(runner::fetch);
        try (Result res = runner.run()) {
          for (int i = 0; i <= rules.size(); i++) {
            float[] got = Runs.read((TFloat32) res.get(i));
            assertEquals(b, got.length);
            for (int row = 0; row < b; row++) {
              float[] members = java.util.Arrays.copyOfRange(data, row * k, (row + 1) * k);
              double want =
                  i < rules.size() ? rules.get(i).apply(members) : Aggregation.std(members);
              String what = (i < rules.size() ? rules.get(i).toString() : "std") + " row " + row;
              assertEquals(want, got[row], 1e-5 * Math.abs(want) + 1e-6, what);
            }
          }
        }
      }
    }
  }

  @Test
  void configsAreValidated() {
    assertTrue(
        assertThrows(IllegalArgumentException.class, () -> AggregationConfig.lcb(-1))
            .getMessage()
            .contains("-1"));
    assertTrue(
        assertThrows(IllegalArgumentException.class, () -> AggregationConfig.uwo(Double.NaN))
            .getMessage()
            .contains("lambda"));
    assertTrue(
        assertThrows(
                IllegalArgumentException.class, () -> new AggregationConfig(Aggregation.MEAN, 1, 0))
            .getMessage()
            .contains("MEAN does not use beta"));
    assertThrows(IllegalArgumentException.class, () -> Aggregation.mean(new float[0]));
  }
}
