package dev.rewardensemble.lora;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.PeftFiles;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.model.Transformers;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * K PEFT LoRA adapters as one ensemble, in the graph's stacked layout (the files themselves are
 * read and written by {@link PeftFiles}).
 *
 * <p>Combining K adapters ({@link #stack}) into the {@link StackedLora} layout {@code lora_A [K,
 * in, R]}, {@code lora_B [K, R, out]}: R is the largest rank, smaller ranks are padded with zero
 * columns of A and zero rows of B (which adds nothing); a module a member does not target gets zero
 * A and B; and since the graph has one scaling, member k's own scaling {@code s_k} is folded into
 * its B as {@code B_k * s_k / s} where {@code s} is member 0's scaling (the factor is exactly 1,
 * and not applied, when the members agree).
 */
public final class PeftAdapters {
  private PeftAdapters() {}

  /**
   * K adapters in the stacked layout of {@link StackedLora} plus the heads: {@code <module>.lora_A
   * [K, in, R]}, {@code <module>.lora_B [K, R, out]} for every module of {@link
   * StackedLora#modules(ModelConfig, LoraConfig)}, and {@code score.weight [K, H]}.
   */
  public record Stacked(
      ModelConfig config, LoraConfig lora, int members, Map<String, FloatTensor> weights) {

    /**
     * The same ensemble with adapters only in the top {@code n} blocks (0 = all). Modules that
     * appear get zero A and B; modules that disappear must have an all-zero B in every member.
     */
    public Stacked withLoraLayers(int n) {
      LoraConfig to = lora.withLoraLayers(n).checkFor(config);
      Map<String, FloatTensor> out = new LinkedHashMap<>();
      Set<String> kept = new HashSet<>();
      for (StackedLora.Module m : StackedLora.modules(config, to)) {
        kept.add(m.module());
        String a = m.module() + StackedLora.A;
        String b = m.module() + StackedLora.B;
        out.put(a, weights.getOrDefault(a, FloatTensor.zeros(members, m.in(), to.rank())));
        out.put(b, weights.getOrDefault(b, FloatTensor.zeros(members, to.rank(), m.out())));
      }
      for (StackedLora.Module m : StackedLora.modules(config, lora)) {
        if (!kept.contains(m.module())) {
          FloatTensor b = weights.get(m.module() + StackedLora.B);
          for (float v : b.data()) {
            if (v != 0f) {
              throw new IllegalArgumentException(
                  "cannot keep adapters only in the top "
                      + n
                      + " blocks: "
                      + m.module()
                      + StackedLora.B
                      + " (block "
                      + m.layer()
                      + ") is not zero");
            }
          }
        }
      }
      out.put(RewardHeads.KEY, weights.get(RewardHeads.KEY));
      return new Stacked(config, to, members, out);
    }
  }

  /** Reads and checks the adapters in {@code dirs} and stacks them; see {@link #stack}. */
  public static Stacked load(ModelConfig c, List<Path> dirs) throws IOException {
    List<PeftFiles.Adapter> adapters = new ArrayList<>();
    for (Path d : dirs) {
      adapters.add(PeftFiles.read(d, c));
    }
    return stack(c, adapters);
  }

  /**
   * Stacks K adapters (member k = {@code adapters.get(k)}). The stacked {@link LoraConfig} has rank
   * R = the largest rank, member 0's scaling ({@code alpha = s_0 * R}) and dropout, the union of
   * targeted modules, and {@code loraLayers} covering the lowest adapted block.
   */
  public static Stacked stack(ModelConfig c, List<PeftFiles.Adapter> adapters) {
    if (adapters.isEmpty()) {
      throw new IllegalArgumentException("no adapters to stack");
    }
    int k = adapters.size();
    int rank = adapters.stream().mapToInt(PeftFiles.Adapter::rank).max().orElseThrow();
    double s = adapters.get(0).scaling();
    Set<String> used = new HashSet<>();
    int minLayer = Integer.MAX_VALUE;
    for (PeftFiles.Adapter a : adapters) {
      for (String m : a.loraA().keySet()) {
        used.add(m.substring(m.lastIndexOf('.') + 1));
        minLayer = Math.min(minLayer, StackedLora.layerOf(m));
      }
    }
    List<String> targets = new ArrayList<>();
    for (String t : Transformers.loraTargets(c)) {
      if (used.contains(t)) {
        targets.add(t);
      }
    }
    int loraLayers = minLayer <= 0 ? 0 : c.numLayers() - minLayer;
    LoraConfig lora =
        new LoraConfig(rank, s * rank, adapters.get(0).dropout(), targets, loraLayers).checkFor(c);

    Map<String, FloatTensor> out = new LinkedHashMap<>();
    for (StackedLora.Module m : StackedLora.modules(c, lora)) {
      int in = m.in();
      int o = m.out();
      float[] a = new float[k * in * rank];
      float[] b = new float[k * rank * o];
      for (int member = 0; member < k; member++) {
        PeftFiles.Adapter ad = adapters.get(member);
        FloatTensor pa = ad.loraA().get(m.module());
        if (pa == null) {
          continue;
        }
        FloatTensor pb = ad.loraB().get(m.module());
        int r = ad.rank();
        float f = (float) (ad.scaling() / s);
        for (int i = 0; i < in; i++) {
          for (int j = 0; j < r; j++) {
            a[(member * in + i) * rank + j] = pa.data()[j * in + i]; // [r, in] -> [in, R]
          }
        }
        for (int j = 0; j < r; j++) {
          for (int x = 0; x < o; x++) {
            float v = pb.data()[x * r + j]; // [out, r] -> [R, out]
            b[(member * rank + j) * o + x] = f == 1f ? v : v * f;
          }
        }
      }
      out.put(m.module() + StackedLora.A, new FloatTensor(new long[] {k, in, rank}, a));
      out.put(m.module() + StackedLora.B, new FloatTensor(new long[] {k, rank, o}, b));
    }
    int h = c.hiddenSize();
    float[] heads = new float[k * h];
    for (int member = 0; member < k; member++) {
      System.arraycopy(adapters.get(member).score().data(), 0, heads, member * h, h);
    }
    out.put(RewardHeads.KEY, new FloatTensor(new long[] {k, h}, heads));
    return new Stacked(c, lora, k, out);
  }

  /**
   * Writes member {@code member} of a stacked ensemble as a PEFT adapter directory (rank R, alpha
   * and target modules of {@code stacked.lora()}, {@code layers_to_transform} when the adapters
   * cover only the top blocks, the {@code score} head as a module to save), with the key names PEFT
   * writes, so that {@link #load} gives back exactly the same tensors; written by {@link
   * PeftFiles#write}.
   *
   * @param baseModel stored as {@code base_model_name_or_path}
   */
  public static void export(Path dir, Stacked stacked, int member, String baseModel)
      throws IOException {
    export(dir, stacked, member, baseModel, stacked.lora().rank());
  }

  /**
   * {@link #export(Path, Stacked, int, String)} of a member trained with its own rank {@code rank
   * <= R} ({@link StackedLora#training(dev.rewardensemble.model.BuildContext, ModelConfig,
   * LoraConfig, int, dev.rewardensemble.model.ParameterStore, long, int[])}): its first {@code
   * rank} columns of A and rows of B, written as a PEFT adapter of rank {@code rank} and the
   * stacked alpha (PEFT's scaling {@code alpha / rank}), which computes exactly what the member
   * did. The dropped rows of B must be zero.
   */
  public static void export(Path dir, Stacked stacked, int member, String baseModel, int rank)
      throws IOException {
    if (member < 0 || member >= stacked.members()) {
      throw new IllegalArgumentException(
          "member " + member + " out of range: the ensemble has " + stacked.members() + " members");
    }
    ModelConfig c = stacked.config();
    LoraConfig lora = stacked.lora();
    int full = lora.rank();
    if (rank < 1 || rank > full) {
      throw new IllegalArgumentException(
          "member " + member + "'s rank " + rank + " is outside 1.." + full);
    }
    Map<String, FloatTensor> as = new LinkedHashMap<>();
    Map<String, FloatTensor> bs = new LinkedHashMap<>();
    for (StackedLora.Module m : StackedLora.modules(c, lora)) {
      int in = m.in();
      int o = m.out();
      float[] sa = stacked.weights().get(m.module() + StackedLora.A).data();
      float[] sb = stacked.weights().get(m.module() + StackedLora.B).data();
      float[] a = new float[rank * in];
      float[] b = new float[o * rank];
      for (int i = 0; i < in; i++) {
        for (int j = 0; j < rank; j++) {
          a[j * in + i] = sa[(member * in + i) * full + j]; // [in, R] -> [r, in]
        }
      }
      for (int j = 0; j < full; j++) {
        for (int x = 0; x < o; x++) {
          float v = sb[(member * full + j) * o + x];
          if (j < rank) {
            b[x * rank + j] = v; // [R, out] -> [out, r]
          } else if (v != 0f) {
            throw new IllegalArgumentException(
                m.module()
                    + StackedLora.B
                    + " of member "
                    + member
                    + " is not zero beyond its rank "
                    + rank);
          }
        }
      }
      as.put(m.module(), new FloatTensor(new long[] {rank, in}, a));
      bs.put(m.module(), new FloatTensor(new long[] {o, rank}, b));
    }
    int h = c.hiddenSize();
    float[] head =
        Arrays.copyOfRange(
            stacked.weights().get(RewardHeads.KEY).data(), member * h, (member + 1) * h);
    FloatTensor score = new FloatTensor(new long[] {1, h}, head);
    int fork = lora.forkLayer(c);
    List<Integer> layers = null;
    if (fork > 0) {
      layers = new ArrayList<>();
      for (int l = fork; l < c.numLayers(); l++) {
        layers.add(l);
      }
    }
    PeftFiles.Adapter adapter =
        new PeftFiles.Adapter(
            dir,
            rank,
            lora.alpha(),
            lora.alpha() / rank,
            lora.dropout(),
            lora.targetModules(),
            as,
            bs,
            score);
    PeftFiles.write(dir, c, adapter, layers, baseModel);
  }
}
