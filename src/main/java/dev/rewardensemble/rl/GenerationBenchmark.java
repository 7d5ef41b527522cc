package dev.rewardensemble.rl;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.LmHead;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Tokens per second of cached (in-graph loop) and uncached (full prefix per token) generation on a
 * randomly initialised preset. Not a test: run it by hand.
 *
 * <pre>
 * java -cp ... dev.rewardensemble.rl.GenerationBenchmark [preset.json] [newTokens] [batch] [promptLength] [ppo|greedy]
 * </pre>
 *
 * Defaults: {@code tf-graphs/bench-llama.json}, 256 new tokens, batch 16, 8 prompt tokens; PPO
 * sampling (temperature 0.7, top-p 0.9; each step sorts the whole vocabulary) or greedy decoding,
 * with EOS ignored so that every row generates every token.
 */
public final class GenerationBenchmark {
  private GenerationBenchmark() {}

  public static void main(String[] args) throws Exception {
    Path preset = Path.of(args.length > 0 ? args[0] : "tf-graphs/bench-llama.json");
    int newTokens = args.length > 1 ? Integer.parseInt(args[1]) : 256;
    int batch = args.length > 2 ? Integer.parseInt(args[2]) : 16;
    int promptLength = args.length > 3 ? Integer.parseInt(args[3]) : 8;
    ModelConfig c = ModelConfigs.read(preset);
    Map<String, FloatTensor> w = Init.trunk(c, 1);
    w.put(
        LmHead.key(c),
        Init.normal(new long[] {c.vocabSize(), c.hiddenSize()}, Init.STD, new SplittableRandom(2)));
    SplittableRandom rng = new SplittableRandom(3);
    List<int[]> prompts = new ArrayList<>();
    for (int b = 0; b < batch; b++) {
      prompts.add(rng.ints(promptLength, 3, c.vocabSize()).toArray());
    }
    boolean greedy = args.length > 4 && args[4].equals("greedy");
    SamplingConfig cfg =
        (greedy
                ? SamplingConfig.greedy(newTokens)
                : SamplingConfig.ppo().withMaxNewTokens(newTokens))
            .withStopAtEos(false)
            .withSeed(4);
    System.out.printf(
        "%s: %d layers, hidden %d, vocab %d; batch %d, prompt %d, %d new tokens, %s, %d cores%n",
        preset,
        c.numLayers(),
        c.hiddenSize(),
        c.vocabSize(),
        batch,
        promptLength,
        newTokens,
        greedy ? "greedy" : "ppo sampling (T 0.7, top-p 0.9)",
        Runtime.getRuntime().availableProcessors());
    try (Sampler s = Sampler.of(c, w, ExecConfig.defaults())) {
      s.generate(prompts, cfg.withMaxNewTokens(4), batch); // warm-up
      s.generateUncached(prompts, cfg.withMaxNewTokens(4), batch);
      long t0 = System.nanoTime();
      List<Generation> cached = s.generate(prompts, cfg, batch);
      double cachedS = (System.nanoTime() - t0) / 1e9;
      long t1 = System.nanoTime();
      List<Generation> uncached = s.generateUncached(prompts, cfg, batch);
      double uncachedS = (System.nanoTime() - t1) / 1e9;
      long tokens = cached.stream().mapToLong(g -> g.responseIds().length).sum();
      long same = 0;
      for (int i = 0; i < batch; i++) {
        same +=
            java.util.Arrays.equals(cached.get(i).responseIds(), uncached.get(i).responseIds())
                ? 1
                : 0;
      }
      System.out.printf(
          "cached:   %8.2f s  %9.1f tokens/s  (one Session.run)%n", cachedS, tokens / cachedS);
      System.out.printf(
          "uncached: %8.2f s  %9.1f tokens/s  (%d Session.runs)%n",
          uncachedS, tokens / uncachedS, newTokens);
      System.out.printf(
          "speed-up: %.1fx; identical responses: %d of %d%n", uncachedS / cachedS, same, batch);
    }
  }
}
