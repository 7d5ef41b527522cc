package dev.rewardensemble.rl;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.Gpt2Config;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.LmHead;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;

/** Random causal LMs from the {@code tf-graphs/} presets, for tests and the benchmark. */
final class Models {
  private Models() {}

  static ModelConfig preset(String name) throws IOException {
    return ModelConfigs.read(Path.of("tf-graphs", name + ".json"));
  }

  /**
   * Trunk from {@link Init#trunk} and a head (or, when tied, an embedding) with standard deviation
   * {@code headStd}, so that the logits are spread enough for arg-max to be far from ties.
   */
  static Map<String, FloatTensor> weights(ModelConfig c, long seed, double headStd) {
    Map<String, FloatTensor> w = Init.trunk(c, seed);
    long[] shape = {c.vocabSize(), c.hiddenSize()};
    w.put(LmHead.key(c), Init.normal(shape, headStd, new SplittableRandom(seed + 1)));
    return w;
  }

  static Sampler random(ModelConfig c, long seed) {
    return Sampler.of(c, weights(c, seed, 0.2), ExecConfig.deterministic());
  }

  /** The same Llama config with another end-of-sequence id. */
  static LlamaConfig withEos(LlamaConfig c, int eos) {
    return llama(c, c.vocabSize(), eos);
  }

  /** The same Llama config with another vocabulary size. */
  static LlamaConfig withVocab(LlamaConfig c, int vocab) {
    return llama(c, vocab, c.eosTokenId());
  }

  private static LlamaConfig llama(LlamaConfig c, int vocab, int eos) {
    return new LlamaConfig(
        vocab,
        c.hiddenSize(),
        c.intermediateSize(),
        c.numLayers(),
        c.numHeads(),
        c.numKeyValueHeads(),
        c.headDim(),
        c.maxPositionEmbeddings(),
        c.rmsNormEps(),
        c.ropeTheta(),
        c.padTokenId(),
        c.bosTokenId(),
        eos,
        c.tieWordEmbeddings());
  }

  /** The same GPT-2 config with another end-of-sequence id. */
  static Gpt2Config withEos(Gpt2Config c, int eos) {
    return new Gpt2Config(
        c.vocabSize(),
        c.nPositions(),
        c.nEmbd(),
        c.nLayer(),
        c.nHead(),
        c.nInner(),
        c.layerNormEpsilon(),
        c.activation(),
        c.padTokenId(),
        c.bosTokenId(),
        eos,
        c.tieWordEmbeddings());
  }
}
