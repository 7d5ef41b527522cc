package dev.rewardensemble.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.Precision;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link TensorSource#stream}: the bytes of a tensor in a target dtype, from the file's memory map,
 * as {@link Safetensors#read} and {@link TensorBytes#toBfloat16} define them; and the bfloat16
 * rounding itself (nearest, ties to even, NaN kept).
 */
class TensorStreamTest {
  @TempDir Path tmp;

  static byte[] collect(TensorSource src, String key, Precision target) {
    long n = src.info(key).numElements() * TensorBytes.bytes(target);
    byte[] out = new byte[Math.toIntExact(n)];
    boolean[] seen = new boolean[out.length];
    src.stream(
        key,
        target,
        (chunk, offset) -> {
          int len = chunk.remaining();
          chunk.get(out, (int) offset, len);
          for (int i = 0; i < len; i++) {
            assertTrue(!seen[(int) offset + i], "byte " + (offset + i) + " streamed twice");
            seen[(int) offset + i] = true;
          }
        });
    for (int i = 0; i < seen.length; i++) {
      assertTrue(seen[i], "byte " + i + " never streamed");
    }
    return out;
  }

  static float[] floats(byte[] b, Precision p) {
    ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    float[] out = new float[b.length / TensorBytes.bytes(p)];
    for (int i = 0; i < out.length; i++) {
      out[i] = p == Precision.BFLOAT16 ? TensorBytes.fromBfloat16(buf.getShort()) : buf.getFloat();
    }
    return out;
  }

  @Test
  void streamsEveryDtypePairAsReadAndRoundingDefineIt() throws Exception {
    SplittableRandom r = new SplittableRandom(1);
    // more than one conversion chunk (4 MiB) of float32
    float[] big = new float[(1 << 20) + 123];
    for (int i = 0; i < big.length; i++) {
      big[i] = (float) r.nextGaussian();
    }
    float[] small = {1f, -0f, Float.NaN, Float.POSITIVE_INFINITY, 1.00390625f, 3e-40f};
    Map<String, FloatTensor> w =
        Map.of(
            "big", new FloatTensor(new long[] {big.length}, big),
            "small", new FloatTensor(new long[] {2, 3}, small));
    for (Precision stored : Precision.values()) {
      Path file = tmp.resolve(stored.id() + ".safetensors");
      Safetensors.write(file, w, Map.of(), stored);
      try (Safetensors src = Safetensors.open(file)) {
        assertEquals(stored == Precision.BFLOAT16 ? "BF16" : "F32", src.info("big").dtype());
        for (String key : w.keySet()) {
          float[] read = src.read(key).data();
          // widening (or the same dtype) gives read()'s values exactly
          assertArrayEquals(read, floats(collect(src, key, Precision.FLOAT32), Precision.FLOAT32));
          // narrowing rounds each value as toBfloat16 does
          float[] narrowed = floats(collect(src, key, Precision.BFLOAT16), Precision.BFLOAT16);
          for (int i = 0; i < read.length; i++) {
            float want = TensorBytes.fromBfloat16(TensorBytes.toBfloat16(read[i]));
            assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(narrowed[i]), key + i);
          }
        }
      }
    }
  }

  @Test
  void bfloat16RoundsToNearestTiesToEven() {
    assertEquals((short) 0x3f80, TensorBytes.toBfloat16(1f));
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even mantissa, 1
    assertEquals((short) 0x3f80, TensorBytes.toBfloat16(1.00390625f));
    // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to 1 + 2^-6 (even)
    assertEquals((short) 0x3f82, TensorBytes.toBfloat16(1.01171875f));
    // just above half rounds up
    assertEquals((short) 0x3f81, TensorBytes.toBfloat16(Math.nextUp(1.00390625f)));
    assertTrue(Float.isNaN(TensorBytes.fromBfloat16(TensorBytes.toBfloat16(Float.NaN))));
    assertEquals(
        Float.POSITIVE_INFINITY,
        TensorBytes.fromBfloat16(TensorBytes.toBfloat16(Float.MAX_VALUE)),
        "overflow rounds to infinity as in PyTorch");
  }
}
