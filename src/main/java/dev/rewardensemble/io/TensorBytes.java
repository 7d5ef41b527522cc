package dev.rewardensemble.io;

import dev.rewardensemble.config.Precision;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Tensor values as little-endian bytes of a storage dtype (float32 or bfloat16), the form a
 * TensorFlow tensor holds them in: what {@link TensorSource#stream} hands out chunk by chunk.
 */
public final class TensorBytes {

  /** Bytes converted at a time when a tensor's dtype differs from the target's. */
  static final int CHUNK_BYTES = 1 << 22;

  private TensorBytes() {}

  /** Receives a tensor's bytes in order, chunk by chunk ({@link TensorSource#stream}). */
  @FunctionalInterface
  public interface Sink {
    /**
     * {@code chunk}'s remaining bytes belong at byte {@code offset} of the tensor; the buffer is
     * only valid during the call.
     */
    void accept(ByteBuffer chunk, long offset);
  }

  /** Bytes per element of {@code p}. */
  public static int bytes(Precision p) {
    return p == Precision.BFLOAT16 ? 2 : 4;
  }

  /**
   * The bfloat16 nearest to {@code f} (round to nearest even, as TensorFlow's and PyTorch's casts);
   * NaN stays a (quiet) NaN.
   */
  public static short toBfloat16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if (Float.isNaN(f)) {
      return (short) ((bits >>> 16) | 0x40);
    }
    int rounding = 0x7fff + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  /** bfloat16 bits to the float of the same value (exact). */
  public static float fromBfloat16(short bits) {
    return Float.intBitsToFloat((bits & 0xffff) << 16);
  }

  /**
   * Streams {@code values} as {@code target}'s bytes to {@code sink}, one chunk of at most {@link
   * #CHUNK_BYTES} at a time.
   */
  public static void encode(float[] values, Precision target, Sink sink) {
    int per = bytes(target);
    ByteBuffer buf =
        ByteBuffer.allocate((int) Math.min(CHUNK_BYTES, Math.max(per, (long) values.length * per)))
            .order(ByteOrder.LITTLE_ENDIAN);
    int chunk = buf.capacity() / per;
    for (int done = 0; done < values.length; done += chunk) {
      int n = Math.min(chunk, values.length - done);
      buf.clear();
      if (target == Precision.BFLOAT16) {
        for (int i = 0; i < n; i++) {
          buf.putShort(toBfloat16(values[done + i]));
        }
      } else {
        buf.asFloatBuffer().put(values, done, n);
        buf.position(n * 4);
      }
      buf.flip();
      sink.accept(buf, (long) done * per);
    }
  }

  /**
   * Streams the little-endian values of {@code in} (its remaining bytes, of dtype {@code from}) to
   * {@code sink} as {@code to}'s bytes, starting at byte {@code offset} of the output: the buffer
   * itself when the dtypes agree, else converted (exactly when widening, to nearest even when
   * narrowing) through chunks of at most {@link #CHUNK_BYTES}.
   */
  public static void convert(ByteBuffer in, Precision from, Precision to, long offset, Sink sink) {
    in.order(ByteOrder.LITTLE_ENDIAN);
    if (from == to) {
      sink.accept(in, offset);
      return;
    }
    int inBytes = bytes(from);
    int outBytes = bytes(to);
    ByteBuffer out =
        ByteBuffer.allocate(
                (int) Math.min(CHUNK_BYTES, Math.max(1, in.remaining() / inBytes) * outBytes))
            .order(ByteOrder.LITTLE_ENDIAN);
    while (in.remaining() >= inBytes) {
      out.clear();
      long start = offset;
      while (in.remaining() >= inBytes && out.remaining() >= outBytes) {
        float f = from == Precision.BFLOAT16 ? fromBfloat16(in.getShort()) : in.getFloat();
        if (to == Precision.BFLOAT16) {
          out.putShort(toBfloat16(f));
        } else {
          out.putFloat(f);
        }
        offset += outBytes;
      }
      out.flip();
      sink.accept(out, start);
    }
  }

  /**
   * Unmaps a mapped buffer now instead of when it is garbage-collected, so that its pages stop
   * counting in the process's resident memory; a no-op where the JDK does not allow it.
   */
  static void unmap(ByteBuffer mapped) {
    if (!mapped.isDirect()) {
      return;
    }
    try {
      Method clean = UNSAFE_CLEANER;
      if (clean != null) {
        clean.invoke(UNSAFE, mapped);
      }
    } catch (ReflectiveOperationException | RuntimeException e) {
      // Left to the garbage collector.
    }
  }

  private static final Object UNSAFE;
  private static final Method UNSAFE_CLEANER;

  static {
    Object unsafe = null;
    Method cleaner = null;
    try {
      Class<?> c = Class.forName("sun.misc.Unsafe");
      Field f = c.getDeclaredField("theUnsafe");
      f.setAccessible(true);
      unsafe = f.get(null);
      cleaner = c.getMethod("invokeCleaner", ByteBuffer.class);
    } catch (ReflectiveOperationException | RuntimeException e) {
      unsafe = null;
      cleaner = null;
    }
    UNSAFE = unsafe;
    UNSAFE_CLEANER = cleaner;
  }
}
