package dev.rewardensemble.eval;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.train.LmTrainConfig;
import dev.rewardensemble.train.LmTrainer;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainListener;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The world's SFT policy: a 2-layer, 64-wide Llama causal LM ({@code tf-graphs/demo-policy.json})
 * trained from random initialisation on the world's imperfect demonstrations, saved as a Hugging
 * Face {@code LlamaForCausalLM} directory with the world's {@code tokenizer.json}, ready for a
 * sampler.
 */
public final class SftPolicy {
  private SftPolicy() {}

  /** The Hugging Face architecture written to {@code config.json}. */
  public static final String ARCHITECTURE = "LlamaForCausalLM";

  /**
   * How the policy is trained.
   *
   * @param demonstrations demonstrations drawn from the world (cycled in shuffled epochs)
   * @param training optimizer settings; {@code steps * batchSize} sequences are seen
   * @param initSeed seed of the random initialisation
   * @param exec session threads
   */
  public record Settings(
      int demonstrations, LmTrainConfig training, long initSeed, ExecConfig exec) {
    public Settings {
      if (demonstrations < 1) {
        throw new IllegalArgumentException("demonstrations must be >= 1, got " + demonstrations);
      }
      if (training == null || exec == null) {
        throw new IllegalArgumentException("training and exec settings must not be null");
      }
    }

    /** The default run (about a minute and a half on a 2-core CPU). */
    public static Settings defaults() {
      return new Settings(
          20_000,
          new LmTrainConfig(32, 2000, 3e-3, 0.01, Schedule.Kind.COSINE, 0.05, 1.0, false, 42),
          7,
          ExecConfig.defaults());
    }

    public Settings withSteps(int steps) {
      return new Settings(demonstrations, training.withSteps(steps), initSeed, exec);
    }
  }

  /** The architecture of {@code tf-graphs/demo-policy.json}, with the world's vocabulary. */
  public static LlamaConfig config() {
    return new LlamaConfig(
        CharVocabulary.SIZE,
        64,
        192,
        2,
        4,
        4,
        16,
        128,
        1e-6,
        10000.0,
        CharVocabulary.PAD,
        CharVocabulary.BOS,
        CharVocabulary.EOS,
        false);
  }

  /**
   * Trains the policy and saves it to {@code outDir} ({@code config.json}, {@code
   * model.safetensors}, {@code tokenizer.json}).
   *
   * @return {@code outDir}
   */
  public static Path train(World world, Path outDir, Settings settings, TrainListener listener)
      throws IOException {
    Map<String, FloatTensor> weights = trainWeights(world, settings, listener);
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("world_seed", Long.toString(world.seed()));
    meta.put("demonstrations", Integer.toString(settings.demonstrations()));
    meta.put("steps", Integer.toString(settings.training().steps()));
    meta.put("init_seed", Long.toString(settings.initSeed()));
    HfCheckpoint.save(outDir, config(), ARCHITECTURE, weights, meta);
    World.writeTokenizer(outDir.resolve("tokenizer.json"));
    return outDir;
  }

  /** Trains the policy and returns its weights by checkpoint key (nothing written). */
  public static Map<String, FloatTensor> trainWeights(
      World world, Settings settings, TrainListener listener) {
    LlamaConfig config = config();
    List<Demonstrations.Demonstration> demos = world.demonstrations(settings.demonstrations());
    List<int[]> seqs = new ArrayList<>(demos.size());
    List<Integer> prompts = new ArrayList<>(demos.size());
    for (Demonstrations.Demonstration d : demos) {
      int[] s = World.sequence(d.task().instruction(), d.response());
      if (s.length > config.maxPositions()) {
        throw new IllegalStateException(
            "demonstration of "
                + s.length
                + " tokens exceeds max_position_embeddings "
                + config.maxPositions()
                + ": "
                + d);
      }
      seqs.add(s);
      prompts.add(d.task().instruction().length() + 1);
    }
    LmTrainConfig tc = settings.training();
    List<Integer> order = new ArrayList<>();
    Random rng = new Random(tc.seed());
    long start = System.nanoTime();
    try (LmTrainer trainer =
        new LmTrainer(
            config, LmTrainer.initialWeights(config, settings.initSeed()), tc, settings.exec())) {
      int cursor = 0;
      for (int step = 1; step <= tc.steps(); step++) {
        List<int[]> batch = new ArrayList<>(tc.batchSize());
        List<Integer> lens = new ArrayList<>(tc.batchSize());
        for (int i = 0; i < tc.batchSize(); i++) {
          if (cursor == order.size()) {
            order.clear();
            for (int k = 0; k < seqs.size(); k++) {
              order.add(k);
            }
            Collections.shuffle(order, rng);
            cursor = 0;
          }
          int k = order.get(cursor++);
          batch.add(seqs.get(k));
          lens.add(prompts.get(k));
        }
        LmTrainer.StepStats s = trainer.step(batch, lens);
        listener.onStep(
            step,
            tc.steps(),
            s.loss(),
            Double.NaN,
            s.lr(),
            s.gradNorm(),
            (System.nanoTime() - start) / 1e9);
      }
      return trainer.weights();
    }
  }
}
