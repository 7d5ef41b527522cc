package dev.rewardensemble.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
 * Rows of a matrix mapped from a safetensors file ({@link MappedRows}): gathered in any order and
 * across window boundaries equal to the rows {@link Safetensors#read} returns, converted between
 * F32 and BF16 as the file's own streaming converts, with ids outside the table refused by name.
 */
class MappedRowsTest {
  @TempDir Path tmp;

  private static FloatTensor table(int rows, int width, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] v = new float[rows * width];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) r.nextGaussian();
    }
    return new FloatTensor(new long[] {rows, width}, v);
  }

  /** Gathers {@code ids} as {@code target} and decodes them to floats. */
  private static float[] gather(MappedRows m, int[] ids, Precision target) {
    int width = (int) m.shape()[1];
    int per = TensorBytes.bytes(target);
    float[] out = new float[ids.length * width];
    boolean[] seen = new boolean[out.length];
    m.gather(
        ids,
        target,
        (chunk, offset) -> {
          ByteBuffer b = chunk.slice().order(ByteOrder.LITTLE_ENDIAN);
          for (int j = (int) (offset / per); b.remaining() >= per; j++) {
            assertFalse(seen[j], "element " + j + " written twice");
            seen[j] = true;
            out[j] =
                target == Precision.BFLOAT16
                    ? TensorBytes.fromBfloat16(b.getShort())
                    : b.getFloat();
          }
        });
    for (int j = 0; j < seen.length; j++) {
      assertTrue(seen[j], "element " + j + " never written");
    }
    return out;
  }

  @Test
  void rowsAcrossWindowsEqualTheStoredRowsInEitherDtype() throws Exception {
    int rows = 37;
    int width = 5;
    for (Precision stored : Precision.values()) {
      Path file = tmp.resolve(stored.id() + ".safetensors");
      Safetensors.write(file, Map.of("emb", table(rows, width, 3)), Map.of(), stored);
      try (Safetensors src = Safetensors.open(file)) {
        float[] all = src.read("emb").data(); // the stored values, widened exactly
        int[] ids = {36, 0, 5, 5, 6, 12, 35, 1, 18, 17, 0};
        // windows of 3 rows (and one of 2 at the end): ids fall at their starts, middles, ends
        for (long window : new long[] {3L * width * TensorBytes.bytes(stored), 1L << 30, 1}) {
          try (MappedRows m = src.mapRows("emb", window)) {
            assertArrayEquals(new long[] {rows, width}, m.shape());
            assertEquals(stored, m.stored());
            for (Precision target : Precision.values()) {
              float[] got = gather(m, ids, target);
              for (int i = 0; i < ids.length; i++) {
                for (int c = 0; c < width; c++) {
                  float want = all[ids[i] * width + c];
                  if (target == Precision.BFLOAT16) {
                    want = TensorBytes.fromBfloat16(TensorBytes.toBfloat16(want));
                  }
                  assertEquals(
                      want, got[i * width + c], 0f, stored + "->" + target + " id " + ids[i]);
                }
              }
            }
            assertArrayEquals(all, m.readAll(stored).data(), 0f);
          }
        }
      }
    }
  }

  @Test
  void idsOutsideTheTableAreRefusedByNameAndAClosedTableIsNotRead() throws Exception {
    Path file = tmp.resolve("t.safetensors");
    Safetensors.write(file, Map.of("emb", table(4, 3, 1)));
    MappedRows m;
    try (Safetensors src = Safetensors.open(file)) {
      m = src.mapRows("emb");
    }
    // the mapping outlives the file's channel
    assertEquals(3, gather(m, new int[] {3, 2}, Precision.FLOAT32).length / 2);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> m.gather(new int[] {1, 4}, Precision.FLOAT32, (c, o) -> {}));
    assertTrue(e.getMessage().contains("token id 4 (position 1)"), e.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> m.gather(new int[] {-1}, Precision.FLOAT32, (c, o) -> {}));
    m.close();
    m.close(); // idempotent
    assertThrows(
        IllegalStateException.class,
        () -> m.gather(new int[] {0}, Precision.FLOAT32, (c, o) -> {}));
  }

  @Test
  void onlyMatricesOfF32OrBf16CanBeMapped() {
    assertTrue(MappedRows.mappable("BF16", new long[] {10, 4}));
    assertTrue(MappedRows.mappable("F32", new long[] {10, 4}));
    assertFalse(MappedRows.mappable("F16", new long[] {10, 4}));
    assertFalse(MappedRows.mappable("F32", new long[] {10}));
    assertFalse(MappedRows.mappable("F32", new long[] {2, 3, 4}));
  }
}
