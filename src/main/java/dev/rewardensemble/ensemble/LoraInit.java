package dev.rewardensemble.ensemble;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.StackedLora;
import dev.rewardensemble.model.RewardHeads;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Fresh trainable values of a LoRA ensemble, computed in plain Java from the configurations alone
 * (no graph needed): the values a {@link LoraEnsembleGraph} of the same configuration starts from.
 */
public final class LoraInit {
  private LoraInit() {}

  /**
   * PEFT's adapter initialisation for every adapted module ({@link StackedLora#modules}, in their
   * order): every {@code A [K, in, R]} kaiming-uniform with {@code a = sqrt(5)} (uniform in {@code
   * [-1/sqrt(in), 1/sqrt(in))}) and every {@code B [K, R, out]} zero, so that a fresh ensemble
   * computes the base model. Member k's values depend only on {@code seed}, k and the module key,
   * not on K.
   */
  public static Map<String, FloatTensor> adapters(
      ModelConfig c, LoraConfig lora, int k, long seed) {
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    int r = lora.rank();
    for (StackedLora.Module m : StackedLora.modules(c, lora)) {
      float[] a = new float[k * m.in() * r];
      float bound = (float) (1.0 / Math.sqrt(m.in()));
      for (int member = 0; member < k; member++) {
        SplittableRandom rnd =
            new SplittableRandom(seed * 1_000_003L + member * 7919L + m.module().hashCode());
        int off = member * m.in() * r;
        for (int i = 0; i < m.in() * r; i++) {
          a[off + i] = (float) rnd.nextDouble(-bound, bound);
        }
      }
      out.put(m.module() + StackedLora.A, new FloatTensor(new long[] {k, m.in(), r}, a));
      out.put(m.module() + StackedLora.B, FloatTensor.zeros(k, r, m.out()));
    }
    return out;
  }

  /**
   * K heads {@code score.weight [K, H]} drawn from {@code N(0, std^2)} (Hugging Face initialises
   * {@code score} with {@code initializer_range}, typically 0.02), independently per member,
   * seeded.
   */
  public static FloatTensor heads(int k, int hidden, long seed, double std) {
    float[] w = new float[k * hidden];
    for (int member = 0; member < k; member++) {
      SplittableRandom rnd = new SplittableRandom(seed * 31L + 1_000_000_007L * (member + 1));
      for (int i = 0; i < hidden; i++) {
        w[member * hidden + i] = (float) (gaussian(rnd) * std);
      }
    }
    return new FloatTensor(new long[] {k, hidden}, w);
  }

  /**
   * {@link #adapters} then {@code score.weight} ({@link #heads}): every trainable value of the
   * ensemble.
   */
  public static Map<String, FloatTensor> values(
      ModelConfig c, LoraConfig lora, int k, long seed, double headStd) {
    Map<String, FloatTensor> out = adapters(c, lora, k, seed);
    out.put(RewardHeads.KEY, heads(k, c.hiddenSize(), seed, headStd));
    return out;
  }

  private static double gaussian(SplittableRandom rnd) {
    double u1 = 1.0 - rnd.nextDouble(); // (0, 1]
    double u2 = rnd.nextDouble();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}
