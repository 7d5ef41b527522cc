package dev.rewardensemble.io;

import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A read-only, named collection of tensors stored on disk (a safetensors file or a sharded
 * checkpoint), read one tensor at a time as float32.
 *
 * <p>Implementations read tensor data on demand, never the whole file at once, and are safe for
 * concurrent reads from several threads. Close the source when done to release file handles.
 */
public interface TensorSource extends AutoCloseable {

  /** Names of all tensors, sorted, unmodifiable. */
  Set<String> keys();

  /** Whether a tensor with this name exists. */
  default boolean contains(String key) {
    return keys().contains(key);
  }

  /**
   * Header information of a tensor.
   *
   * @throws IllegalArgumentException if there is no such tensor (the message names the key and the
   *     file)
   * @throws UncheckedIOException if a file must be opened to answer and that fails
   */
  TensorInfo info(String key);

  /**
   * Reads a tensor and converts it to float32 (F32, F16, BF16 exactly; F64 narrowed to the nearest
   * float).
   *
   * @throws IllegalArgumentException if there is no such tensor, its dtype cannot be read as float,
   *     or it has more elements than a Java array can hold
   * @throws UncheckedIOException if reading the file fails
   */
  FloatTensor read(String key);

  /**
   * Streams a tensor as little-endian bytes of {@code target} (float32 or bfloat16) to {@code
   * sink}, chunk by chunk: the bytes as stored when the dtypes agree, else converted (exactly when
   * widening; to the nearest bfloat16, ties to even, when narrowing). At most one chunk is in the
   * heap at a time. This default reads the tensor as float32 first; {@link Safetensors} streams
   * from a memory map of the file.
   */
  default void stream(
      String key, dev.rewardensemble.config.Precision target, TensorBytes.Sink sink) {
    TensorBytes.encode(read(key).data(), target, sink);
  }

  /**
   * Maps the matrix {@code key} (F32 or BF16, {@link MappedRows#mappable}) read-only for row
   * lookups; the caller closes it. The mapping outlives this source. This default refuses: {@link
   * Safetensors} and {@link SafetensorsIndex} map their files.
   *
   * @throws UnsupportedOperationException if this source cannot map its tensors
   * @throws IllegalArgumentException if there is no such tensor or it is not mappable
   * @throws UncheckedIOException if mapping fails
   */
  default MappedRows mapRows(String key) {
    throw new UnsupportedOperationException(path() + " cannot map tensor '" + key + "'");
  }

  /**
   * Reads every tensor, in key order. Only sensible for small models: it holds all weights on the
   * heap at once.
   */
  default Map<String, FloatTensor> readAll() {
    Map<String, FloatTensor> all = new LinkedHashMap<>();
    for (String key : keys()) {
      all.put(key, read(key));
    }
    return all;
  }

  /** Free-form string metadata of the checkpoint (the {@code __metadata__} header entry). */
  Map<String, String> metadata();

  /** The file this source was opened from. */
  Path path();

  /**
   * Releases the file handles. Idempotent; reads after closing fail with {@link
   * IllegalStateException}.
   *
   * @throws UncheckedIOException if closing a file fails
   */
  @Override
  void close();
}
