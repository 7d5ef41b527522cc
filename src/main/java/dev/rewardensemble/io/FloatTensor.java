package dev.rewardensemble.io;

import java.util.Arrays;

/**
 * A dense float32 tensor on the Java heap: the one in-memory weight format of the project (weights
 * are named by Hugging Face checkpoint keys in a {@code Map<String, FloatTensor>}).
 *
 * @param shape dimensions, row-major; an empty array is a scalar
 * @param data values, {@code data.length == product(shape)}
 */
public record FloatTensor(long[] shape, float[] data) {
  public FloatTensor {
    long n = numElements(shape);
    if (n != data.length) {
      throw new IllegalArgumentException(
          "shape " + Arrays.toString(shape) + " holds " + n + " values, got " + data.length);
    }
  }

  public static long numElements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
      }
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  public static FloatTensor zeros(long... shape) {
    return new FloatTensor(shape, new float[Math.toIntExact(numElements(shape))]);
  }

  public long size() {
    return data.length;
  }

  public String shapeString() {
    return Arrays.toString(shape);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof FloatTensor t
        && Arrays.equals(shape, t.shape)
        && Arrays.equals(data, t.data);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(shape) + Arrays.hashCode(data);
  }

  @Override
  public String toString() {
    return "FloatTensor" + shapeString();
  }
}
