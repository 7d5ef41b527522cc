package dev.rewardensemble.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.EnsembleSpec;
import dev.rewardensemble.ensemble.Normalization;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.serving.SavedModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Random;

/**
 * The tiny models the server tests serve: the example Llama reward model (K = 1) and a K = 3 linear
 * ensemble on its trunk with random heads, a stored normalisation and LCB aggregation, in memory
 * and exported as a SavedModel; a tokenizer directory with Mistral's chat template.
 */
final class ServeModels {
  static final ObjectMapper JSON = new ObjectMapper();
  static final Path SINGLE = Path.of("examples/tiny-llama-rm");
  static final int K = 3;

  final Path tokDir;
  final EnsembleModel ensemble;
  final Path savedModel;

  ServeModels(Path tmp) throws IOException {
    tokDir = tmp.resolve("tok");
    Files.createDirectories(tokDir);
    Files.copy(SINGLE.resolve("tokenizer.json"), tokDir.resolve("tokenizer.json"));
    String template =
        Files.readString(Path.of("src/test/resources/chat-templates/templates/mistral.jinja"));
    Files.writeString(
        tokDir.resolve("tokenizer_config.json"),
        JSON.writeValueAsString(
            Map.of("bos_token", "<s>", "eos_token", "</s>", "chat_template", template)));
    HfCheckpoint.Checkpoint c = HfCheckpoint.load(SINGLE);
    Map<String, FloatTensor> w = new LinkedHashMap<>(c.weights());
    int h = c.config().hiddenSize();
    float[] heads = new float[K * h];
    Random r = new Random(17);
    for (int i = 0; i < heads.length; i++) {
      heads[i] = (float) (r.nextGaussian() * 0.2);
    }
    w.put(HfCheckpoint.SCORE_KEY, new FloatTensor(new long[] {K, h}, heads));
    EnsembleSpec spec =
        new EnsembleSpec(
            EnsembleKind.LINEAR,
            K,
            AggregationConfig.lcb(0.5),
            Optional.of(
                new Normalization(
                    new float[] {0.1f, -0.2f, 0.3f}, new float[] {0.5f, 1.5f, 0.8f}, 100)));
    ensemble =
        new EnsembleModel(
            spec,
            c.config(),
            RewardToken.LAST_NON_PAD,
            w,
            null,
            Optional.of(tokDir.resolve("tokenizer.json")),
            tmp.resolve("ensemble"));
    savedModel = tmp.resolve("savedmodels/rm/1");
    SavedModels.export(savedModel, ensemble, Map.of(), false);
  }

  /** The encoder {@code rme serve} builds by default: alpaca template, errors for long rows. */
  static Encoder encoder(Tokenizer tok, int maxLength) {
    return new Encoder(tok, PromptTemplate.ALPACA, maxLength, OptionalInt.empty());
  }
}
