package dev.rewardensemble.ensemble;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.TensorBytes;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.StackedLora;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.model.Transformers;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * WARM (Rame et al. 2024): the members of an ensemble that share an initialisation averaged, weight
 * by weight, into one reward model with one model's inference cost. Pure: the result is an {@link
 * EnsembleModel} of K = 1 whose averaged tensors are computed one at a time when they are read or
 * written (nothing is held for the whole model), the others left where they are.
 *
 * <ul>
 *   <li>linear: one trunk, the K heads averaged: the merged reward is exactly the mean of the raw
 *       member rewards (the head is linear);
 *   <li>independent: every tensor averaged elementwise over the members (the caller checks that
 *       they share an initialisation);
 *   <li>LoRA, {@link Into#BASE}: each adapted weight becomes {@code W + mean_k s_k A_k B_k} (the
 *       members' deltas, with their own scalings, folded into the trunk), heads averaged: a single
 *       model;
 *   <li>LoRA, {@link Into#ADAPTER}: one adapter of rank K*R that is exactly the mean delta: {@code
 *       A = [A_1 .. A_K]}, {@code B = [B_1; ..; B_K] / K}, the scaling kept ({@code alpha = s * K *
 *       R}), heads averaged: a LoRA model of K = 1, equal to the {@code BASE} merge.
 * </ul>
 *
 * Member rewards are raw: a stored normalisation is not carried over (the merged model is one new
 * model, not K standardised members).
 */
public final class WeightAveraging {
  private WeightAveraging() {}

  /** Where a LoRA ensemble's averaged adapters go. */
  public enum Into {
    /** Folded into the trunk's weights: a single model. */
    BASE,
    /** One adapter of rank K*R over the unchanged trunk. */
    ADAPTER;

    public String id() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** By its name ({@code base}, {@code adapter}); the error lists both. */
    public static Into byName(String s) {
      for (Into i : values()) {
        if (i.id().equals(s)) {
          return i;
        }
      }
      throw new IllegalArgumentException("--into must be base or adapter, got '" + s + "'");
    }
  }

  /**
   * The members to average: {@code chosen} (null or empty: all), each in {@code [0, K)}, no
   * repeats, at least two. Errors name the value.
   */
  public static List<Integer> members(EnsembleModel m, List<Integer> chosen) {
    int k = m.members();
    if (k < 2) {
      throw new IllegalArgumentException(
          m.source()
              + " is a "
              + (m.kind() == EnsembleKind.SINGLE ? "single reward model" : m.kind().id() + " model")
              + " with K = "
              + k
              + ": there is nothing to average (rme merge needs an ensemble of K >= 2)");
    }
    if (chosen == null || chosen.isEmpty()) {
      List<Integer> all = new ArrayList<>();
      for (int i = 0; i < k; i++) {
        all.add(i);
      }
      return all;
    }
    Set<Integer> seen = new HashSet<>();
    for (Integer i : chosen) {
      if (i == null || i < 0 || i >= k) {
        throw new IllegalArgumentException(
            "--members: member " + i + " does not exist (" + m.source() + " has K = " + k + ")");
      }
      if (!seen.add(i)) {
        throw new IllegalArgumentException("--members: member " + i + " is listed twice");
      }
    }
    if (chosen.size() < 2) {
      throw new IllegalArgumentException(
          "--members: averaging needs at least two members, got " + chosen);
    }
    return List.copyOf(chosen);
  }

  /**
   * The weight average of {@code members} of {@code m} (validated by {@link #members}); {@code
   * into} places a LoRA ensemble's adapters (null: {@link Into#BASE}) and is refused as {@link
   * Into#ADAPTER} for kinds without adapters.
   */
  public static EnsembleModel average(EnsembleModel m, List<Integer> members, Into into) {
    if (into == Into.ADAPTER && m.kind() != EnsembleKind.LORA) {
      throw new IllegalArgumentException(
          "--into adapter needs a LoRA ensemble, " + m.source() + " is " + m.kind().id());
    }
    List<Integer> sel = members(m, members);
    return switch (m.kind()) {
      case SINGLE -> throw new IllegalStateException("members() refuses K = 1");
      case LINEAR -> single(m, linear(m, sel));
      case INDEPENDENT -> single(m, independent(m, sel));
      case LORA -> into == Into.ADAPTER ? loraAdapter(m, sel) : single(m, loraBase(m, sel));
    };
  }

  private static EnsembleModel single(EnsembleModel m, LazyWeights w) {
    return new EnsembleModel(
        EnsembleSpec.of(EnsembleKind.SINGLE, 1).withAggregation(AggregationConfig.mean()),
        m.config(),
        m.rewardToken(),
        w,
        null,
        m.tokenizer(),
        m.source());
  }

  /** The mean of the selected rows of {@code score.weight [K, H]}, as {@code [1, H]}. */
  static FloatTensor meanHead(FloatTensor heads, List<Integer> sel) {
    int h = Math.toIntExact(heads.shape()[1]);
    double[] acc = new double[h];
    for (int k : sel) {
      for (int i = 0; i < h; i++) {
        acc[i] += heads.data()[k * h + i];
      }
    }
    float[] out = new float[h];
    for (int i = 0; i < h; i++) {
      out[i] = (float) (acc[i] / sel.size());
    }
    return new FloatTensor(new long[] {1, h}, out);
  }

  private static LazyWeights linear(EnsembleModel m, List<Integer> sel) {
    LazyWeights w = new LazyWeights(m.weights());
    w.put(RewardHeads.KEY, meanHead(m.weights().get(RewardHeads.KEY), sel));
    return w;
  }

  private static LazyWeights independent(EnsembleModel m, List<Integer> sel) {
    Map<String, FloatTensor> src = m.weights();
    String p0 = IndependentGraph.prefix(sel.get(0));
    LazyWeights w = new LazyWeights();
    for (String key : src.keySet()) {
      if (!key.startsWith(p0)) {
        continue;
      }
      String plain = key.substring(p0.length());
      long[] shape = LazyWeights.shapeOf(src, key);
      for (int k : sel) {
        String kk = IndependentGraph.prefix(k) + plain;
        if (!src.containsKey(kk)) {
          throw new IllegalArgumentException(
              m.source()
                  + ": member "
                  + k
                  + " has no tensor '"
                  + plain
                  + "' (member "
                  + sel.get(0)
                  + " has)");
        }
        long[] s = LazyWeights.shapeOf(src, kk);
        if (!Arrays.equals(s, shape)) {
          throw new IllegalArgumentException(
              m.source()
                  + ": tensor '"
                  + plain
                  + "' is "
                  + Arrays.toString(s)
                  + " in member "
                  + k
                  + " and "
                  + Arrays.toString(shape)
                  + " in member "
                  + sel.get(0)
                  + ": members of different shapes share no initialisation");
        }
      }
      w.putDeferred(
          plain,
          computed(
              shape,
              () -> {
                int n = Math.toIntExact(FloatTensor.numElements(shape));
                double[] acc = new double[n];
                for (int k : sel) {
                  float[] d = src.get(IndependentGraph.prefix(k) + plain).data();
                  for (int i = 0; i < n; i++) {
                    acc[i] += d[i];
                  }
                }
                float[] out = new float[n];
                for (int i = 0; i < n; i++) {
                  out[i] = (float) (acc[i] / sel.size());
                }
                return new FloatTensor(shape.clone(), out);
              }));
    }
    for (int k : sel) {
      String pk = IndependentGraph.prefix(k);
      for (String key : src.keySet()) {
        if (key.startsWith(pk) && !w.containsKey(key.substring(pk.length()))) {
          throw new IllegalArgumentException(
              m.source()
                  + ": member "
                  + k
                  + " has a tensor '"
                  + key.substring(pk.length())
                  + "' that member "
                  + sel.get(0)
                  + " has not");
        }
      }
    }
    return w;
  }

  /**
   * The mean delta of the selected members of module {@code mod} in the orientation {@code [in,
   * out]}: {@code s / n * sum_k A_k B_k} (each member's own scaling is already folded into its B by
   * {@link dev.rewardensemble.lora.PeftAdapters#stack}, s is the stack's scaling).
   */
  static double[] meanDelta(EnsembleModel m, StackedLora.Module mod, List<Integer> sel) {
    LoraConfig lora = m.lora();
    int r = lora.rank();
    int in = mod.in();
    int out = mod.out();
    float[] a = m.weights().get(mod.module() + StackedLora.A).data(); // [K, in, R]
    float[] b = m.weights().get(mod.module() + StackedLora.B).data(); // [K, R, out]
    double f = lora.scaling() / sel.size();
    double[] d = new double[in * out];
    for (int k : sel) {
      for (int i = 0; i < in; i++) {
        for (int j = 0; j < r; j++) {
          double aij = a[(k * in + i) * r + j];
          if (aij == 0) {
            continue;
          }
          int bo = (k * r + j) * out;
          int dO = i * out;
          for (int o = 0; o < out; o++) {
            d[dO + o] += aij * b[bo + o];
          }
        }
      }
    }
    for (int i = 0; i < d.length; i++) {
      d[i] *= f;
    }
    return d;
  }

  private static LazyWeights loraBase(EnsembleModel m, List<Integer> sel) {
    ModelConfig c = m.config();
    boolean conv1d = c.conv1dWeights();
    LazyWeights w = new LazyWeights();
    for (String key : Transformers.parameterShapes(c).keySet()) {
      w.putFrom(key, m.weights(), key);
    }
    for (StackedLora.Module mod : StackedLora.modules(c, m.lora())) {
      String key = mod.module() + ".weight";
      long[] shape = LazyWeights.shapeOf(m.weights(), key);
      w.putDeferred(
          key,
          computed(
              shape,
              () -> {
                float[] base = m.weights().get(key).data();
                double[] d = meanDelta(m, mod, sel); // [in, out]
                int in = mod.in();
                int out = mod.out();
                float[] res = new float[base.length];
                for (int i = 0; i < in; i++) {
                  for (int o = 0; o < out; o++) {
                    int at =
                        conv1d ? i * out + o : o * in + i; // Conv1D [in, out], Linear [out, in]
                    res[at] = (float) (base[at] + d[i * out + o]);
                  }
                }
                return new FloatTensor(shape.clone(), res);
              }));
    }
    w.put(RewardHeads.KEY, meanHead(m.weights().get(RewardHeads.KEY), sel));
    return w;
  }

  private static EnsembleModel loraAdapter(EnsembleModel m, List<Integer> sel) {
    ModelConfig c = m.config();
    LoraConfig lora = m.lora();
    int r = lora.rank();
    int n = sel.size();
    int rank = n * r;
    // The scaling stays s: alpha / (K R) = s.
    LoraConfig merged = lora.withRank(rank, lora.scaling() * rank);
    LazyWeights w = new LazyWeights();
    for (String key : Transformers.parameterShapes(c).keySet()) {
      w.putFrom(key, m.weights(), key);
    }
    for (StackedLora.Module mod : StackedLora.modules(c, lora)) {
      int in = mod.in();
      int out = mod.out();
      float[] a = m.weights().get(mod.module() + StackedLora.A).data(); // [K, in, R]
      float[] b = m.weights().get(mod.module() + StackedLora.B).data(); // [K, R, out]
      float[] a2 = new float[in * rank];
      float[] b2 = new float[rank * out];
      for (int slot = 0; slot < n; slot++) {
        int k = sel.get(slot);
        for (int i = 0; i < in; i++) {
          for (int j = 0; j < r; j++) {
            a2[i * rank + slot * r + j] = a[(k * in + i) * r + j];
          }
        }
        for (int j = 0; j < r; j++) {
          for (int o = 0; o < out; o++) {
            b2[(slot * r + j) * out + o] = b[(k * r + j) * out + o] / n;
          }
        }
      }
      w.put(mod.module() + StackedLora.A, new FloatTensor(new long[] {1, in, rank}, a2));
      w.put(mod.module() + StackedLora.B, new FloatTensor(new long[] {1, rank, out}, b2));
    }
    w.put(RewardHeads.KEY, meanHead(m.weights().get(RewardHeads.KEY), sel));
    return new EnsembleModel(
        EnsembleSpec.of(EnsembleKind.LORA, 1),
        c,
        m.rewardToken(),
        w,
        merged,
        m.tokenizer(),
        m.source());
  }

  /** A tensor computed when it is read or written (one at a time), held as float32. */
  static LazyWeights.Deferred computed(long[] shape, Supplier<FloatTensor> value) {
    return new LazyWeights.Deferred() {
      @Override
      public long[] shape() {
        return shape.clone();
      }

      @Override
      public Precision dtype() {
        return Precision.FLOAT32;
      }

      @Override
      public void stream(Precision target, TensorBytes.Sink sink) {
        TensorBytes.encode(value.get().data(), target, sink);
      }
    };
  }
}
