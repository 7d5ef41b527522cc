package dev.rewardensemble.io;

import java.util.Arrays;
import java.util.Objects;

/**
 * Header entry of one tensor in a safetensors file: its name, dtype, shape and byte range.
 *
 * <p>The byte range {@code [begin, end)} is relative to the start of the data section (the byte
 * right after the JSON header), exactly as stored in the file's {@code data_offsets}.
 *
 * @param name the tensor's key in the file, e.g. {@code model.layers.0.self_attn.k_proj.weight}
 * @param dtype the safetensors dtype name as stored, e.g. {@code F32}, {@code BF16}, {@code I64}
 * @param shape dimensions, row-major; an empty array is a scalar (the array is copied)
 * @param begin first byte of the tensor, relative to the data section
 * @param end one past the last byte of the tensor, relative to the data section
 */
public record TensorInfo(String name, String dtype, long[] shape, long begin, long end) {

  /** Validates the entry and copies {@code shape}. */
  public TensorInfo {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dtype, "dtype");
    Objects.requireNonNull(shape, "shape");
    shape = shape.clone();
    if (begin < 0 || end < begin) {
      throw new IllegalArgumentException(
          "invalid byte range [" + begin + ", " + end + ") for tensor '" + name + "'");
    }
  }

  /** Returns a copy of the dimensions. */
  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** Number of dimensions (0 for a scalar). */
  public int rank() {
    return shape.length;
  }

  /** Product of the dimensions (1 for a scalar, 0 if any dimension is 0). */
  public long numElements() {
    return FloatTensor.numElements(shape);
  }

  /** Size of the tensor's data in bytes, {@code end - begin}. */
  public long byteSize() {
    return end - begin;
  }

  /** The shape as {@code [32, 96]} ({@code []} for a scalar). */
  public String shapeString() {
    return Arrays.toString(shape);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo t
        && name.equals(t.name)
        && dtype.equals(t.dtype)
        && Arrays.equals(shape, t.shape)
        && begin == t.begin
        && end == t.end;
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, dtype, Arrays.hashCode(shape), begin, end);
  }

  @Override
  public String toString() {
    return name + " " + dtype + shapeString() + " @[" + begin + ", " + end + ")";
  }
}
