package dev.rewardensemble.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.testing.Fixtures;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gradients;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/** Every parameter of the graphs has a gradient in TF Java's C++ registry, matching torch. */
class GradientTest {
  @Test
  void bradleyTerryGradientNormsMatchTorch() throws Exception {
    JsonNode e = Fixtures.expected("llama-bt-step");
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(Fixtures.dir("llama-seqcls"));
    int[][] c = Fixtures.ints2(e.get("chosen_ids"));
    int[][] cm = Fixtures.ints2(e.get("chosen_mask"));
    int[][] r = Fixtures.ints2(e.get("rejected_ids"));
    int[][] rm = Fixtures.ints2(e.get("rejected_mask"));
    int b = c.length;
    int[][] ids = new int[2 * b][];
    int[][] mask = new int[2 * b][];
    for (int i = 0; i < b; i++) {
      ids[i] = c[i];
      ids[b + i] = r[i];
      mask[i] = cm[i];
      mask[b + i] = rm[i];
    }
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      RewardGraph rg =
          RewardGraph.build(
              tf,
              ckpt.config(),
              1,
              p,
              Projector.NONE,
              dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
      Operand<TFloat32> rew = tf.reshape(rg.rewards(), tf.constant(new int[] {2, b}));
      Operand<TFloat32> diff =
          tf.math.sub(
              tf.reshape(
                  tf.stridedSlice(rew, org.tensorflow.ndarray.index.Indices.at(0)),
                  tf.constant(new int[] {b})),
              tf.reshape(
                  tf.stridedSlice(rew, org.tensorflow.ndarray.index.Indices.at(1)),
                  tf.constant(new int[] {b})));
      Operand<TFloat32> loss = tf.math.mean(tf.math.softplus(tf.math.neg(diff)), tf.constant(0));
      List<String> names = p.names();
      List<Operand<?>> vars = new ArrayList<>();
      names.forEach(n -> vars.add(p.variable(n)));
      Gradients grads = tf.gradients(loss, vars);
      try (Session s = new Session(g)) {
        p.load(s, ckpt.weights(), false, "llama-seqcls");
        try (TInt32 idT = HfReferenceTest.tensor(ids);
            TInt32 mT = HfReferenceTest.tensor(mask)) {
          Session.Runner run =
              s.runner().feed(rg.inputIds(), idT).feed(rg.attentionMask(), mT).fetch(loss);
          for (int i = 0; i < names.size(); i++) {
            run.fetch(grads.dy(i));
          }
          try (Result res = run.run()) {
            float l = HfReferenceTest.read((TFloat32) res.get(0))[0];
            assertEquals(e.get("loss").asDouble(), l, 1e-4 * Math.abs(e.get("loss").asDouble()));
            JsonNode norms = e.get("grad_norms");
            assertEquals(norms.size(), names.size());
            for (int i = 0; i < names.size(); i++) {
              float[] gr = HfReferenceTest.read((TFloat32) res.get(i + 1));
              double sq = 0;
              for (float v : gr) {
                sq += (double) v * v;
              }
              double want = norms.get(names.get(i)).asDouble();
              assertTrue(
                  Math.abs(Math.sqrt(sq) - want) <= 1e-4 * want + 1e-6,
                  names.get(i) + ": grad norm " + Math.sqrt(sq) + " vs torch " + want);
            }
          }
        }
      }
    }
  }
}
