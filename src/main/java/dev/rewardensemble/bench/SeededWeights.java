package dev.rewardensemble.bench;

import dev.rewardensemble.config.Gpt2Config;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.TensorBytes;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.Transformers;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The benchmark's random weights, generated tensor by tensor whenever they are read or streamed
 * (into a graph's variables, into an exported checkpoint), so that no model-sized copy ever lives
 * in the Java heap: at 1B parameters the float32 trunk alone is 5 GB. Hugging Face's scheme as
 * {@link Init#trunk} (matrices and embeddings N(0, 0.02), GPT-2's residual projections scaled by
 * {@code 1/sqrt(2 n_layer)}, norm weights {@link ModelConfig#initialNormWeight}, biases 0), each
 * matrix from its own stream seeded by the seed and the tensor's name, so every read gives the same
 * values.
 *
 * <p>Stored as {@code bfloat16}, the values are rounded to bfloat16 and the tensors report dtype
 * {@code BF16}: the weights behave as a bf16 checkpoint (the project's {@code --weights auto} then
 * stores the frozen weights in bfloat16, an export writes {@code BF16} tensors).
 */
final class SeededWeights {
  /** Values generated per chunk. */
  private static final int CHUNK = 1 << 20;

  private SeededWeights() {}

  /** Every trunk weight of {@code c}, generated on demand, stored as {@code stored}. */
  static LazyWeights trunk(ModelConfig c, long seed, Precision stored) {
    LazyWeights w = new LazyWeights();
    double residual = c instanceof Gpt2Config g ? Init.STD / Math.sqrt(2.0 * g.nLayer()) : Init.STD;
    for (Map.Entry<String, long[]> e : Transformers.parameterShapes(c).entrySet()) {
      String k = e.getKey();
      long[] shape = e.getValue();
      if (k.contains("ln_") || k.contains("layernorm") || k.endsWith("norm.weight")) {
        w.putDeferred(k, constant(shape, k.endsWith(".bias") ? 0f : c.initialNormWeight(), stored));
      } else if (k.endsWith(".bias")) {
        w.putDeferred(k, constant(shape, 0f, stored));
      } else {
        boolean resid = c instanceof Gpt2Config && k.endsWith("c_proj.weight");
        w.putDeferred(k, normal(shape, resid ? residual : Init.STD, seed, k, stored));
      }
    }
    return w;
  }

  /** A tensor of N(0, std) values from a stream seeded by {@code seed} and {@code name}. */
  static LazyWeights.Deferred normal(
      long[] shape, double std, long seed, String name, Precision stored) {
    long streamSeed = seed * 0x9E3779B97F4A7C15L ^ mix(name);
    return deferred(
        shape,
        stored,
        () -> {
          SplittableRandom rnd = new SplittableRandom(streamSeed);
          return (out, n) -> {
            for (int i = 0; i < n; i++) {
              out[i] = (float) (rnd.nextGaussian() * std);
            }
          };
        });
  }

  /** A tensor filled with {@code v}. */
  static LazyWeights.Deferred constant(long[] shape, float v, Precision stored) {
    return deferred(shape, stored, () -> (out, n) -> Arrays.fill(out, 0, n, v));
  }

  /** Fills {@code out[0, n)} with the next {@code n} values of a tensor. */
  private interface Fill {
    void next(float[] out, int n);
  }

  private static LazyWeights.Deferred deferred(
      long[] shape, Precision stored, java.util.function.Supplier<Fill> values) {
    long[] s = shape.clone();
    long total = 1;
    for (long d : s) {
      total *= d;
    }
    long count = total;
    return new LazyWeights.Deferred() {
      @Override
      public long[] shape() {
        return s.clone();
      }

      @Override
      public Precision dtype() {
        return stored;
      }

      @Override
      public void stream(Precision target, TensorBytes.Sink sink) {
        Fill f = values.get();
        int per = TensorBytes.bytes(target);
        float[] buf = new float[(int) Math.min(CHUNK, Math.max(1, count))];
        for (long done = 0; done < count; done += buf.length) {
          int n = (int) Math.min(buf.length, count - done);
          f.next(buf, n);
          if (stored == Precision.BFLOAT16) {
            for (int i = 0; i < n; i++) {
              buf[i] = TensorBytes.fromBfloat16(TensorBytes.toBfloat16(buf[i]));
            }
          }
          long base = done * per;
          TensorBytes.encode(
              n == buf.length ? buf : Arrays.copyOf(buf, n),
              target,
              (chunk, offset) -> sink.accept(chunk, base + offset));
        }
      }
    };
  }

  private static long mix(String name) {
    long h = 1125899906842597L;
    for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
      h = 31 * h + b;
    }
    return h;
  }
}
