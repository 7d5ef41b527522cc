package dev.rewardensemble.serving;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.ensemble.AggregationConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.tensorflow.Result;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.SessionFunction;
import org.tensorflow.Signature;
import org.tensorflow.Tensor;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * A SavedModel written by {@link SavedModels#export}, loaded for scoring through its {@value
 * SavedModels#SIGNATURE} signature. Thread-safe for concurrent calls; close it to free the session.
 */
public final class SavedModelScorer implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path dir;
  private final SavedModelBundle bundle;
  private final SessionFunction function;
  private final JsonNode metadata;
  private final ModelConfig config;
  private final int heads;
  private final AggregationConfig aggregation;
  // Calls hold the read lock, close() the write lock: close waits for in-flight calls.
  private final java.util.concurrent.locks.ReentrantReadWriteLock lock =
      new java.util.concurrent.locks.ReentrantReadWriteLock();
  private boolean closed;

  private SavedModelScorer(
      Path dir,
      SavedModelBundle bundle,
      SessionFunction function,
      JsonNode metadata,
      ModelConfig config,
      int heads,
      AggregationConfig aggregation) {
    this.dir = dir;
    this.bundle = bundle;
    this.function = function;
    this.metadata = metadata;
    this.config = config;
    this.heads = heads;
    this.aggregation = aggregation;
  }

  /**
   * Loads {@code dir} with tag {@value SavedModels#TAG}.
   *
   * @throws IllegalArgumentException naming {@code dir} when it is not a SavedModel, its {@value
   *     SavedModels#ASSET} is missing or invalid, or its signature is not the one the export writes
   */
  public static SavedModelScorer load(Path dir) throws IOException {
    Path d = dir.toAbsolutePath().normalize();
    if (!Files.isDirectory(d)) {
      throw new IllegalArgumentException("not a SavedModel: " + d + " is not a directory");
    }
    if (!Files.isRegularFile(d.resolve("saved_model.pb"))
        && !Files.isRegularFile(d.resolve("saved_model.pbtxt"))) {
      throw new IllegalArgumentException("not a SavedModel: " + d + " has no saved_model.pb");
    }
    Path asset = d.resolve(SavedModels.ASSET);
    if (!Files.isRegularFile(asset)) {
      throw new IllegalArgumentException(
          d
              + ": missing "
              + SavedModels.ASSET
              + " (not exported by reward-ensemble, or incomplete)");
    }
    JsonNode meta;
    try {
      meta = JSON.readTree(asset.toFile());
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException(
          asset
              + ": invalid JSON at line "
              + e.getLocation().getLineNr()
              + ": "
              + e.getOriginalMessage());
    }
    if (meta == null || !SavedModels.FORMAT.equals(meta.path("format").asText())) {
      throw new IllegalArgumentException(
          asset + ": key 'format' must be '" + SavedModels.FORMAT + "'");
    }
    ModelConfig config = ModelConfigs.parse(meta.get("config"), asset + " (config)");
    JsonNode h = meta.get("heads");
    int heads = h != null && h.isIntegralNumber() && h.canConvertToInt() ? h.asInt() : 0;
    if (heads < 1) {
      throw new IllegalArgumentException(
          asset + ": key 'heads' must be an integer >= 1, got " + meta.get("heads"));
    }
    JsonNode a = meta.path("aggregation");
    AggregationConfig agg;
    try {
      agg =
          new AggregationConfig(
              dev.rewardensemble.ensemble.EnsembleModel.rule(a.path("rule").asText("mean")),
              a.path("beta").asDouble(0),
              a.path("lambda").asDouble(0));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(asset + ": " + e.getMessage(), e);
    }
    RewardToken.stored(meta, asset); // a bad value is refused before the graph is loaded
    SavedModelBundle bundle;
    try {
      bundle = SavedModelBundle.load(d.toString(), SavedModels.TAG);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(
          "cannot load SavedModel " + d + " with tag '" + SavedModels.TAG + "': " + e.getMessage(),
          e);
    }
    try {
      SessionFunction f = signature(d, bundle, heads);
      return new SavedModelScorer(d, bundle, f, meta, config, heads, agg);
    } catch (RuntimeException e) {
      bundle.close();
      throw e;
    }
  }

  private static SessionFunction signature(Path d, SavedModelBundle bundle, int heads) {
    Signature sig =
        bundle.signatures().stream()
            .filter(s -> s.key().equals(SavedModels.SIGNATURE))
            .findFirst()
            .orElseThrow(
                () ->
                    new IllegalArgumentException(
                        d
                            + ": no signature '"
                            + SavedModels.SIGNATURE
                            + "' (has "
                            + bundle.signatures().stream().map(Signature::key).toList()
                            + ")"));
    Set<String> wantIn = Set.of(SavedModels.INPUT_IDS, SavedModels.ATTENTION_MASK);
    Set<String> wantOut = Set.copyOf(SavedModels.outputs(heads));
    if (!sig.inputNames().equals(wantIn) || !sig.outputNames().equals(wantOut)) {
      throw new IllegalArgumentException(
          d
              + ": signature '"
              + SavedModels.SIGNATURE
              + "' has inputs "
              + sig.inputNames()
              + " and outputs "
              + sig.outputNames()
              + ", expected inputs "
              + wantIn
              + " and outputs "
              + wantOut
              + " for "
              + heads
              + " heads");
    }
    if (heads > 1) {
      // The metadata's K must be the graph's: members is [B, K].
      Signature.TensorDescription members = sig.getOutputs().get(SavedModels.MEMBERS);
      Shape s = members == null ? null : members.shape;
      if (s != null
          && !s.isUnknown()
          && s.numDimensions() == 2
          && s.size(1) >= 0
          && s.size(1) != heads) {
        throw new IllegalArgumentException(
            d
                + ": "
                + SavedModels.ASSET
                + " says heads "
                + heads
                + " but the graph's '"
                + SavedModels.MEMBERS
                + "' output has "
                + s.size(1)
                + " members");
      }
    }
    return bundle.function(SavedModels.SIGNATURE);
  }

  public Path dir() {
    return dir;
  }

  public ModelConfig config() {
    return config;
  }

  /** Number of reward heads K. */
  public int heads() {
    return heads;
  }

  public AggregationConfig aggregation() {
    return aggregation;
  }

  /**
   * The token the exported graph reads the reward at (metadata key {@value RewardToken#KEY}; absent
   * in exports made before the key existed, which read at the last attended token).
   */
  public RewardToken rewardToken() {
    return RewardToken.stored(metadata, dir.resolve(SavedModels.ASSET));
  }

  /** The content of {@value SavedModels#ASSET}. */
  public JsonNode metadata() {
    return metadata.deepCopy();
  }

  /**
   * Every head's reward {@code [B][K]} of a padded batch ({@code ids}, {@code mask} row-major [B,
   * T]). For K = 1 this is the {@code reward} output as {@code [B][1]}.
   */
  public float[][] run(int[] ids, int[] mask, int b, int t) {
    Map<String, float[]> out = outputs(ids, mask, b, t);
    float[] flat = heads == 1 ? out.get(SavedModels.REWARD) : out.get(SavedModels.MEMBERS);
    float[][] r = new float[b][heads];
    for (int i = 0; i < b; i++) {
      System.arraycopy(flat, i * heads, r[i], 0, heads);
    }
    return r;
  }

  /** The aggregated {@code reward} output {@code [B]}. */
  public float[] reward(int[] ids, int[] mask, int b, int t) {
    return outputs(ids, mask, b, t).get(SavedModels.REWARD);
  }

  /** Every output of the signature by name, flattened row-major, in one call. */
  public Map<String, float[]> outputs(int[] ids, int[] mask, int b, int t) {
    if (b < 1 || t < 1 || ids.length != b * t || mask.length != b * t) {
      throw new IllegalArgumentException(
          "batch of "
              + b
              + " x "
              + t
              + " needs "
              + (long) b * t
              + " ids and mask values, got "
              + ids.length
              + " and "
              + mask.length);
    }
    lock.readLock().lock();
    try (TInt32 idT = TInt32.tensorOf(Shape.of(b, t), DataBuffers.of(ids, true, false));
        TInt32 maskT = TInt32.tensorOf(Shape.of(b, t), DataBuffers.of(mask, true, false));
        Result r =
            callOpen(Map.of(SavedModels.INPUT_IDS, idT, SavedModels.ATTENTION_MASK, maskT))) {
      Map<String, float[]> out = new LinkedHashMap<>();
      for (Map.Entry<String, Tensor> e : r) {
        TFloat32 v = (TFloat32) e.getValue();
        float[] data = new float[Math.toIntExact(v.size())];
        v.asRawTensor().data().asFloats().read(data);
        out.put(e.getKey(), data);
      }
      return out;
    } finally {
      lock.readLock().unlock();
    }
  }

  private Result callOpen(Map<String, Tensor> in) {
    if (closed) {
      throw new IllegalStateException("closed");
    }
    return function.call(in);
  }

  /** Waits for in-flight calls, then frees the session and graph; later calls throw "closed". */
  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      if (!closed) {
        closed = true;
        bundle.close();
      }
    } finally {
      lock.writeLock().unlock();
    }
  }
}
