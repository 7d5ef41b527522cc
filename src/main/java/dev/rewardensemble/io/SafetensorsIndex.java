package dev.rewardensemble.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSortedMap;
import com.google.common.collect.ImmutableSortedSet;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.MalformedInputException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * A sharded safetensors checkpoint, as written by Hugging Face {@code save_pretrained}: a {@code
 * model.safetensors.index.json} of the form {@code {"metadata": {...}, "weight_map": {"<tensor>":
 * "model-00001-of-00002.safetensors", ...}}} next to its shard files.
 *
 * <p>{@link #open} reads the index and checks that every shard file exists. Shards are opened
 * lazily, each at most once, when one of their tensors is first asked for; at that point every
 * tensor the weight map assigns to the shard is checked to be present in it. {@link #keys()} is the
 * weight map's key set. Safe for concurrent use.
 */
public final class SafetensorsIndex implements TensorSource {

  private final Path path;
  private final ImmutableSortedMap<String, String> weightMap;
  private final ImmutableMap<String, Path> shardPaths;
  private final ImmutableMap<String, String> metadata;
  private final Map<String, Safetensors> openShards = new HashMap<>();
  private boolean closed;

  private SafetensorsIndex(
      Path path,
      ImmutableSortedMap<String, String> weightMap,
      ImmutableMap<String, Path> shardPaths,
      ImmutableMap<String, String> metadata) {
    this.path = path;
    this.weightMap = weightMap;
    this.shardPaths = shardPaths;
    this.metadata = metadata;
  }

  /**
   * Reads a {@code model.safetensors.index.json} and checks that its shard files exist (shard names
   * are resolved against the index's directory and must stay inside it).
   *
   * @throws IllegalArgumentException if the index is malformed or names a missing shard
   * @throws IOException if reading the index fails
   */
  public static SafetensorsIndex open(Path indexJson) throws IOException {
    Objects.requireNonNull(indexJson, "indexJson");
    JsonNode root;
    try {
      root = Safetensors.JSON.readTree(Files.readString(indexJson));
    } catch (JsonProcessingException e) {
      throw corrupt(indexJson, "not valid JSON (" + e.getOriginalMessage() + ")", e);
    } catch (MalformedInputException e) {
      throw corrupt(indexJson, "not valid UTF-8", e);
    }
    if (root == null || !root.isObject()) {
      throw corrupt(indexJson, "not a JSON object");
    }
    JsonNode map = root.get("weight_map");
    if (map == null || !map.isObject()) {
      throw corrupt(
          indexJson, map == null ? "no weight_map" : "weight_map is not an object but " + map);
    }
    Path absolute = indexJson.toAbsolutePath().normalize();
    Path dir = absolute.getParent();
    TreeMap<String, String> weights = new TreeMap<>();
    Map<String, Path> shards = new TreeMap<>();
    for (Map.Entry<String, JsonNode> e : map.properties()) {
      String key = e.getKey();
      JsonNode shard = e.getValue();
      if (!shard.isTextual() || shard.textValue().isEmpty()) {
        throw corrupt(
            indexJson, "weight_map value of tensor '" + key + "' is not a file name but " + shard);
      }
      String name = shard.textValue();
      if (!shards.containsKey(name)) {
        Path shardPath;
        try {
          shardPath = dir.resolve(name).normalize();
        } catch (InvalidPathException ex) {
          throw corrupt(
              indexJson,
              "shard '" + name + "' of tensor '" + key + "' is not a valid file name",
              ex);
        }
        if (!shardPath.startsWith(dir) || shardPath.equals(dir)) {
          throw corrupt(
              indexJson,
              "shard '" + name + "' of tensor '" + key + "' is outside the index's directory");
        }
        if (!Files.isRegularFile(shardPath)) {
          throw new IllegalArgumentException(
              "shard file "
                  + shardPath
                  + " of tensor '"
                  + key
                  + "' named in "
                  + indexJson
                  + " does not exist");
        }
        shards.put(name, shardPath);
      }
      weights.put(key, name);
    }
    ImmutableMap.Builder<String, String> metadata = ImmutableMap.builder();
    JsonNode meta = root.get("metadata");
    if (meta != null && !meta.isNull()) {
      if (!meta.isObject()) {
        throw corrupt(indexJson, "metadata is not an object but " + meta);
      }
      for (Map.Entry<String, JsonNode> e : meta.properties()) {
        JsonNode v = e.getValue();
        // HF writes numbers here ({"total_size": 123}); keep their JSON text.
        metadata.put(e.getKey(), v.isTextual() ? v.textValue() : v.toString());
      }
    }
    return new SafetensorsIndex(
        indexJson,
        ImmutableSortedMap.copyOfSorted(weights),
        ImmutableMap.copyOf(shards),
        metadata.build());
  }

  @Override
  public Set<String> keys() {
    return weightMap.keySet();
  }

  @Override
  public boolean contains(String key) {
    return weightMap.containsKey(key);
  }

  /** The shard file names of the weight map, sorted. */
  public Set<String> shardNames() {
    return ImmutableSortedSet.copyOf(shardPaths.keySet());
  }

  /** The shard file holding a tensor. */
  public Path shardPath(String key) {
    return shardPaths.get(shardName(key));
  }

  @Override
  public TensorInfo info(String key) {
    return shard(shardName(key)).info(key);
  }

  @Override
  public FloatTensor read(String key) {
    return shard(shardName(key)).read(key);
  }

  @Override
  public void stream(
      String key, dev.rewardensemble.config.Precision target, TensorBytes.Sink sink) {
    shard(shardName(key)).stream(key, target, sink);
  }

  @Override
  public MappedRows mapRows(String key) {
    return shard(shardName(key)).mapRows(key);
  }

  /** The {@code metadata} object of the index, values as strings (numbers in their JSON form). */
  @Override
  public Map<String, String> metadata() {
    return metadata;
  }

  @Override
  public Path path() {
    return path;
  }

  /** Closes the shards opened so far; the first failure is thrown, later ones suppressed. */
  @Override
  public void close() {
    List<Safetensors> toClose;
    synchronized (this) {
      closed = true;
      toClose = new ArrayList<>(openShards.values());
      openShards.clear();
    }
    RuntimeException failure = null;
    for (Safetensors shard : toClose) {
      try {
        shard.close();
      } catch (RuntimeException e) {
        if (failure == null) {
          failure = e;
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
  }

  @Override
  public String toString() {
    return "SafetensorsIndex["
        + path
        + ", "
        + weightMap.size()
        + " tensors in "
        + shardPaths.size()
        + " shards]";
  }

  private String shardName(String key) {
    String name = weightMap.get(Objects.requireNonNull(key, "key"));
    if (name == null) {
      throw new IllegalArgumentException("no tensor '" + key + "' in " + path);
    }
    return name;
  }

  /** Opens a shard on first use and checks it holds every tensor the weight map puts there. */
  private synchronized Safetensors shard(String name) {
    if (closed) {
      throw new IllegalStateException(path + " is closed");
    }
    Safetensors shard = openShards.get(name);
    if (shard != null) {
      return shard;
    }
    Path shardPath = shardPaths.get(name);
    try {
      shard = Safetensors.open(shardPath);
    } catch (IOException e) {
      throw new UncheckedIOException(
          "opening shard " + shardPath + " of " + path + " failed: " + e.getMessage(), e);
    }
    for (Map.Entry<String, String> e : weightMap.entrySet()) {
      if (e.getValue().equals(name) && !shard.contains(e.getKey())) {
        IllegalArgumentException missing =
            new IllegalArgumentException(
                "tensor '"
                    + e.getKey()
                    + "' is listed in "
                    + path
                    + " but missing from its shard "
                    + shardPath);
        try {
          shard.close();
        } catch (RuntimeException closing) {
          missing.addSuppressed(closing);
        }
        throw missing;
      }
    }
    openShards.put(name, shard);
    return shard;
  }

  private static IllegalArgumentException corrupt(Path file, String what) {
    return new IllegalArgumentException("corrupt safetensors index " + file + ": " + what);
  }

  private static IllegalArgumentException corrupt(Path file, String what, Throwable cause) {
    return new IllegalArgumentException("corrupt safetensors index " + file + ": " + what, cause);
  }
}
