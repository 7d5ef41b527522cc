package dev.rewardensemble.train;

import org.tensorflow.Tensor;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.ndarray.buffer.FloatDataBuffer;
import org.tensorflow.types.TBool;
import org.tensorflow.types.TFloat32;

/** Test helpers: host float arrays to and from tensors. */
final class Tensors {
  private Tensors() {}

  static TFloat32 of(Shape shape, float[] data) {
    return TFloat32.tensorOf(shape, DataBuffers.of(data, true, false));
  }

  static TFloat32 of(float[][] rows) {
    int n = rows.length;
    int k = rows[0].length;
    float[] flat = new float[n * k];
    for (int b = 0; b < n; b++) {
      System.arraycopy(rows[b], 0, flat, b * k, k);
    }
    return of(Shape.of(n, k), flat);
  }

  static float[] floats(Tensor t) {
    TFloat32 f = (TFloat32) t;
    FloatDataBuffer buf = DataBuffers.ofFloats(f.size());
    f.copyTo(buf);
    float[] out = new float[(int) f.size()];
    buf.read(out);
    return out;
  }

  static float scalar(Tensor t) {
    return ((TFloat32) t).getFloat();
  }

  static boolean bool(Tensor t) {
    return ((TBool) t).getBoolean();
  }
}
