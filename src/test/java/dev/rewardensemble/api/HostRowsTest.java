package dev.rewardensemble.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.WeightStorage;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.EnsembleSpec;
import dev.rewardensemble.ensemble.IndependentGraph;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.LazyWeights;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A token embedding read on the host from its checkpoint's memory map ({@link
 * dev.rewardensemble.model.ParameterStore#gatherOnHost}, {@link RewardModel#rowsOnHost}) scores
 * every family's transformers checkpoint bit for bit as the embedding variable does, in bfloat16
 * and float32 storage (and a float32 file stored as bfloat16: rounded as the variable is), for a
 * single model and for every member of an independent ensemble; the model's weights read back the
 * same, and its variable bytes lose exactly the table. Tiny tables (below {@link
 * dev.rewardensemble.model.ParameterStore#hostRowsMin}) keep their variable: the tests lower the
 * threshold with {@code rme.hostRowsMin}.
 */
class HostRowsTest {
  private static final ExecConfig EXEC = ExecConfig.deterministic();
  private static final String MIN = "rme.hostRowsMin";

  private static <T> T withMin(long min, Supplier<T> body) {
    String old = System.getProperty(MIN);
    System.setProperty(MIN, Long.toString(min));
    try {
      return body.get();
    } finally {
      if (old == null) {
        System.clearProperty(MIN);
      } else {
        System.setProperty(MIN, old);
      }
    }
  }

  private record Scored(
      float[][] rewards, List<String> onHost, long bytes, Map<String, FloatTensor> weights) {}

  private static Scored score(EnsembleModel m, WeightStorage w, long min) {
    return withMin(
        min,
        () -> {
          try (RewardModel rm = RewardModel.of(m, EXEC.withWeights(w))) {
            return new Scored(
                rm.score(WeightStorageTest.rows(rm.config().vocabSize(), 7), 2),
                rm.rowsOnHost(),
                rm.variableBytes(),
                rm.weights());
          }
        });
  }

  private static void assertSame(Scored want, Scored got) {
    for (int i = 0; i < want.rewards().length; i++) {
      assertArrayEquals(want.rewards()[i], got.rewards()[i], 0f, "row " + i);
    }
    assertEquals(want.weights().keySet(), got.weights().keySet());
    want.weights()
        .forEach((k, v) -> assertArrayEquals(v.data(), got.weights().get(k).data(), 0f, k));
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama3", "qwen2", "qwen3", "mistral", "gemma2", "llama3-padeos"})
  void everyFamilyScoresBitForBitWithItsEmbeddingGatheredOnTheHost(String family) throws Exception {
    EnsembleModel m = EnsembleModel.load(WeightStorageTest.fixture(family + "-seqcls"));
    long[] shape = ((LazyWeights) m.weights()).shape("model.embed_tokens.weight");
    long table = shape[0] * shape[1];
    for (WeightStorage w : new WeightStorage[] {WeightStorage.AUTO, WeightStorage.FLOAT32}) {
      Scored variable = score(m, w, -1);
      Scored host = score(m, w, 0);
      assertEquals(List.of(), variable.onHost());
      assertEquals(List.of("model.embed_tokens.weight"), host.onHost());
      assertSame(variable, host);
      long width = w == WeightStorage.AUTO ? 2 : 4; // the fixtures are bf16
      assertEquals(variable.bytes() - table * width, host.bytes(), w.toString());
    }
    // the default threshold keeps a fixture's small table in its variable
    try (RewardModel rm = RewardModel.of(m, EXEC)) {
      assertEquals(List.of(), rm.rowsOnHost());
    }
  }

  @Test
  void aFloat32TableStoredAsBfloat16IsRoundedAsItsVariableIs() throws Exception {
    Path dir =
        Path.of(HostRowsTest.class.getResource("/fixtures/gpt2-seqcls/config.json").toURI())
            .getParent();
    EnsembleModel m = EnsembleModel.load(dir);
    for (WeightStorage w : new WeightStorage[] {WeightStorage.BFLOAT16, WeightStorage.AUTO}) {
      Scored variable = score(m, w, -1);
      Scored host = score(m, w, 0);
      assertEquals(List.of("transformer.wte.weight"), host.onHost());
      assertSame(variable, host);
    }
  }

  @Test
  void everyMemberOfAnIndependentEnsembleGathersItsOwnTable() throws Exception {
    EnsembleModel one = EnsembleModel.load(WeightStorageTest.fixture("llama3-seqcls"));
    LazyWeights w = new LazyWeights();
    for (int k = 0; k < 2; k++) {
      for (String key : one.weights().keySet()) {
        w.putFrom(IndependentGraph.prefix(k) + key, one.weights(), key);
      }
    }
    EnsembleModel two =
        new EnsembleModel(
            EnsembleSpec.of(EnsembleKind.INDEPENDENT, 2),
            one.config(),
            one.rewardToken(),
            w,
            null,
            one.tokenizer(),
            one.source());
    Scored variable = score(two, WeightStorage.AUTO, -1);
    Scored host = score(two, WeightStorage.AUTO, 0);
    assertEquals(
        List.of("member0.model.embed_tokens.weight", "member1.model.embed_tokens.weight"),
        host.onHost());
    assertSame(variable, host);
    float[][] single = score(one, WeightStorage.AUTO, 0).rewards();
    for (int i = 0; i < single.length; i++) {
      assertEquals(single[i][0], host.rewards()[i][0], 0f);
      assertEquals(single[i][0], host.rewards()[i][1], 0f);
    }
  }

  @Test
  void anIdOutsideTheVocabularyIsRefusedByNameAndAClosedModelIsNotRead() throws Exception {
    EnsembleModel m = EnsembleModel.load(WeightStorageTest.fixture("qwen2-seqcls"));
    int vocab = m.config().vocabSize();
    RewardModel rm = withMin(0, () -> RewardModel.of(m, EXEC));
    try {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> rm.run(new int[] {1, vocab, 2, 3}, new int[] {1, 1, 1, 1}, 2, 2));
      assertTrue(e.getMessage().contains("token id " + vocab), e.getMessage());
      assertEquals(1, rm.run(new int[] {1, 2}, new int[] {1, 1}, 1, 2).length);
    } finally {
      rm.close();
    }
    assertThrows(
        IllegalStateException.class, () -> rm.run(new int[] {1, 2}, new int[] {1, 1}, 1, 2));
  }
}
