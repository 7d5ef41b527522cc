package dev.rewardensemble.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSortedMap;
import dev.rewardensemble.config.Precision;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * One <a href="https://github.com/huggingface/safetensors">safetensors</a> file: reads tensors on
 * demand and writes float32 checkpoints.
 *
 * <p>The format is an 8-byte little-endian unsigned header length {@code N}, a UTF-8 JSON object of
 * {@code N} bytes mapping each tensor name to {@code {"dtype", "shape", "data_offsets"}} (plus an
 * optional string-to-string {@code __metadata__} entry), then the data section holding the tensors'
 * little-endian bytes back to back.
 *
 * <p>{@link #open} reads and validates only the header, as strictly as the Rust reference
 * implementation: the tensors must tile the data section exactly (no overlaps, gaps or trailing
 * bytes) and each byte range must match its shape and dtype. Any violation is an {@link
 * IllegalArgumentException} reading {@code corrupt safetensors file <path>: <what>, tensor
 * '<key>'}. {@link #read} then reads one tensor's byte range with positional reads of the file
 * channel; the file is never loaded into the heap as a whole. An open instance is safe for
 * concurrent reads. It keeps reading the file it opened even if {@link #write} later replaces the
 * name with a new file. As with any {@link FileChannel}, interrupting a thread blocked in {@link
 * #read} closes the channel, after which the instance must be reopened.
 */
public final class Safetensors implements TensorSource {

  /** Largest header accepted, as in the reference implementation. */
  static final long MAX_HEADER_BYTES = 100_000_000L;

  private static final String METADATA_KEY = "__metadata__";

  /** Bytes read from or written to the channel at a time. */
  private static final int CHUNK_BYTES = 1 << 22;

  /** Strict JSON: duplicate keys and trailing content are errors, headers up to the size cap. */
  static final ObjectMapper JSON =
      JsonMapper.builder(
              JsonFactory.builder()
                  .streamReadConstraints(
                      StreamReadConstraints.builder()
                          .maxStringLength((int) MAX_HEADER_BYTES)
                          .maxNameLength((int) MAX_HEADER_BYTES)
                          .build())
                  .build())
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  private final Path path;
  private final FileChannel channel;
  private final long dataStart;
  private final ImmutableSortedMap<String, TensorInfo> infos;
  private final ImmutableMap<String, String> metadata;
  private volatile boolean closed;

  private Safetensors(
      Path path,
      FileChannel channel,
      long dataStart,
      ImmutableSortedMap<String, TensorInfo> infos,
      ImmutableMap<String, String> metadata) {
    this.path = path;
    this.channel = channel;
    this.dataStart = dataStart;
    this.infos = infos;
    this.metadata = metadata;
  }

  /**
   * Opens a safetensors file and validates its header. Tensor data is read later, by {@link #read}.
   *
   * @throws IllegalArgumentException if the file is not a well-formed safetensors file (the message
   *     names the file, the problem and the tensor if there is one)
   * @throws java.nio.file.NoSuchFileException if the file does not exist
   * @throws IOException if reading fails
   */
  public static Safetensors open(Path file) throws IOException {
    Objects.requireNonNull(file, "file");
    if (Files.isDirectory(file)) {
      throw new IllegalArgumentException(
          file + " is a directory, not a safetensors file (use TensorSources.openCheckpoint)");
    }
    FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
    try {
      Header header = readHeader(file, channel);
      return new Safetensors(file, channel, header.dataStart, header.infos, header.metadata);
    } catch (Throwable t) {
      try {
        channel.close();
      } catch (IOException e) {
        t.addSuppressed(e);
      }
      throw t;
    }
  }

  @Override
  public Set<String> keys() {
    return infos.keySet();
  }

  @Override
  public boolean contains(String key) {
    return infos.containsKey(key);
  }

  @Override
  public TensorInfo info(String key) {
    TensorInfo info = infos.get(Objects.requireNonNull(key, "key"));
    if (info == null) {
      throw new IllegalArgumentException("no tensor '" + key + "' in " + path);
    }
    return info;
  }

  @Override
  public FloatTensor read(String key) {
    TensorInfo info = info(key);
    DType dtype = DType.byName(info.dtype());
    if (!dtype.readableAsFloat) {
      throw new IllegalArgumentException(
          "unsupported dtype "
              + info.dtype()
              + " for tensor '"
              + key
              + "' in "
              + path
              + " (only "
              + DType.READABLE
              + " can be read as float)");
    }
    int count = checkedArraySize(info, path);
    ensureOpen();
    float[] out = new float[count];
    int bytesPerElement = dtype.bits / 8;
    int chunkElements = CHUNK_BYTES / bytesPerElement;
    ByteBuffer buffer =
        ByteBuffer.allocate((int) Math.min(info.byteSize(), CHUNK_BYTES))
            .order(ByteOrder.LITTLE_ENDIAN);
    long position = dataStart + info.begin();
    try {
      for (int done = 0; done < out.length; ) {
        int n = Math.min(chunkElements, out.length - done);
        buffer.clear().limit(n * bytesPerElement);
        readFully(buffer, position, key);
        buffer.flip();
        decode(dtype, buffer, out, done, n);
        position += (long) n * bytesPerElement;
        done += n;
      }
    } catch (IOException e) {
      throw new UncheckedIOException(
          "reading tensor '" + key + "' from " + path + " failed: " + e.getMessage(), e);
    }
    return new FloatTensor(info.shape(), out);
  }

  /**
   * Streams the tensor from a read-only memory map of its byte range (mapped in windows of at most
   * 1 GiB, each unmapped right after use): the mapped bytes themselves when {@code target} is the
   * stored dtype, else converted through a small buffer.
   */
  @Override
  public void stream(String key, Precision target, TensorBytes.Sink sink) {
    TensorInfo info = info(key);
    DType dtype = DType.byName(info.dtype());
    if (!dtype.readableAsFloat) {
      read(key); // throws the error naming the dtype
    }
    ensureOpen();
    int inBytes = dtype.bits / 8;
    int outBytes = TensorBytes.bytes(target);
    boolean same =
        dtype == DType.F32 && target == Precision.FLOAT32
            || dtype == DType.BF16 && target == Precision.BFLOAT16;
    long size = info.byteSize();
    long window = MAP_WINDOW_BYTES / inBytes * inBytes;
    ByteBuffer out =
        same
            ? null
            : ByteBuffer.allocate(
                    (int) Math.min(TensorBytes.CHUNK_BYTES, Math.max(1, size / inBytes) * outBytes))
                .order(ByteOrder.LITTLE_ENDIAN);
    try {
      for (long done = 0; done < size; ) {
        long n = Math.min(window, size - done);
        MappedByteBuffer m =
            channel.map(FileChannel.MapMode.READ_ONLY, dataStart + info.begin() + done, n);
        try {
          m.order(ByteOrder.LITTLE_ENDIAN);
          if (same) {
            sink.accept(m, done);
          } else {
            convert(dtype, m, target, out, done / inBytes * outBytes, sink);
          }
        } finally {
          TensorBytes.unmap(m);
        }
        done += n;
      }
    } catch (IOException e) {
      throw new UncheckedIOException(
          "reading tensor '" + key + "' from " + path + " failed: " + e.getMessage(), e);
    }
  }

  @Override
  public MappedRows mapRows(String key) {
    return mapRows(key, MappedRows.WINDOW_BYTES);
  }

  /** {@link #mapRows(String)} in windows of at most {@code windowBytes} (tests: several). */
  MappedRows mapRows(String key, long windowBytes) {
    TensorInfo info = info(key);
    ensureOpen();
    try {
      return MappedRows.map(path, channel, dataStart, info, windowBytes);
    } catch (IOException e) {
      throw new UncheckedIOException(
          "mapping tensor '" + key + "' of " + path + " failed: " + e.getMessage(), e);
    }
  }

  /** Largest byte range mapped at a time. */
  private static final long MAP_WINDOW_BYTES = 1L << 30;

  private static void convert(
      DType dtype,
      ByteBuffer in,
      Precision target,
      ByteBuffer out,
      long offset,
      TensorBytes.Sink sink) {
    int outBytes = TensorBytes.bytes(target);
    while (in.hasRemaining()) {
      out.clear();
      long start = offset;
      while (in.hasRemaining() && out.remaining() >= outBytes) {
        float f =
            switch (dtype) {
              case F32 -> in.getFloat();
              case F16 -> halfToFloat(in.getShort());
              case BF16 -> bfloat16ToFloat(in.getShort());
              case F64 -> (float) in.getDouble();
              default -> throw new AssertionError("not a float dtype: " + dtype);
            };
        if (target == Precision.BFLOAT16) {
          out.putShort(TensorBytes.toBfloat16(f));
        } else {
          out.putFloat(f);
        }
        offset += outBytes;
      }
      out.flip();
      sink.accept(out, start);
    }
  }

  @Override
  public Map<String, String> metadata() {
    return metadata;
  }

  @Override
  public Path path() {
    return path;
  }

  @Override
  public void close() {
    closed = true;
    try {
      channel.close();
    } catch (IOException e) {
      throw new UncheckedIOException("closing " + path + " failed", e);
    }
  }

  @Override
  public String toString() {
    return "Safetensors[" + path + ", " + infos.size() + " tensors]";
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  /** The element count of a tensor as an array length, or a clear error if it is too large. */
  static int checkedArraySize(TensorInfo info, Path file) {
    long count = info.numElements();
    if (count > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "tensor '"
              + info.name()
              + "' in "
              + file
              + " has "
              + count
              + " elements "
              + info.shapeString()
              + ", more than a Java float[] can hold ("
              + Integer.MAX_VALUE
              + ")");
    }
    return (int) count;
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException(path + " is closed");
    }
  }

  private void readFully(ByteBuffer buffer, long position, String key) throws IOException {
    while (buffer.hasRemaining()) {
      int n = channel.read(buffer, position);
      if (n < 0) {
        throw new EOFException(
            "unexpected end of file at byte "
                + position
                + " while reading tensor '"
                + key
                + "' (was "
                + path
                + " truncated after it was opened?)");
      }
      position += n;
    }
  }

  private static void decode(DType dtype, ByteBuffer in, float[] out, int offset, int count) {
    switch (dtype) {
      case F32 -> in.asFloatBuffer().get(out, offset, count);
      case F16 -> {
        for (int i = 0; i < count; i++) {
          out[offset + i] = halfToFloat(in.getShort());
        }
      }
      case BF16 -> {
        for (int i = 0; i < count; i++) {
          out[offset + i] = bfloat16ToFloat(in.getShort());
        }
      }
      case F64 -> {
        for (int i = 0; i < count; i++) {
          out[offset + i] = (float) in.getDouble();
        }
      }
      default -> throw new AssertionError("not a float dtype: " + dtype);
    }
  }

  /**
   * Converts IEEE 754 binary16 bits to the float of exactly the same value (every half is a float),
   * including signed zeros, subnormals, infinities and NaN payloads.
   */
  static float halfToFloat(short bits) {
    int h = bits & 0xffff;
    int sign = (h & 0x8000) << 16;
    int exponent = (h >>> 10) & 0x1f;
    int mantissa = h & 0x3ff;
    if (exponent == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
    }
    if (exponent == 0) {
      // Zero or subnormal: mantissa * 2^-24, exact in float since mantissa < 2^10.
      float magnitude = mantissa * 0x1p-24f;
      return sign == 0 ? magnitude : -magnitude;
    }
    return Float.intBitsToFloat(sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13));
  }

  /** Converts bfloat16 bits (the upper half of a float) to float, exactly. */
  static float bfloat16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xffff) << 16);
  }

  // ---------------------------------------------------------------------------------------------
  // Header parsing and validation

  private record Header(
      long dataStart,
      ImmutableSortedMap<String, TensorInfo> infos,
      ImmutableMap<String, String> metadata) {}

  private static Header readHeader(Path file, FileChannel channel) throws IOException {
    long fileSize = channel.size();
    if (fileSize < 8) {
      throw corrupt(file, "file has " + fileSize + " bytes, fewer than the 8-byte header length");
    }
    ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    readFully(file, channel, lengthBytes, 0);
    long headerLength = lengthBytes.flip().getLong();
    if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
      throw corrupt(
          file,
          "header length "
              + Long.toUnsignedString(headerLength)
              + " is larger than the maximum of "
              + MAX_HEADER_BYTES
              + " bytes");
    }
    if (headerLength > fileSize - 8) {
      throw corrupt(
          file,
          "header length " + headerLength + " exceeds the " + (fileSize - 8) + " bytes after it");
    }
    ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
    readFully(file, channel, headerBytes, 8);
    headerBytes.flip();
    String text = decodeUtf8(file, headerBytes);
    JsonNode root;
    try {
      root = JSON.readTree(text);
    } catch (JsonProcessingException e) {
      throw corrupt(file, "header is not valid JSON (" + e.getOriginalMessage() + ")", e);
    }
    if (root == null || root.isMissingNode()) {
      throw corrupt(file, "header is empty, not a JSON object");
    }
    if (!root.isObject()) {
      throw corrupt(file, "header is not a JSON object but " + root.getNodeType());
    }
    long dataStart = 8 + headerLength;
    long dataLength = fileSize - dataStart;
    ImmutableMap<String, String> metadata = ImmutableMap.of();
    List<TensorInfo> entries = new ArrayList<>();
    for (Map.Entry<String, JsonNode> field : root.properties()) {
      String key = field.getKey();
      if (key.equals(METADATA_KEY)) {
        metadata = parseMetadata(file, field.getValue());
      } else {
        entries.add(parseEntry(file, key, field.getValue(), dataLength));
      }
    }
    checkTiling(file, entries, dataLength);
    ImmutableSortedMap.Builder<String, TensorInfo> infos = ImmutableSortedMap.naturalOrder();
    for (TensorInfo info : entries) {
      infos.put(info.name(), info);
    }
    return new Header(dataStart, infos.build(), metadata);
  }

  private static String decodeUtf8(Path file, ByteBuffer bytes) {
    CharsetDecoder decoder =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    try {
      CharBuffer chars = decoder.decode(bytes);
      return chars.toString();
    } catch (CharacterCodingException e) {
      throw corrupt(
          file,
          "header is not valid UTF-8 (malformed byte sequence at header byte "
              + bytes.position()
              + ")",
          e);
    }
  }

  private static ImmutableMap<String, String> parseMetadata(Path file, JsonNode node) {
    if (node.isNull()) {
      return ImmutableMap.of();
    }
    if (!node.isObject()) {
      throw corrupt(file, METADATA_KEY + " is not a JSON object but " + node.getNodeType());
    }
    ImmutableMap.Builder<String, String> metadata = ImmutableMap.builder();
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      if (!e.getValue().isTextual()) {
        throw corrupt(
            file,
            METADATA_KEY
                + " value of '"
                + e.getKey()
                + "' is not a string but "
                + e.getValue().getNodeType()
                + " "
                + e.getValue());
      }
      metadata.put(e.getKey(), e.getValue().textValue());
    }
    return metadata.build();
  }

  private static TensorInfo parseEntry(Path file, String key, JsonNode node, long dataLength) {
    if (!node.isObject()) {
      throw corrupt(file, "entry is not a JSON object but " + node.getNodeType(), key);
    }
    JsonNode dtypeNode = node.get("dtype");
    if (dtypeNode == null) {
      throw corrupt(file, "entry has no dtype", key);
    }
    if (!dtypeNode.isTextual()) {
      throw corrupt(file, "dtype is not a string but " + dtypeNode, key);
    }
    String dtypeName = dtypeNode.textValue();
    DType dtype = DType.byName(dtypeName);
    if (dtype == null) {
      throw corrupt(
          file,
          "unknown dtype '" + dtypeName + "' (known: " + Arrays.toString(DType.values()) + ")",
          key);
    }
    long[] shape = parseLongs(file, key, node, "shape", -1);
    long[] offsets = parseLongs(file, key, node, "data_offsets", 2);
    long count = 1;
    for (long d : shape) {
      try {
        count = Math.multiplyExact(count, d);
      } catch (ArithmeticException e) {
        throw corrupt(file, "shape " + Arrays.toString(shape) + " overflows a 64-bit size", key);
      }
    }
    long bits;
    try {
      bits = Math.multiplyExact(count, (long) dtype.bits);
    } catch (ArithmeticException e) {
      throw corrupt(
          file,
          "shape " + Arrays.toString(shape) + " of " + dtypeName + " overflows a 64-bit size",
          key);
    }
    if (bits % 8 != 0) {
      throw corrupt(
          file,
          count + " elements of " + dtypeName + " do not fill whole bytes (" + bits + " bits)",
          key);
    }
    long begin = offsets[0];
    long end = offsets[1];
    if (begin > end) {
      throw corrupt(
          file, "data_offsets " + Arrays.toString(offsets) + " end before they begin", key);
    }
    if (end > dataLength) {
      throw corrupt(
          file,
          "data_offsets "
              + Arrays.toString(offsets)
              + " are out of range of the "
              + dataLength
              + "-byte data section",
          key);
    }
    if (end - begin != bits / 8) {
      throw corrupt(
          file,
          "data_offsets "
              + Arrays.toString(offsets)
              + " span "
              + (end - begin)
              + " bytes but shape "
              + Arrays.toString(shape)
              + " of "
              + dtypeName
              + " needs "
              + bits / 8,
          key);
    }
    return new TensorInfo(key, dtypeName, shape, begin, end);
  }

  /** Parses a JSON array of non-negative 64-bit integers, of the given length if not -1. */
  private static long[] parseLongs(
      Path file, String key, JsonNode entry, String field, int expectedLength) {
    JsonNode node = entry.get(field);
    if (node == null) {
      throw corrupt(file, "entry has no " + field, key);
    }
    if (!node.isArray()) {
      throw corrupt(file, field + " is not a JSON array but " + node, key);
    }
    ArrayNode array = (ArrayNode) node;
    if (expectedLength >= 0 && array.size() != expectedLength) {
      throw corrupt(
          file,
          field + " " + node + " has " + array.size() + " values, not " + expectedLength,
          key);
    }
    long[] values = new long[array.size()];
    for (int i = 0; i < values.length; i++) {
      JsonNode v = array.get(i);
      if (!v.isIntegralNumber()) {
        throw corrupt(file, field + " " + node + " holds " + v + ", not an integer", key);
      }
      if (!v.canConvertToLong()) {
        throw corrupt(file, field + " " + node + " holds " + v + ", which overflows 64 bits", key);
      }
      values[i] = v.longValue();
      if (values[i] < 0) {
        throw corrupt(file, field + " " + node + " holds negative value " + v, key);
      }
    }
    return values;
  }

  /** Checks that the tensors cover the data section exactly, in some order, without overlap. */
  private static void checkTiling(Path file, List<TensorInfo> entries, long dataLength) {
    List<TensorInfo> byOffset = new ArrayList<>(entries);
    byOffset.sort(
        Comparator.comparingLong(TensorInfo::begin)
            .thenComparingLong(TensorInfo::end)
            .thenComparing(TensorInfo::name));
    long expected = 0;
    TensorInfo previous = null;
    for (TensorInfo info : byOffset) {
      if (info.begin() < expected) {
        throw corrupt(
            file,
            "data_offsets ["
                + info.begin()
                + ", "
                + info.end()
                + "] overlap those of tensor '"
                + previous.name()
                + "' ["
                + previous.begin()
                + ", "
                + previous.end()
                + "]",
            info.name());
      }
      if (info.begin() > expected) {
        throw corrupt(
            file,
            "data_offsets ["
                + info.begin()
                + ", "
                + info.end()
                + "] leave a gap of "
                + (info.begin() - expected)
                + " bytes after byte "
                + expected,
            info.name());
      }
      expected = info.end();
      previous = info;
    }
    if (expected != dataLength) {
      throw corrupt(
          file,
          "tensors cover "
              + expected
              + " bytes of the "
              + dataLength
              + "-byte data section (trailing bytes)");
    }
  }

  private static void readFully(Path file, FileChannel channel, ByteBuffer buffer, long position)
      throws IOException {
    while (buffer.hasRemaining()) {
      int n = channel.read(buffer, position);
      if (n < 0) {
        throw new EOFException("unexpected end of file " + file + " at byte " + position);
      }
      position += n;
    }
  }

  private static IllegalArgumentException corrupt(Path file, String what) {
    return new IllegalArgumentException("corrupt safetensors file " + file + ": " + what);
  }

  private static IllegalArgumentException corrupt(Path file, String what, Throwable cause) {
    return new IllegalArgumentException("corrupt safetensors file " + file + ": " + what, cause);
  }

  private static IllegalArgumentException corrupt(Path file, String what, String key) {
    return new IllegalArgumentException(
        "corrupt safetensors file " + file + ": " + what + ", tensor '" + key + "'");
  }

  // ---------------------------------------------------------------------------------------------
  // Writing

  /** Writes float32 tensors without metadata; see {@link #write(Path, Map, Map)}. */
  public static void write(Path file, Map<String, FloatTensor> tensors) throws IOException {
    write(file, tensors, Map.of());
  }

  /**
   * Writes float32 tensors in the standard layout: {@code __metadata__} first (if non-empty), then
   * the tensors sorted by name with contiguous {@code data_offsets}, the header padded with spaces
   * to a multiple of 8 bytes, like the reference implementation.
   *
   * <p>The file is written through a temporary file in the same directory that is synced and then
   * renamed over {@code file}, so {@code file} is either its old self or complete, never partly
   * written. Data is streamed tensor by tensor.
   *
   * @param metadata free-form strings stored as {@code __metadata__}, e.g. {@code format=pt}
   * @throws IllegalArgumentException if a name is {@code __metadata__} or a tensor's data does not
   *     match its shape
   */
  public static void write(
      Path file, Map<String, FloatTensor> tensors, Map<String, String> metadata)
      throws IOException {
    write(file, tensors, metadata, Precision.FLOAT32);
  }

  /**
   * {@link #write(Path, Map, Map)} storing the values as {@code dtype}: {@code F32}, or {@code
   * BF16} rounded to nearest even as PyTorch's {@code .to(torch.bfloat16)} (how transformers saves
   * a bfloat16 model).
   */
  public static void write(
      Path file, Map<String, FloatTensor> tensors, Map<String, String> metadata, Precision dtype)
      throws IOException {
    Objects.requireNonNull(dtype, "dtype");
    Objects.requireNonNull(file, "file");
    Objects.requireNonNull(tensors, "tensors");
    Objects.requireNonNull(metadata, "metadata");
    // Values are streamed from where they are: a LazyWeights' tensors stay on disk (or in the
    // session) until their turn, one tensor in flight.
    LazyWeights lazy = tensors instanceof LazyWeights l ? l : new LazyWeights(tensors);
    SortedMap<String, long[]> sorted = new TreeMap<>();
    for (String key : tensors.keySet()) {
      if (key == null) {
        throw new IllegalArgumentException("null tensor name writing " + file);
      }
      if (key.equals(METADATA_KEY)) {
        throw new IllegalArgumentException(
            "tensor name '" + METADATA_KEY + "' is reserved, writing " + file);
      }
      if (lazy.isLazy(key)) {
        sorted.put(key, lazy.shape(key));
        continue;
      }
      FloatTensor t = tensors.get(key);
      if (t == null) {
        throw new IllegalArgumentException("tensor '" + key + "' is null, writing " + file);
      }
      // The shape array is mutable, so re-check what the record's constructor checked.
      long[] shape = t.shape();
      long n;
      try {
        n = FloatTensor.numElements(shape);
      } catch (IllegalArgumentException | ArithmeticException ex) {
        throw new IllegalArgumentException(
            "tensor '"
                + key
                + "' has invalid shape "
                + Arrays.toString(shape)
                + ", writing "
                + file,
            ex);
      }
      if (n != t.data().length) {
        throw new IllegalArgumentException(
            "tensor '"
                + key
                + "' has shape "
                + Arrays.toString(shape)
                + " but "
                + t.data().length
                + " values, writing "
                + file);
      }
      sorted.put(key, shape.clone());
    }
    Map<String, String> meta = new LinkedHashMap<>();
    for (Map.Entry<String, String> e : new TreeMap<>(metadata).entrySet()) {
      if (e.getValue() == null) {
        throw new IllegalArgumentException(
            "metadata value of '" + e.getKey() + "' is null, writing " + file);
      }
      meta.put(e.getKey(), e.getValue());
    }
    byte[] header = headerBytes(sorted, meta, dtype);
    try (LazyWeights.Reader reader = lazy.open()) {
      AtomicWrite.write(file, channel -> writeBody(channel, header, sorted, reader, dtype));
    }
  }

  /** The JSON header, padded with spaces to a multiple of 8 bytes. */
  private static byte[] headerBytes(
      SortedMap<String, long[]> tensors, Map<String, String> meta, Precision dtype)
      throws JsonProcessingException {
    ObjectNode root = JSON.createObjectNode();
    if (!meta.isEmpty()) {
      ObjectNode m = root.putObject(METADATA_KEY);
      meta.forEach(m::put);
    }
    long offset = 0;
    for (Map.Entry<String, long[]> e : tensors.entrySet()) {
      ObjectNode entry = root.putObject(e.getKey());
      entry.put("dtype", (dtype == Precision.BFLOAT16 ? DType.BF16 : DType.F32).name());
      ArrayNode shape = entry.putArray("shape");
      for (long d : e.getValue()) {
        shape.add(d);
      }
      long end = offset + (long) TensorBytes.bytes(dtype) * FloatTensor.numElements(e.getValue());
      entry.putArray("data_offsets").add(offset).add(end);
      offset = end;
    }
    byte[] json = JSON.writeValueAsBytes(root);
    int padded = (json.length + 7) / 8 * 8;
    byte[] header = Arrays.copyOf(json, padded);
    Arrays.fill(header, json.length, padded, (byte) ' ');
    return header;
  }

  private static void writeBody(
      FileChannel channel,
      byte[] header,
      SortedMap<String, long[]> tensors,
      LazyWeights.Reader reader,
      Precision dtype)
      throws IOException {
    ByteBuffer buffer = ByteBuffer.allocateDirect(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    buffer.putLong(header.length);
    // The header can be larger than the buffer (up to 100 MB), so write it as it is.
    buffer.flip();
    writeFully(channel, buffer);
    writeFully(channel, ByteBuffer.wrap(header));
    for (Map.Entry<String, long[]> t : tensors.entrySet()) {
      IOException[] failure = {null};
      long expected = TensorBytes.bytes(dtype) * FloatTensor.numElements(t.getValue());
      long[] written = {0};
      reader.stream(
          t.getKey(),
          dtype,
          (chunk, offset) -> {
            if (failure[0] == null) {
              if (offset != written[0]) {
                failure[0] =
                    new IOException(
                        "tensor '" + t.getKey() + "' streamed out of order at byte " + offset);
                return;
              }
              written[0] += chunk.remaining();
              try {
                writeFully(channel, chunk);
              } catch (IOException e) {
                failure[0] = e;
              }
            }
          });
      if (failure[0] != null) {
        throw failure[0];
      }
      if (written[0] != expected) {
        throw new IOException(
            "tensor '"
                + t.getKey()
                + "': "
                + written[0]
                + " bytes streamed, "
                + expected
                + " expected");
      }
    }
  }

  private static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      channel.write(buffer);
    }
  }
}
