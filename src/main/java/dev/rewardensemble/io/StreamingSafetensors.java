package dev.rewardensemble.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.Precision;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * Writes a safetensors file whose values are produced while writing, chunk by chunk, so that a file
 * far larger than the heap (a shard of a 7B checkpoint) is written with one chunk in memory. The
 * layout is {@link Safetensors#write}'s (the reference implementation's): {@code __metadata__}
 * first, the tensors sorted by name with contiguous offsets, the header padded with spaces to a
 * multiple of 8 bytes. Written to a temporary file beside {@code file} and renamed when complete
 * ({@link AtomicWrite}).
 */
public final class StreamingSafetensors {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Values converted and written at a time. */
  static final int CHUNK_VALUES = 1 << 20;

  private StreamingSafetensors() {}

  /** A tensor to write: its name and shape. */
  public record Entry(String name, long[] shape) {
    public Entry {
      Objects.requireNonNull(name, "name");
      shape = shape.clone();
      FloatTensor.numElements(shape);
    }

    public long size() {
      return FloatTensor.numElements(shape);
    }

    @Override
    public long[] shape() {
      return shape.clone();
    }
  }

  /** Produces a tensor's values in order. */
  @FunctionalInterface
  public interface Values {
    /**
     * Fills {@code out[0, count)} with the values at flat positions {@code [offset, offset +
     * count)} of tensor {@code name}; called with increasing offsets, each position once.
     */
    void fill(String name, long offset, float[] out, int count);
  }

  /**
   * Writes {@code entries} (any order; stored sorted by name) with {@code metadata} as {@code
   * dtype} (float32, or bfloat16 rounded to nearest even).
   */
  public static void write(
      Path file, List<Entry> entries, Map<String, String> metadata, Precision dtype, Values values)
      throws IOException {
    TreeMap<String, Entry> sorted = new TreeMap<>();
    for (Entry e : entries) {
      if (sorted.put(e.name(), e) != null) {
        throw new IllegalArgumentException(
            "tensor '" + e.name() + "' given twice, writing " + file);
      }
    }
    byte[] header = header(sorted, new TreeMap<>(metadata), dtype);
    AtomicWrite.write(
        file,
        channel -> {
          ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
          len.putLong(header.length).flip();
          writeFully(channel, len);
          writeFully(channel, ByteBuffer.wrap(header));
          float[] chunk = new float[CHUNK_VALUES];
          ByteBuffer bytes =
              ByteBuffer.allocateDirect(CHUNK_VALUES * TensorBytes.bytes(dtype))
                  .order(ByteOrder.LITTLE_ENDIAN);
          for (Entry e : sorted.values()) {
            long n = e.size();
            for (long done = 0; done < n; done += CHUNK_VALUES) {
              int count = (int) Math.min(CHUNK_VALUES, n - done);
              values.fill(e.name(), done, chunk, count);
              bytes.clear();
              if (dtype == Precision.BFLOAT16) {
                for (int i = 0; i < count; i++) {
                  bytes.putShort(TensorBytes.toBfloat16(chunk[i]));
                }
              } else {
                for (int i = 0; i < count; i++) {
                  bytes.putFloat(chunk[i]);
                }
              }
              bytes.flip();
              writeFully(channel, bytes);
            }
          }
        });
  }

  /** The bytes {@code entries} take in {@code dtype}. */
  public static long dataBytes(List<Entry> entries, Precision dtype) {
    return entries.stream().mapToLong(Entry::size).sum() * TensorBytes.bytes(dtype);
  }

  private static byte[] header(
      TreeMap<String, Entry> tensors, Map<String, String> meta, Precision dtype)
      throws IOException {
    ObjectNode root = JSON.createObjectNode();
    if (!meta.isEmpty()) {
      ObjectNode m = root.putObject("__metadata__");
      meta.forEach(m::put);
    }
    long offset = 0;
    for (Entry e : tensors.values()) {
      ObjectNode entry = root.putObject(e.name());
      entry.put("dtype", (dtype == Precision.BFLOAT16 ? DType.BF16 : DType.F32).name());
      ArrayNode shape = entry.putArray("shape");
      for (long d : e.shape()) {
        shape.add(d);
      }
      long end = offset + e.size() * TensorBytes.bytes(dtype);
      entry.putArray("data_offsets").add(offset).add(end);
      offset = end;
    }
    byte[] json = JSON.writeValueAsBytes(root);
    int padded = (json.length + 7) / 8 * 8;
    byte[] header = Arrays.copyOf(json, padded);
    Arrays.fill(header, json.length, padded, (byte) ' ');
    return header;
  }

  private static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      channel.write(buffer);
    }
  }
}
