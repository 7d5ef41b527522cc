package dev.rewardensemble.rl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.Gpt2Config;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.config.MistralConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.testing.Fixtures;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Refilled batches: a row whose response ended takes the next request for the same prompt (the
 * cache forgets the response, keeps the prompt), and every response equals the same request's in
 * plain batches and in the uncached reference.
 */
class RefillTest {
  private static final int[] A = {5, 17, 33};
  private static final int[] B = {7, 8, 9, 10, 11};
  private static final int[] C = {99};

  /** 11 x A, B, C, 6 x B: two runs to refill and two plain requests between them. */
  private static List<int[]> requests() {
    List<int[]> r = new ArrayList<>(Collections.nCopies(11, A));
    r.add(B.clone()); // B's tokens in another array; C keeps it out of the run of B below
    r.add(C);
    r.addAll(Collections.nCopies(6, B));
    return r;
  }

  @Test
  void runsLongerThanABatchAreRefilledAndTheRestGoesInPlainBatches() {
    List<int[]> r = requests();
    assertEquals(
        List.of(
            new Sampler.Unit(0, 11, 3), new Sampler.Unit(11, 13, 2), new Sampler.Unit(13, 19, 3)),
        Sampler.units(r, 3, 1, true));
    // Two lanes: a run is split so that both have work (each part at least a batch, about half
    // of all the requests).
    assertEquals(
        List.of(
            new Sampler.Unit(0, 5, 3),
            new Sampler.Unit(5, 11, 3),
            new Sampler.Unit(11, 13, 2),
            new Sampler.Unit(13, 19, 3)),
        Sampler.units(r, 3, 2, true));
    assertEquals(
        List.of(new Sampler.Unit(0, 10, 4), new Sampler.Unit(10, 20, 4)),
        Sampler.units(Collections.nCopies(20, A), 4, 2, true));
    // Off (or the uncached reference): batches of 3 in order, as before.
    assertEquals(
        List.of(
            new Sampler.Unit(0, 3, 3),
            new Sampler.Unit(3, 6, 3),
            new Sampler.Unit(6, 9, 3),
            new Sampler.Unit(9, 12, 3),
            new Sampler.Unit(12, 15, 3),
            new Sampler.Unit(15, 18, 3),
            new Sampler.Unit(18, 19, 1)),
        Sampler.units(r, 3, 1, false));
    // A run no longer than a batch is not refilled.
    assertEquals(
        List.of(new Sampler.Unit(0, 3, 3), new Sampler.Unit(3, 4, 1)),
        Sampler.units(List.of(A, A, A, B), 3, 1, true));
  }

  /**
   * Sampled responses of different lengths (EOS is a token the model draws often), three rows per
   * batch: refilled, plain and uncached give the same tokens, request for request. "mistral" is the
   * Mistral fixture with its sliding window of 5, which a restarted row must count from its new
   * response's slots.
   */
  @ParameterizedTest
  @ValueSource(strings = {"tiny-llama", "tiny-gpt2", "wide-vocab", "mistral"})
  void refilledRowsAnswerAsPlainBatchesAndTheUncachedReference(String which) throws Exception {
    ModelConfig base;
    Map<String, FloatTensor> weights;
    switch (which) {
      case "wide-vocab" -> {
        // more than Sampling.CANDIDATES: the steps gather the choosing rows
        base = Models.withVocab((LlamaConfig) Models.preset("tiny-llama"), 3000);
        weights = Models.weights(base, 13, 0.6); // peaked: tokens repeat
      }
      case "mistral" -> {
        HfCheckpoint.Checkpoint ckpt =
            HfCheckpoint.open(SamplerWeightStorageTest.fixture("mistral-causal"));
        base = ckpt.config();
        weights = ckpt.weights();
      }
      default -> {
        base = Models.preset(which);
        weights = Models.weights(base, 9, 0.2);
      }
    }
    List<int[]> requests = requests();
    SamplingConfig free = new SamplingConfig(14, false, 0.6, 1.0, 0, 21, false);
    List<Generation> unstopped;
    try (Sampler s = Sampler.of(base, weights, ExecConfig.deterministic())) {
      unstopped = s.refill(false).generate(requests, free, 3);
    }
    int eos = frequentToken(unstopped);
    ModelConfig c = withEos(base, eos);
    SamplingConfig stop = free.withStopAtEos(true);
    try (Sampler s = Sampler.of(c, weights, ExecConfig.deterministic())) {
      List<Generation> refilled = s.refill(true).generate(requests, stop, 3);
      List<Generation> plain = s.refill(false).generate(requests, stop, 3);
      List<Generation> uncached = s.generateUncached(requests, stop, 4);
      int early = 0;
      for (int i = 0; i < requests.size(); i++) {
        int[] all = unstopped.get(i).responseIds();
        int first = indexOf(all, eos);
        int[] want = first < 0 ? all : Arrays.copyOf(all, first + 1);
        assertArrayEquals(want, plain.get(i).responseIds(), which + " plain " + i);
        assertArrayEquals(want, refilled.get(i).responseIds(), which + " refilled " + i);
        assertArrayEquals(want, uncached.get(i).responseIds(), which + " uncached " + i);
        assertEquals(first >= 0, refilled.get(i).finished(), which + " finished " + i);
        assertArrayEquals(requests.get(i), refilled.get(i).promptIds());
        Fixtures.assertClose(
            plain.get(i).tokenLogprobs(),
            refilled.get(i).tokenLogprobs(),
            0,
            1e-5,
            which + " logprobs " + i);
        early += first >= 0 && first < all.length - 1 ? 1 : 0;
      }
      // Rows did end at different steps, so rows were restarted while others went on.
      assertTrue(early >= 4, which + ": " + early + " responses ended early");
      assertTrue(early < requests.size() - 2, which + ": " + early + " responses ended early");
    }
  }

  /** The token drawn most often at steps 1..M-2 of the responses (not the first, not the last). */
  private static int frequentToken(List<Generation> gens) {
    Map<Integer, Integer> counts = new java.util.HashMap<>();
    for (Generation g : gens) {
      int[] r = g.responseIds();
      for (int t = 1; t < r.length - 1; t++) {
        counts.merge(r[t], 1, Integer::sum);
      }
    }
    return Collections.max(counts.entrySet(), Map.Entry.comparingByValue()).getKey();
  }

  private static ModelConfig withEos(ModelConfig c, int eos) {
    if (c instanceof LlamaConfig l) {
      return Models.withEos(l, eos);
    }
    if (c instanceof Gpt2Config g) {
      return Models.withEos(g, eos);
    }
    MistralConfig m = (MistralConfig) c;
    return new MistralConfig(
        m.vocabSize(),
        m.hiddenSize(),
        m.intermediateSize(),
        m.numLayers(),
        m.numHeads(),
        m.numKeyValueHeads(),
        m.headDim(),
        m.maxPositionEmbeddings(),
        m.rmsNormEps(),
        m.ropeTheta(),
        m.padTokenId(),
        m.bosTokenId(),
        eos,
        m.tieWordEmbeddings(),
        m.ropeScaling(),
        m.windows());
  }

  private static int indexOf(int[] a, int v) {
    for (int i = 0; i < a.length; i++) {
      if (a[i] == v) {
        return i;
      }
    }
    return -1;
  }
}
