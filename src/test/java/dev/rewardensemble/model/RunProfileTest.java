package dev.rewardensemble.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.proto.NodeExecStats;
import org.tensorflow.types.TFloat32;

class RunProfileTest {

  @Test
  void opTypeIsReadFromTheTimelineLabel() {
    assertEquals(
        "MatMul",
        RunProfile.opType(
            NodeExecStats.newBuilder()
                .setNodeName("block_0/q")
                .setTimelineLabel("block_0/q = MatMul(x, w)")
                .build()));
    assertEquals(
        "_SOURCE", RunProfile.opType(NodeExecStats.newBuilder().setNodeName("_SOURCE").build()));
  }

  /** While started, runs are traced and their nodes counted by op type; stopped, nothing is. */
  @Test
  void tracesRunsOnlyWhileStarted() {
    try (Graph g = new Graph();
        Session s = new Session(g)) {
      Ops tf = Ops.create(g);
      // fed, so that nothing is folded into a constant before it runs
      Operand<TFloat32> a = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(64, 64)));
      Operand<TFloat32> y = tf.math.tanh(tf.linalg.matMul(a, a));
      RunProfile.start();
      try (TFloat32 x = TFloat32.tensorOf(Shape.of(64, 64))) {
        for (int i = 0; i < 3; i++) {
          try (Result r = RunProfile.run(s.runner().feed(a, x).fetch(y))) {
            assertEquals(64 * 64, r.get(0).shape().size());
          }
        }
      } finally {
        RunProfile.stop();
      }
      assertEquals(3, RunProfile.runs());
      List<RunProfile.OpTime> top = RunProfile.top(50);
      RunProfile.OpTime mm = // MatMul, or oneDNN's rewrite of it
          top.stream()
              .filter(t -> t.op().endsWith("MatMul"))
              .findFirst()
              .orElseThrow(() -> new AssertionError(top.toString()));
      assertEquals(3, mm.nodes(), top.toString());
      assertTrue(top.stream().anyMatch(t -> t.op().equals("Tanh")), top.toString());
      double shares = top.stream().mapToDouble(RunProfile.OpTime::share).sum();
      assertEquals(1.0, shares, 1e-9);
      // stopped: a run is plain and adds nothing
      try (TFloat32 x = TFloat32.tensorOf(Shape.of(64, 64));
          Result r = RunProfile.run(s.runner().feed(a, x).fetch(y))) {
        assertEquals(64 * 64, r.get(0).shape().size());
      }
      assertEquals(3, RunProfile.runs());
    }
  }
}
