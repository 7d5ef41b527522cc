package dev.rewardensemble.model;

import static dev.rewardensemble.testing.Fixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.testing.Fixtures;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/** The graphs against outputs of Hugging Face transformers on the same weights and inputs. */
class HfReferenceTest {

  @ParameterizedTest
  @ValueSource(strings = {"gpt2-seqcls", "llama-seqcls"})
  void hiddenStatesAndRewardsMatchTransformers(String name) throws Exception {
    JsonNode e = Fixtures.expected(name);
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(Fixtures.dir(name));
    assertEquals(1, ckpt.numLabels());
    int b = ids.length;
    int t = ids[0].length;
    int h = ckpt.config().hiddenSize();
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
      try (Session s = new Session(g)) {
        p.load(s, ckpt.weights(), false, name);
        float[][] out = run(s, rg, List.of(rg.hidden(), rg.rewards()), ids, mask);
        float[] wantHidden = Fixtures.flat(e.get("last_hidden_state"));
        List<Float> want = new ArrayList<>();
        List<Float> got = new ArrayList<>();
        for (int i = 0; i < b; i++) {
          for (int j = 0; j < t; j++) {
            if (mask[i][j] == 1) {
              for (int k = 0; k < h; k++) {
                int idx = (i * t + j) * h + k;
                want.add(wantHidden[idx]);
                got.add(out[0][idx]);
              }
            }
          }
        }
        assertClose(toArray(want), toArray(got), 1e-4, 1e-5, name + " last_hidden_state");
        assertClose(Fixtures.floats(e.get("rewards")), out[1], 1e-4, 1e-5, name + " rewards");
      }
    }
  }

  @Test
  void leftPaddingGivesTheSameRewardsAsRightPadding() throws Exception {
    for (String name : List.of("gpt2-seqcls", "llama-seqcls")) {
      JsonNode e = Fixtures.expected(name);
      int[][] ids = Fixtures.ints2(e.get("input_ids"));
      int[][] mask = Fixtures.ints2(e.get("attention_mask"));
      int t = ids[0].length;
      int[][] lids = new int[ids.length][t];
      int[][] lmask = new int[ids.length][t];
      for (int i = 0; i < ids.length; i++) {
        int len = java.util.Arrays.stream(mask[i]).sum();
        for (int j = 0; j < len; j++) {
          lids[i][t - len + j] = ids[i][j];
          lmask[i][t - len + j] = 1;
        }
      }
      HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(Fixtures.dir(name));
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
        try (Session s = new Session(g)) {
          p.load(s, ckpt.weights(), false, name);
          float[] r = run(s, rg, List.of(rg.rewards()), lids, lmask)[0];
          assertClose(
              Fixtures.floats(e.get("rewards")), r, 1e-4, 1e-5, name + " left-padded rewards");
        }
      }
    }
  }

  @Test
  void causalLmPromptLogitsMatchTransformers() throws Exception {
    JsonNode e = Fixtures.expected("llama-causal");
    int[][] prompt = Fixtures.ints2(e.get("prompt"));
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(Fixtures.dir("llama-causal"));
    assertEquals(HfCheckpoint.Kind.CAUSAL_LM, ckpt.kind());
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      var ids = tf.placeholder(TInt32.class);
      var mask = tf.placeholder(TInt32.class);
      Attention.Geometry geo = Attention.geometry(tf, mask);
      Operand<TFloat32> rows = Transformers.trunk(tf, ckpt.config(), p, ids, geo, Projector.NONE);
      Operand<TFloat32> logits = LmHead.logits(tf, ckpt.config(), p, rows);
      try (Session s = new Session(g)) {
        p.load(s, ckpt.weights(), false, "llama-causal");
        int[][] m = new int[1][prompt[0].length];
        java.util.Arrays.fill(m[0], 1);
        try (TInt32 idT = tensor(prompt);
            TInt32 mT = tensor(m);
            Result r = s.runner().feed(ids, idT).feed(mask, mT).fetch(logits).run()) {
          assertClose(
              Fixtures.flat(e.get("prompt_logits")),
              read((TFloat32) r.get(0)),
              1e-4,
              1e-5,
              "prompt_logits");
        }
      }
    }
  }

  static float[][] run(
      Session s, RewardGraph rg, List<Operand<TFloat32>> fetches, int[][] ids, int[][] mask) {
    try (TInt32 idT = tensor(ids);
        TInt32 mT = tensor(mask)) {
      Session.Runner runner = s.runner().feed(rg.inputIds(), idT).feed(rg.attentionMask(), mT);
      fetches.forEach(runner::fetch);
      try (Result r = runner.run()) {
        float[][] out = new float[fetches.size()][];
        for (int i = 0; i < out.length; i++) {
          out[i] = read((TFloat32) r.get(i));
        }
        return out;
      }
    }
  }

  static TInt32 tensor(int[][] a) {
    return TInt32.tensorOf(
        Shape.of(a.length, a[0].length), DataBuffers.of(Fixtures.flatInts(a), true, false));
  }

  static float[] read(TFloat32 t) {
    float[] out = new float[Math.toIntExact(t.size())];
    t.asRawTensor().data().asFloats().read(out);
    return out;
  }

  private static float[] toArray(List<Float> l) {
    float[] a = new float[l.size()];
    for (int i = 0; i < a.length; i++) {
      a[i] = l.get(i);
    }
    return a;
  }
}
