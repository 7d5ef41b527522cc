package dev.rewardensemble.rl;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.KvCache;
import dev.rewardensemble.model.LmHead;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Tokens per second of cached (in-graph loop) and uncached (full prefix per token) generation on a
 * randomly initialised preset, and per-token decode time of the preallocated, in-place key/value
 * cache against the concatenating one (the loop before it), side by side in one run. Not a test:
 * run it by hand. {@code uncached} {@code no} skips the (slow) uncached reference, for long runs.
 *
 * <pre>
 * java -cp ... dev.rewardensemble.rl.GenerationBenchmark [preset.json] [newTokens] [batch] [promptLength] [ppo|greedy] [uncached|no]
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
    boolean uncachedToo = !(args.length > 5 && args[5].equals("no"));
    double[] perToken = new double[2];
    List<Generation> first = null;
    for (KvCache.Layout layout : KvCache.Layout.values()) {
      try (Sampler s = Sampler.of(c, w, ExecConfig.defaults(), layout)) {
        s.generate(prompts, cfg.withMaxNewTokens(4), batch); // warm-up
        long t0 = System.nanoTime();
        List<Generation> cached = s.generate(prompts, cfg, batch);
        double cachedS = (System.nanoTime() - t0) / 1e9;
        long tokens = cached.stream().mapToLong(g -> g.responseIds().length).sum();
        perToken[layout.ordinal()] = 1e3 * cachedS / newTokens;
        System.out.printf(
            "cached, %-12s cache: %8.2f s  %9.1f tokens/s  %7.2f ms per decode step%n",
            layout.name().toLowerCase(java.util.Locale.ROOT),
            cachedS,
            tokens / cachedS,
            perToken[layout.ordinal()]);
        if (first == null) {
          first = cached;
        } else {
          System.out.printf(
              "identical responses (preallocated vs concatenated): %d of %d%n",
              same(first, cached), batch);
        }
        if (uncachedToo && layout == KvCache.Layout.PREALLOCATED) {
          s.generateUncached(prompts, cfg.withMaxNewTokens(4), batch);
          long t1 = System.nanoTime();
          List<Generation> uncached = s.generateUncached(prompts, cfg, batch);
          double uncachedS = (System.nanoTime() - t1) / 1e9;
          System.out.printf(
              "uncached:                   %8.2f s  %9.1f tokens/s  (%d Session.runs); "
                  + "speed-up of the cache %.1fx, identical responses: %d of %d%n",
              uncachedS,
              tokens / uncachedS,
              newTokens,
              uncachedS / cachedS,
              same(cached, uncached),
              batch);
        }
      }
    }
    System.out.printf(
        "per-token decode time, concatenated / preallocated: %.2f%n", perToken[1] / perToken[0]);
  }

  private static long same(List<Generation> a, List<Generation> b) {
    long n = 0;
    for (int i = 0; i < a.size(); i++) {
      n += java.util.Arrays.equals(a.get(i).responseIds(), b.get(i).responseIds()) ? 1 : 0;
    }
    return n;
  }
}
