package dev.rewardensemble.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class SafetensorsTest {

  @TempDir Path tmp;

  // ---------------------------------------------------------------------------------------------
  // Round trips

  @Test
  void roundTripWithMetadataScalarsAndEmptyTensors() throws IOException {
    Map<String, FloatTensor> tensors = new LinkedHashMap<>();
    tensors.put("z.weight", new FloatTensor(new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6}));
    tensors.put("a.scalar", new FloatTensor(new long[] {}, new float[] {-7.5f}));
    tensors.put("m.empty", new FloatTensor(new long[] {0, 4}, new float[0]));
    tensors.put(
        "b.special",
        new FloatTensor(
            new long[] {5},
            new float[] {
              Float.NaN, Float.POSITIVE_INFINITY, -0.0f, Float.MIN_VALUE, Float.MAX_VALUE
            }));
    Map<String, String> metadata = Map.of("format", "pt", "note", "héllo \"quoted\"");
    Path file = tmp.resolve("model.safetensors");

    Safetensors.write(file, tensors, metadata);

    try (Safetensors st = Safetensors.open(file)) {
      assertEquals(List.of("a.scalar", "b.special", "m.empty", "z.weight"), List.copyOf(st.keys()));
      assertEquals(metadata, st.metadata());
      assertEquals(file, st.path());
      for (Map.Entry<String, FloatTensor> e : tensors.entrySet()) {
        assertEquals(e.getValue(), st.read(e.getKey()), e.getKey());
        assertEquals("F32", st.info(e.getKey()).dtype());
      }
      assertEquals(new TensorInfo("a.scalar", "F32", new long[] {}, 0, 4), st.info("a.scalar"));
      assertEquals("[]", st.info("a.scalar").shapeString());
      TensorInfo empty = st.info("m.empty");
      assertEquals("[0, 4]", empty.shapeString());
      assertEquals(0, empty.byteSize());
      assertEquals(0, st.read("m.empty").size());
      assertEquals(
          Float.floatToRawIntBits(-0.0f), Float.floatToRawIntBits(st.read("b.special").data()[2]));
      assertEquals(tensors.keySet(), st.readAll().keySet());
    }
  }

  @Test
  void headerLayoutMatchesTheReferenceImplementation() throws IOException {
    Path file = tmp.resolve("x.safetensors");
    Map<String, FloatTensor> tensors = new LinkedHashMap<>();
    tensors.put("b", new FloatTensor(new long[] {2}, new float[] {1, 2}));
    tensors.put("a", new FloatTensor(new long[] {1, 1}, new float[] {3}));
    Safetensors.write(file, tensors, Map.of("format", "pt"));

    byte[] bytes = Files.readAllBytes(file);
    long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    assertEquals(0, n % 8, "header length is padded to a multiple of 8");
    String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
    assertEquals(
        "{\"__metadata__\":{\"format\":\"pt\"},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
        header.stripTrailing());
    assertTrue(header.endsWith(" ") || header.endsWith("}"));
    assertEquals(8 + n + 12, bytes.length);
    ByteBuffer data = ByteBuffer.wrap(bytes, (int) (8 + n), 12).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(3f, data.getFloat());
    assertEquals(1f, data.getFloat());
    assertEquals(2f, data.getFloat());
  }

  @Test
  void writesWithoutMetadataAndWithoutTensors() throws IOException {
    Path file = tmp.resolve("empty.safetensors");
    Safetensors.write(file, Map.of());
    byte[] bytes = Files.readAllBytes(file);
    assertEquals(16, bytes.length);
    assertEquals("{}      ", new String(bytes, 8, 8, StandardCharsets.US_ASCII));
    try (Safetensors st = Safetensors.open(file)) {
      assertTrue(st.keys().isEmpty());
      assertTrue(st.metadata().isEmpty());
    }

    Safetensors.write(file, Map.of("w", FloatTensor.zeros(3)));
    String text = Files.readString(file, StandardCharsets.ISO_8859_1);
    assertFalse(text.contains("__metadata__"));
  }

  @Test
  void tensorsLargerThanTheIoChunkRoundTrip() throws IOException {
    int n = 3_000_001; // 12 MB: several write and read chunks, with a ragged end
    float[] data = new float[n];
    for (int i = 0; i < n; i++) {
      data[i] = i * 0.25f - 17f;
    }
    Path file = tmp.resolve("big.safetensors");
    Safetensors.write(
        file,
        Map.of(
            "big", new FloatTensor(new long[] {n}, data),
            "small", new FloatTensor(new long[] {1}, new float[] {42})));
    try (Safetensors st = Safetensors.open(file)) {
      assertArrayEquals(data, st.read("big").data());
      assertArrayEquals(new float[] {42}, st.read("small").data());
    }
  }

  @Test
  void rewritingAFixtureReproducesItByteForByte() throws Exception {
    // The fixture was written by the Python safetensors package: same header, padding and data.
    Path fixture = fixture("gpt2-seqcls/model.safetensors");
    Path copy = tmp.resolve("copy.safetensors");
    try (Safetensors st = Safetensors.open(fixture)) {
      Safetensors.write(copy, st.readAll(), st.metadata());
    }
    assertArrayEquals(Files.readAllBytes(fixture), Files.readAllBytes(copy));
  }

  // ---------------------------------------------------------------------------------------------
  // Fixtures

  @Test
  void readsGpt2Fixture() throws Exception {
    try (Safetensors st = Safetensors.open(fixture("gpt2-seqcls/model.safetensors"))) {
      assertEquals(29, st.keys().size());
      assertEquals(Map.of("format", "pt"), st.metadata());
      String key = "transformer.h.0.attn.c_attn.weight";
      TensorInfo info = st.info(key);
      assertEquals("F32", info.dtype());
      assertArrayEquals(new long[] {32, 96}, info.shape());
      assertEquals(new TensorInfo(key, "F32", new long[] {32, 96}, 512, 12800), info);
      FloatTensor w = st.read(key);
      assertArrayEquals(new long[] {32, 96}, w.shape());
      assertEquals(-0.05824102833867073f, w.data()[0]);
      assertEquals(-0.04577557370066643f, w.data()[1]);
      assertEquals(0.019578222185373306f, w.data()[32 * 96 - 1]);
      assertArrayEquals(new long[] {1, 32}, st.read("score.weight").shape());
    }
  }

  @Test
  void readsLlamaFixtures() throws Exception {
    try (Safetensors st = Safetensors.open(fixture("llama-seqcls/model.safetensors"))) {
      assertEquals(21, st.keys().size());
      String key = "model.layers.0.self_attn.k_proj.weight";
      assertArrayEquals(new long[] {32, 64}, st.info(key).shape());
      float[] w = st.read(key).data();
      assertEquals(32 * 64, w.length);
      assertEquals(0.017566770315170288f, w[0]);
      assertEquals(0.1260843276977539f, w[1]);
      assertEquals(0.01728617399930954f, w[w.length - 1]);
      assertArrayEquals(new long[] {320, 64}, st.info("model.embed_tokens.weight").shape());
    }
    try (Safetensors st =
        Safetensors.open(fixture("llama-lora/member0/adapter_model.safetensors"))) {
      assertEquals(29, st.keys().size());
      assertArrayEquals(
          new long[] {4, 160},
          st.read("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight").shape());
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Conversion of other float dtypes

  @Test
  void convertsF16Exactly() throws IOException {
    short[] bits = {
      0x3c00,
      (short) 0xc100,
      0x7bff,
      0x0001,
      0x03ff,
      0x0400,
      0x7c00,
      (short) 0xfc00,
      (short) 0x8000,
      0x3555,
      0x0000
    };
    float[] expected = {
      1.0f,
      -2.5f,
      65504f,
      5.960464477539063e-08f, // smallest subnormal, 2^-24
      6.097555160522461e-05f, // largest subnormal
      6.103515625e-05f, // smallest normal, 2^-14
      Float.POSITIVE_INFINITY,
      Float.NEGATIVE_INFINITY,
      -0.0f,
      0.333251953125f,
      0.0f
    };
    ByteBuffer data = ByteBuffer.allocate(2 * bits.length + 2).order(ByteOrder.LITTLE_ENDIAN);
    for (short b : bits) {
      data.putShort(b);
    }
    data.putShort((short) 0x7e00); // NaN
    Path file =
        rawFile(
            "f16.safetensors",
            "{\"h\":{\"dtype\":\"F16\",\"shape\":["
                + (bits.length + 1)
                + "],\"data_offsets\":[0,"
                + data.capacity()
                + "]}}",
            data.array());
    try (Safetensors st = Safetensors.open(file)) {
      float[] got = st.read("h").data();
      for (int i = 0; i < expected.length; i++) {
        assertEquals(
            Float.floatToRawIntBits(expected[i]),
            Float.floatToRawIntBits(got[i]),
            "half 0x" + Integer.toHexString(bits[i] & 0xffff) + " -> " + got[i]);
      }
      assertTrue(Float.isNaN(got[bits.length]));
    }
  }

  @Test
  void everyF16ValueMatchesAnIndependentDecoding() {
    for (int h = 0; h < 1 << 16; h++) {
      int sign = h >>> 15;
      int exponent = (h >>> 10) & 0x1f;
      int mantissa = h & 0x3ff;
      double expected;
      if (exponent == 0x1f) {
        expected = mantissa == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
      } else if (exponent == 0) {
        expected = Math.scalb((double) mantissa, -24);
      } else {
        expected = Math.scalb(1.0 + mantissa / 1024.0, exponent - 15);
      }
      expected = sign == 1 ? -expected : expected;
      float got = Safetensors.halfToFloat((short) h);
      if (Double.isNaN(expected)) {
        assertTrue(Float.isNaN(got), Integer.toHexString(h));
      } else {
        assertEquals((float) expected, got, Integer.toHexString(h));
        assertEquals(expected, got, 0.0, Integer.toHexString(h)); // exact, not rounded
        assertEquals(sign == 1, (Float.floatToRawIntBits(got) >>> 31) == 1, Integer.toHexString(h));
      }
    }
  }

  @Test
  void convertsBf16Exactly() throws IOException {
    short[] bits = {
      0x3f80, (short) 0xc020, 0x477f, 0x0001, 0x7f80, (short) 0xff80, 0x7f7f, (short) 0x8000, 0x7fc0
    };
    float[] expected = {
      1.0f,
      -2.5f,
      65280f,
      9.18355e-41f, // smallest subnormal, 2^-133
      Float.POSITIVE_INFINITY,
      Float.NEGATIVE_INFINITY,
      3.3895314e38f, // largest finite
      -0.0f,
      Float.NaN
    };
    ByteBuffer data = ByteBuffer.allocate(2 * bits.length).order(ByteOrder.LITTLE_ENDIAN);
    for (short b : bits) {
      data.putShort(b);
    }
    Path file =
        rawFile(
            "bf16.safetensors",
            "{\"b\":{\"dtype\":\"BF16\",\"shape\":[3,3],\"data_offsets\":[0,18]}}",
            data.array());
    try (Safetensors st = Safetensors.open(file)) {
      FloatTensor t = st.read("b");
      assertArrayEquals(new long[] {3, 3}, t.shape());
      assertArrayEquals(expected, t.data());
      assertEquals(Float.floatToRawIntBits(-0.0f), Float.floatToRawIntBits(t.data()[7]));
      assertEquals(0x1p-133f, t.data()[3]);
    }
  }

  @Test
  void narrowsF64ToTheNearestFloat() throws IOException {
    double[] values = {1.0, -2.5, 0.1, 1e300, -1e-300, Double.NaN};
    ByteBuffer data = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (double v : values) {
      data.putDouble(v);
    }
    Path file =
        rawFile(
            "f64.safetensors",
            "{\"__metadata__\":{\"format\":\"np\"},"
                + "\"d\":{\"dtype\":\"F64\",\"shape\":[6],\"data_offsets\":[0,48]}}",
            data.array());
    try (Safetensors st = Safetensors.open(file)) {
      assertArrayEquals(
          new float[] {1f, -2.5f, 0.1f, Float.POSITIVE_INFINITY, -0.0f, Float.NaN},
          st.read("d").data());
    }
  }

  @Test
  void integerDtypesAreListedButNotReadAsFloat() throws IOException {
    Path file =
        rawFile(
            "ids.safetensors",
            "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                + "\"mask\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[16,19]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[19,23]}}",
            new byte[23]);
    try (Safetensors st = Safetensors.open(file)) {
      assertEquals(List.of("ids", "mask", "w"), List.copyOf(st.keys()));
      assertEquals("I64", st.info("ids").dtype());
      assertArrayEquals(new float[] {0f}, st.read("w").data());
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> st.read("ids"));
      assertEquals(
          "unsupported dtype I64 for tensor 'ids' in "
              + file
              + " (only F32, F16, BF16, F64 can be read as float)",
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> st.read("mask"));
      assertTrue(e.getMessage().contains("unsupported dtype BOOL for tensor 'mask'"));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Errors

  @Test
  void missingKeyNamesKeyAndFile() throws IOException {
    Path file = tmp.resolve("m.safetensors");
    Safetensors.write(file, Map.of("w", FloatTensor.zeros(2)));
    try (Safetensors st = Safetensors.open(file)) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> st.info("nope.weight"));
      assertEquals("no tensor 'nope.weight' in " + file, e.getMessage());
      assertThrows(IllegalArgumentException.class, () -> st.read("nope.weight"));
      assertFalse(st.contains("nope.weight"));
    }
  }

  @Test
  void readAfterCloseFails() throws IOException {
    Path file = tmp.resolve("c.safetensors");
    Safetensors.write(file, Map.of("w", FloatTensor.zeros(2)));
    Safetensors st = Safetensors.open(file);
    st.close();
    st.close(); // idempotent
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> st.read("w"));
    assertTrue(e.getMessage().contains(file.toString()));
  }

  @Test
  void tensorsTooLargeForAJavaArrayAreRejectedClearly() {
    Path file = tmp.resolve("huge.safetensors");
    TensorInfo huge = new TensorInfo("emb", "F16", new long[] {1L << 20, 1L << 11}, 0, 1L << 32);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> Safetensors.checkedArraySize(huge, file));
    assertTrue(e.getMessage().contains("'emb'"), e.getMessage());
    assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("2147483648 elements"), e.getMessage());
    TensorInfo fits = new TensorInfo("ok", "F16", new long[] {Integer.MAX_VALUE}, 0, 0);
    assertEquals(Integer.MAX_VALUE, Safetensors.checkedArraySize(fits, file));
  }

  @Test
  void openingADirectoryOrAMissingFileFails() {
    assertThrows(IllegalArgumentException.class, () -> Safetensors.open(tmp));
    assertThrows(
        java.nio.file.NoSuchFileException.class,
        () -> Safetensors.open(tmp.resolve("absent.safetensors")));
  }

  static Stream<Arguments> corruptFiles() {
    String f32x2 = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    return Stream.of(
        corrupt("shorter than 8 bytes", new byte[] {1, 2, 3, 4, 5}, "fewer than the 8-byte", null),
        corrupt("empty file", new byte[0], "file has 0 bytes", null),
        corrupt(
            "header length beyond the file",
            withLength(1000, "{}".getBytes(StandardCharsets.UTF_8), new byte[0]),
            "header length 1000 exceeds the 2 bytes after it",
            null),
        corrupt(
            "header larger than 100 MB",
            withLength(100_000_008L, "{}".getBytes(StandardCharsets.UTF_8), new byte[0]),
            "header length 100000008 is larger than the maximum of 100000000 bytes",
            null),
        corrupt(
            "header length beyond signed 64 bits",
            withLength(-1L, new byte[0], new byte[0]),
            "header length 18446744073709551615 is larger than the maximum",
            null),
        corrupt(
            "header not UTF-8",
            headerBytes(new byte[] {'{', '"', 'a', (byte) 0xff, '"', ':', '{', '}', '}'}),
            "header is not valid UTF-8",
            null),
        corrupt("header not JSON", file("hello, world", 0), "header is not valid JSON", null),
        corrupt("empty header", file("", 0), "header is empty", null),
        corrupt("header a JSON array", file("[1, 2]", 0), "header is not a JSON object", null),
        corrupt("trailing JSON", file("{} {}", 0), "header is not valid JSON", null),
        corrupt(
            "duplicate key",
            file("{\"w\":" + f32x2 + ",\"w\":" + f32x2 + "}", 8),
            "Duplicate field 'w'",
            null),
        corrupt("entry not an object", file("{\"w\": 5}", 0), "entry is not a JSON object", "w"),
        corrupt(
            "missing dtype",
            file("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
            "entry has no dtype",
            "w"),
        corrupt(
            "missing shape",
            file("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8),
            "entry has no shape",
            "w"),
        corrupt(
            "missing data_offsets",
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8),
            "entry has no data_offsets",
            "w"),
        corrupt(
            "dtype not a string",
            file("{\"w\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
            "dtype is not a string",
            "w"),
        corrupt(
            "unknown dtype",
            file("{\"w\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,32]}}", 32),
            "unknown dtype 'F128'",
            "w"),
        corrupt(
            "lower-case dtype",
            file("{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
            "unknown dtype 'f32'",
            "w"),
        corrupt(
            "shape not an array",
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8),
            "shape is not a JSON array",
            "w"),
        corrupt(
            "negative dimension",
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,8]}}", 8),
            "negative value -1",
            "w"),
        corrupt(
            "fractional dimension",
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8),
            "not an integer",
            "w"),
        corrupt(
            "dimension beyond 64 bits",
            file(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
                    + "\"data_offsets\":[0,8]}}",
                8),
            "overflows 64 bits",
            "w"),
        corrupt(
            "element count overflowing",
            file(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                    + "\"data_offsets\":[0,8]}}",
                8),
            "overflows a 64-bit size",
            "w"),
        corrupt(
            "byte size overflowing",
            file(
                "{\"w\":{\"dtype\":\"F64\",\"shape\":[1152921504606846976,2],"
                    + "\"data_offsets\":[0,8]}}",
                8),
            "overflows a 64-bit size",
            "w"),
        corrupt(
            "sub-byte dtype not filling bytes",
            file("{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2),
            "do not fill whole bytes",
            "w"),
        corrupt(
            "one data offset",
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8),
            "has 1 values, not 2",
            "w"),
        corrupt(
            "negative data offset",
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4),
            "negative value -4",
            "w"),
        corrupt(
            "offsets ending before they begin",
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8),
            "end before they begin",
            "w"),
        corrupt(
            "offsets beyond the data section",
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
            "[0, 16] are out of range of the 8-byte data section",
            "w"),
        corrupt(
            "offsets not matching shape and dtype",
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4),
            "span 4 bytes but shape [2] of F32 needs 8",
            "w"),
        corrupt(
            "overlapping tensors",
            file(
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12),
            "overlap those of tensor 'a'",
            "b"),
        corrupt(
            "gap between tensors",
            file(
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                12),
            "leave a gap of 4 bytes",
            "b"),
        corrupt(
            "trailing bytes after the tensors",
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8),
            "tensors cover 4 bytes of the 8-byte data section",
            null),
        corrupt(
            "metadata value not a string",
            file("{\"__metadata__\":{\"format\":\"pt\",\"step\":3}}", 0),
            "__metadata__ value of 'step' is not a string",
            null),
        corrupt(
            "metadata not an object",
            file("{\"__metadata__\":[\"pt\"]}", 0),
            "__metadata__ is not a JSON object",
            null));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("corruptFiles")
  void corruptFilesAreRejectedWithFileAndKey(
      String name, byte[] content, String fragment, String key) throws IOException {
    Path file = tmp.resolve(name.replace(' ', '_') + ".safetensors");
    Files.write(file, content);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Safetensors.open(file).close());
    String message = e.getMessage();
    assertTrue(message.startsWith("corrupt safetensors file " + file + ": "), message);
    assertTrue(message.contains(fragment), message);
    if (key != null) {
      assertTrue(message.endsWith(", tensor '" + key + "'"), message);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Writing safely

  @Test
  void writeReplacesAnExistingFileAndLeavesNoTemporaryFile() throws IOException {
    Path file = tmp.resolve("model.safetensors");
    Files.writeString(file, "old content");
    Safetensors.write(file, Map.of("w", new FloatTensor(new long[] {1}, new float[] {5})));
    assertEquals(List.of("model.safetensors"), listDir());
    try (Safetensors st = Safetensors.open(file)) {
      assertArrayEquals(new float[] {5}, st.read("w").data());
    }
  }

  @Test
  void failedWriteKeepsTheOldFileAndRemovesTheTemporaryFile() throws IOException {
    Path file = tmp.resolve("model.safetensors");
    Files.writeString(file, "old content");
    IOException failure =
        assertThrows(
            IOException.class,
            () ->
                AtomicWrite.write(
                    file,
                    channel -> {
                      channel.write(ByteBuffer.wrap(new byte[1000]));
                      assertEquals(2, listDir().size(), "the temporary file is next to the target");
                      throw new IOException("disk full (simulated)");
                    }));
    assertEquals("disk full (simulated)", failure.getMessage());
    assertEquals("old content", Files.readString(file));
    assertEquals(List.of("model.safetensors"), listDir());
  }

  @Test
  void invalidTensorsAreRejectedBeforeTouchingTheFile() throws IOException {
    Path file = tmp.resolve("model.safetensors");
    Files.writeString(file, "old content");
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Safetensors.write(file, Map.of("__metadata__", FloatTensor.zeros(1))));
    assertTrue(e.getMessage().contains("reserved"), e.getMessage());

    FloatTensor mutated = FloatTensor.zeros(2);
    mutated.shape()[0] = 3;
    e =
        assertThrows(
            IllegalArgumentException.class, () -> Safetensors.write(file, Map.of("w", mutated)));
    assertTrue(e.getMessage().contains("'w' has shape [3] but 2 values"), e.getMessage());
    assertEquals("old content", Files.readString(file));
    assertEquals(List.of("model.safetensors"), listDir());
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  private List<String> listDir() throws IOException {
    try (Stream<Path> files = Files.list(tmp)) {
      return files.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
    }
  }

  static Path fixture(String name) throws URISyntaxException {
    return Path.of(SafetensorsTest.class.getResource("/fixtures/" + name).toURI());
  }

  private Path rawFile(String name, String header, byte[] data) throws IOException {
    Path file = tmp.resolve(name);
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    Files.write(file, withLength(h.length, h, data));
    return file;
  }

  private static Arguments corrupt(String name, byte[] content, String fragment, String key) {
    return Arguments.of(name, content, fragment, key);
  }

  /** A file with this header and {@code dataBytes} zero bytes of data. */
  private static byte[] file(String header, int dataBytes) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    return withLength(h.length, h, new byte[dataBytes]);
  }

  private static byte[] headerBytes(byte[] header) {
    return withLength(header.length, header, new byte[0]);
  }

  /** Header length field (possibly lying), header bytes, data bytes. */
  private static byte[] withLength(long length, byte[] header, byte[] data) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(length).array());
    out.writeBytes(header);
    out.writeBytes(data);
    return out.toByteArray();
  }
}
