package dev.rewardensemble.model;

import dev.rewardensemble.config.Gpt2Config;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.FloatTensor;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Seeded random initialisation in Hugging Face's scheme: matrices and embeddings ~ N(0, 0.02), norm
 * weights 1, biases 0 (GPT-2's residual projections scaled by 1/sqrt(2 * n_layer)). Used for models
 * built from a {@code tf-graphs/} preset and for fresh reward heads.
 */
public final class Init {
  /** Hugging Face's default {@code initializer_range}. */
  public static final double STD = 0.02;

  private Init() {}

  /** Every trunk weight of {@code c}, seeded. */
  public static Map<String, FloatTensor> trunk(ModelConfig c, long seed) {
    Map<String, long[]> shapes = Transformers.parameterShapes(c);
    dev.rewardensemble.config.ModelConfigs.requireMemory(c, shapes, 0);
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    SplittableRandom rng = new SplittableRandom(seed);
    double residual = c instanceof Gpt2Config g ? STD / Math.sqrt(2.0 * g.nLayer()) : STD;
    for (Map.Entry<String, long[]> e : shapes.entrySet()) {
      String k = e.getKey();
      long[] shape = e.getValue();
      if (k.contains("ln_") || k.contains("layernorm") || k.endsWith("norm.weight")) {
        out.put(k, filled(shape, k.endsWith(".bias") ? 0f : c.initialNormWeight()));
      } else if (k.endsWith(".bias")) {
        out.put(k, filled(shape, 0f));
      } else {
        boolean resid = c instanceof Gpt2Config && k.endsWith("c_proj.weight");
        out.put(k, normal(shape, resid ? residual : STD, rng.split()));
      }
    }
    return out;
  }

  /**
   * {@code K} reward heads {@code [K, H]}; head k is drawn from its own stream of {@code seed + k}.
   */
  public static FloatTensor heads(int k, int hidden, long seed) {
    float[] data = new float[k * hidden];
    for (int h = 0; h < k; h++) {
      FloatTensor row =
          normal(new long[] {hidden}, STD, new SplittableRandom(seed * 1_000_003L + h));
      System.arraycopy(row.data(), 0, data, h * hidden, hidden);
    }
    return new FloatTensor(new long[] {k, hidden}, data);
  }

  public static FloatTensor normal(long[] shape, double std, SplittableRandom rng) {
    float[] d = new float[Math.toIntExact(FloatTensor.numElements(shape))];
    for (int i = 0; i < d.length; i += 2) {
      double u1 = 1.0 - rng.nextDouble();
      double u2 = rng.nextDouble();
      double r = Math.sqrt(-2 * Math.log(u1));
      d[i] = (float) (std * r * Math.cos(2 * Math.PI * u2));
      if (i + 1 < d.length) {
        d[i + 1] = (float) (std * r * Math.sin(2 * Math.PI * u2));
      }
    }
    return new FloatTensor(shape, d);
  }

  private static FloatTensor filled(long[] shape, float v) {
    float[] d = new float[Math.toIntExact(FloatTensor.numElements(shape))];
    java.util.Arrays.fill(d, v);
    return new FloatTensor(shape, d);
  }
}
