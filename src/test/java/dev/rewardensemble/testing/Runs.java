package dev.rewardensemble.testing;

import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/** Feeding int batches and fetching float outputs in tests. */
public final class Runs {
  private Runs() {}

  /** Runs once with {@code ids} and {@code mask} fed; returns every fetch flattened row-major. */
  public static float[][] run(
      Session s,
      Operand<TInt32> idsIn,
      Operand<TInt32> maskIn,
      List<? extends Operand<TFloat32>> fetches,
      int[][] ids,
      int[][] mask) {
    try (TInt32 idT = tensor(ids);
        TInt32 mT = tensor(mask)) {
      Session.Runner runner = s.runner().feed(idsIn, idT).feed(maskIn, mT);
      fetches.forEach(runner::fetch);
      try (Result r = runner.run()) {
        float[][] out = new float[fetches.size()][];
        for (int i = 0; i < out.length; i++) {
          out[i] = read((TFloat32) r.get(i));
        }
        return out;
      }
    }
  }

  public static TInt32 tensor(int[][] a) {
    return TInt32.tensorOf(
        Shape.of(a.length, a[0].length), DataBuffers.of(Fixtures.flatInts(a), true, false));
  }

  public static float[] read(TFloat32 t) {
    float[] out = new float[Math.toIntExact(t.size())];
    t.asRawTensor().data().asFloats().read(out);
    return out;
  }
}
