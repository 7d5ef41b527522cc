package dev.rewardensemble.io;

import dev.rewardensemble.config.Precision;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A two-dimensional tensor of a safetensors file ({@code [rows, width]}, stored as F32 or BF16)
 * mapped read-only into memory, whose rows are copied out on demand: an embedding table looked up
 * on the host, so that only the pages of the rows a batch reads become resident, as in a PyTorch
 * process that maps the same file. Mapped in windows of whole rows of at most 1 GiB; safe for
 * concurrent {@link #gather} calls (absolute reads only). {@link #close} unmaps it: no call may run
 * then or later.
 */
public final class MappedRows implements AutoCloseable {
  /** Largest window mapped at once: a {@link MappedByteBuffer} holds at most 2 GiB. */
  static final long WINDOW_BYTES = 1L << 30;

  private final Path file;
  private final String key;
  private final Precision stored;
  private final long rows;
  private final int width;
  private final int rowBytes;
  private final long rowsPerWindow;
  private final MappedByteBuffer[] windows;
  private volatile boolean closed;

  private MappedRows(
      Path file,
      String key,
      Precision stored,
      long rows,
      int width,
      long rowsPerWindow,
      MappedByteBuffer[] windows) {
    this.file = file;
    this.key = key;
    this.stored = stored;
    this.rows = rows;
    this.width = width;
    this.rowBytes = width * TensorBytes.bytes(stored);
    this.rowsPerWindow = rowsPerWindow;
    this.windows = windows;
  }

  /**
   * Whether a tensor stored as {@code dtype} (a safetensors dtype name) and shape can be mapped.
   */
  public static boolean mappable(String dtype, long[] shape) {
    return (dtype.equals("F32") || dtype.equals("BF16"))
        && shape.length == 2
        && shape[0] > 0
        && shape[1] > 0
        && shape[1] * 4 <= WINDOW_BYTES;
  }

  /**
   * Maps {@code info}'s bytes, which start at byte {@code dataStart + info.begin()} of the file, in
   * windows of whole rows of at most {@code windowBytes} (at least one row each).
   */
  static MappedRows map(
      Path file, FileChannel channel, long dataStart, TensorInfo info, long windowBytes)
      throws IOException {
    long[] shape = info.shape();
    if (!mappable(info.dtype(), shape)) {
      throw new IllegalArgumentException(
          file
              + ": tensor '"
              + info.name()
              + "' is "
              + info.dtype()
              + " "
              + info.shapeString()
              + ", not a matrix of F32 or BF16 rows");
    }
    Precision stored = info.dtype().equals("BF16") ? Precision.BFLOAT16 : Precision.FLOAT32;
    long rowBytes = shape[1] * TensorBytes.bytes(stored);
    long perWindow = Math.max(1, Math.min(WINDOW_BYTES, windowBytes) / rowBytes);
    int n = Math.toIntExact((shape[0] + perWindow - 1) / perWindow);
    MappedByteBuffer[] windows = new MappedByteBuffer[n];
    try {
      for (int i = 0; i < n; i++) {
        long first = i * perWindow;
        long count = Math.min(perWindow, shape[0] - first);
        windows[i] =
            channel.map(
                FileChannel.MapMode.READ_ONLY,
                dataStart + info.begin() + first * rowBytes,
                count * rowBytes);
        windows[i].order(ByteOrder.LITTLE_ENDIAN);
      }
    } catch (IOException | RuntimeException e) {
      for (MappedByteBuffer w : windows) {
        if (w != null) {
          TensorBytes.unmap(w);
        }
      }
      throw e;
    }
    return new MappedRows(file, info.name(), stored, shape[0], (int) shape[1], perWindow, windows);
  }

  /** {@code [rows, width]}. */
  public long[] shape() {
    return new long[] {rows, width};
  }

  /** The dtype the rows are stored in in the file. */
  public Precision stored() {
    return stored;
  }

  /**
   * Rows {@code ids} in order as {@code target}'s little-endian bytes, row {@code i} at byte {@code
   * i * width * bytes(target)} of the output: the stored bytes when the dtypes agree, else
   * converted (exactly when widening, to the nearest bfloat16, ties to even, when narrowing). The
   * chunks handed to {@code sink} are valid only during the call.
   *
   * @throws IllegalArgumentException naming the first id outside {@code [0, rows)}
   */
  public void gather(int[] ids, Precision target, TensorBytes.Sink sink) {
    if (closed) {
      throw new IllegalStateException(file + ": rows of '" + key + "' read after close");
    }
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= rows) {
        throw new IllegalArgumentException(
            "token id "
                + ids[i]
                + " (position "
                + i
                + ") outside the table '"
                + key
                + "' [0, "
                + rows
                + ")");
      }
    }
    long outRow = (long) width * TensorBytes.bytes(target);
    for (int i = 0; i < ids.length; i++) {
      ByteBuffer w = windows[(int) (ids[i] / rowsPerWindow)];
      int at = Math.toIntExact(ids[i] % rowsPerWindow * rowBytes);
      ByteBuffer row = w.slice(at, rowBytes).order(ByteOrder.LITTLE_ENDIAN);
      TensorBytes.convert(row, stored, target, i * outRow, sink);
    }
  }

  /** Every row as float32 values of {@code target}'s precision (rounded when it is bfloat16). */
  public FloatTensor readAll(Precision target) {
    float[] out = new float[Math.toIntExact(rows * width)];
    int[] ids = new int[Math.toIntExact(rows)];
    Arrays.setAll(ids, i -> i);
    gather(
        ids,
        target,
        (chunk, offset) -> {
          ByteBuffer b = chunk.slice().order(ByteOrder.LITTLE_ENDIAN);
          int per = TensorBytes.bytes(target);
          int at = Math.toIntExact(offset / per);
          for (int j = 0; b.remaining() >= per; j++) {
            out[at + j] =
                target == Precision.BFLOAT16
                    ? TensorBytes.fromBfloat16(b.getShort())
                    : b.getFloat();
          }
        });
    return new FloatTensor(shape(), out);
  }

  /** Unmaps the table now (idempotent); its pages stop counting in the process's memory. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (MappedByteBuffer w : windows) {
      TensorBytes.unmap(w);
    }
  }
}
