package dev.rewardensemble.model;

import static dev.rewardensemble.testing.Fixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.testing.Fixtures;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * The token a reward is read at, against transformers on checkpoints whose pad id equals their EOS
 * id (fixture {@code llama-padeos-seqcls}, made by {@code scripts/make_padeos_fixture.py}): every
 * sequence ends with EOS, and transformers reads the token before it.
 */
class RewardTokenTest {

  @Test
  void padEqualsEosIsReadAsTransformersReadsItByDefault() throws Exception {
    Path dir = Fixtures.dir("llama-padeos-seqcls");
    JsonNode e = Fixtures.expected("llama-padeos-seqcls");
    assertEquals(RewardToken.LAST_NON_PAD, RewardToken.ofHfConfig(dir.resolve("config.json")));
    float[] got = rewards(dir, e, RewardToken.LAST_NON_PAD);
    assertClose(Fixtures.floats(e.get("rewards")), got, 1e-4, 1e-5, "last-non-pad");
  }

  @Test
  void lastAttendedReadsTheTrailingEos() throws Exception {
    Path dir = Fixtures.dir("llama-padeos-seqcls");
    JsonNode e = Fixtures.expected("llama-padeos-seqcls");
    float[] got = rewards(dir, e, RewardToken.LAST_ATTENDED);
    // transformers' own hidden state at the EOS through the score head
    assertClose(Fixtures.floats(e.get("rewards_last_attended")), got, 1e-4, 1e-5, "last-attended");
    float[] other = Fixtures.floats(e.get("rewards"));
    for (int i = 0; i < got.length; i++) {
      assertTrue(Math.abs(got[i] - other[i]) > 1e-2, "the two rules read different tokens");
    }
  }

  @Test
  void aCheckpointWithoutPadTokenIdIsReadAtTheLastAttendedToken() throws Exception {
    ObjectMapper json = new ObjectMapper();
    JsonNode withPad = json.readTree("{\"model_type\": \"llama\", \"pad_token_id\": 2}");
    JsonNode without = json.readTree("{\"model_type\": \"llama\", \"eos_token_id\": 2}");
    JsonNode nullPad = json.readTree("{\"model_type\": \"llama\", \"pad_token_id\": null}");
    assertEquals(RewardToken.LAST_NON_PAD, RewardToken.ofHfConfig(withPad));
    assertEquals(RewardToken.LAST_ATTENDED, RewardToken.ofHfConfig(without));
    assertEquals(RewardToken.LAST_ATTENDED, RewardToken.ofHfConfig(nullPad));
  }

  @Test
  void llama3PadEqualsEosMatchesTransformers() throws Exception {
    Path dir =
        Path.of(
                RewardTokenTest.class
                    .getResource("/hf-families/llama3-padeos-seqcls/expected.json")
                    .toURI())
            .getParent();
    JsonNode e = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
    float[] got = rewards(dir, e, RewardToken.ofHfConfig(dir.resolve("config.json")));
    assertClose(Fixtures.floats(e.get("rewards")), got, 1e-4, 1e-5, "llama3 pad = eos");
  }

  private static float[] rewards(Path dir, JsonNode e, RewardToken rule) throws Exception {
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(dir);
    int b = ids.length;
    int t = ids[0].length;
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      RewardGraph rg = RewardGraph.build(tf, ckpt.config(), 1, p, Projector.NONE, rule);
      try (Session s = new Session(g)) {
        p.load(s, ckpt.weights(), false, dir.toString());
        try (TInt32 idT =
                TInt32.tensorOf(
                    Shape.of(b, t), DataBuffers.of(Fixtures.flatInts(ids), true, false));
            TInt32 maskT =
                TInt32.tensorOf(
                    Shape.of(b, t), DataBuffers.of(Fixtures.flatInts(mask), true, false));
            Result r =
                s.runner()
                    .feed(rg.inputIds(), idT)
                    .feed(rg.attentionMask(), maskT)
                    .fetch(rg.rewards())
                    .run()) {
          TFloat32 out = (TFloat32) r.get(0);
          float[] v = new float[b];
          for (int i = 0; i < b; i++) {
            v[i] = out.getFloat(i, 0);
          }
          return v;
        }
      }
    }
  }
}
