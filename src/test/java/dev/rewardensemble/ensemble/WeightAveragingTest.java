package dev.rewardensemble.ensemble;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.StackedLora;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.model.Transformers;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link WeightAveraging} of in-memory LoRA ensembles of both weight layouts: torch Linear {@code
 * [out, in]} (Llama, adapters in the top block only) and Conv1D {@code [in, out]} (GPT-2). The
 * {@code BASE} merge's weights equal a plain-Java {@code W + (s / K) sum_k A_k B_k} in each layout,
 * and its rewards equal the {@code ADAPTER} merge's, which runs through the LoRA graph.
 */
class WeightAveragingTest {

  private static EnsembleModel randomLora(String preset, LoraConfig lora, int k) throws Exception {
    ModelConfig c = ModelConfigs.read(Path.of("tf-graphs", preset));
    Map<String, FloatTensor> w = new LinkedHashMap<>(Init.trunk(c, 3));
    Map<String, FloatTensor> ad = LoraInit.adapters(c, lora, k, 5);
    Random rnd = new Random(7);
    for (Map.Entry<String, FloatTensor> e : ad.entrySet()) {
      FloatTensor t = e.getValue();
      if (e.getKey().endsWith(StackedLora.B)) {
        float[] v = new float[t.data().length];
        for (int i = 0; i < v.length; i++) {
          v[i] = (float) rnd.nextGaussian() * 0.3f;
        }
        t = new FloatTensor(t.shape(), v);
      }
      w.put(e.getKey(), t);
    }
    w.put(RewardHeads.KEY, Init.heads(k, c.hiddenSize(), 11));
    return new EnsembleModel(
        EnsembleSpec.of(EnsembleKind.LORA, k),
        c,
        RewardToken.LAST_ATTENDED,
        w,
        lora.checkFor(c),
        Optional.empty(),
        Path.of("in-memory"));
  }

  private static List<int[]> seqs() {
    Random r = new Random(13);
    List<int[]> out = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      int[] s = new int[4 + r.nextInt(8)];
      for (int j = 0; j < s.length; j++) {
        s[j] = 3 + r.nextInt(300);
      }
      out.add(s);
    }
    return out;
  }

  private static float[] rewards(EnsembleModel m) {
    try (RewardModel rm = RewardModel.of(m, ExecConfig.defaults())) {
      float[][] r = rm.score(seqs(), 8);
      float[] out = new float[r.length];
      for (int i = 0; i < r.length; i++) {
        out[i] = r[i][0];
      }
      return out;
    }
  }

  private static void check(String preset, LoraConfig lora) throws Exception {
    EnsembleModel m = randomLora(preset, lora, 3);
    List<Integer> sel = List.of(0, 2);
    EnsembleModel base = WeightAveraging.average(m, sel, WeightAveraging.Into.BASE);
    EnsembleModel one = WeightAveraging.average(m, sel, WeightAveraging.Into.ADAPTER);
    assertEquals(EnsembleKind.SINGLE, base.kind());
    assertEquals(EnsembleKind.LORA, one.kind());
    assertEquals(2 * lora.rank(), one.lora().rank());
    assertEquals(lora.scaling(), one.lora().scaling(), 1e-12);

    // The merged weights against the plain-Java average in the checkpoint's own layout.
    ModelConfig c = m.config();
    boolean conv1d = c.conv1dWeights();
    int adapted = 0;
    for (StackedLora.Module mod : StackedLora.modules(c, m.lora())) {
      float[] w = m.weights().get(mod.module() + ".weight").data();
      float[] a = m.weights().get(mod.module() + StackedLora.A).data();
      float[] b = m.weights().get(mod.module() + StackedLora.B).data();
      float[] got = base.weights().get(mod.module() + ".weight").data();
      int in = mod.in(), out = mod.out(), r = lora.rank();
      double moved = 0;
      for (int i = 0; i < in; i++) {
        for (int o = 0; o < out; o++) {
          double d = 0;
          for (int k : sel) {
            for (int j = 0; j < r; j++) {
              d += a[(k * in + i) * r + j] * b[(k * r + j) * out + o];
            }
          }
          int at = conv1d ? i * out + o : o * in + i;
          double want = w[at] + lora.scaling() * d / sel.size();
          assertEquals(want, got[at], 1e-5 * Math.max(1, Math.abs(want)), mod.module());
          moved = Math.max(moved, Math.abs(want - w[at]));
        }
      }
      assertTrue(moved > 1e-3, mod.module() + " did not move");
      adapted++;
    }
    assertTrue(adapted > 0);
    // Weights outside the adapted modules are the trunk's own.
    for (String key : Transformers.parameterShapes(c).keySet()) {
      if (StackedLora.modules(c, m.lora()).stream()
          .noneMatch(x -> (x.module() + ".weight").equals(key))) {
        assertEquals(m.weights().get(key), base.weights().get(key), key);
      }
    }
    // Heads averaged.
    float[] heads = m.weights().get(RewardHeads.KEY).data();
    float[] head = base.weights().get(RewardHeads.KEY).data();
    int h = c.hiddenSize();
    for (int i = 0; i < h; i++) {
      assertEquals((heads[i] + heads[2 * h + i]) / 2, head[i], 1e-7);
    }
    // The one-adapter merge (the LoRA graph) scores like the folded weights.
    float[] rb = rewards(base);
    float[] ro = rewards(one);
    for (int i = 0; i < rb.length; i++) {
      assertEquals(rb[i], ro[i], 1e-5 * Math.max(1, Math.abs(rb[i])), preset + " row " + i);
    }
  }

  @Test
  void llamaLinearLayoutWithAdaptersInTheTopBlockOnly() throws Exception {
    check("tiny-llama.json", new LoraConfig(4, 8, 0, List.of("q_proj", "v_proj", "down_proj"), 1));
  }

  @Test
  void gpt2Conv1dLayout() throws Exception {
    check("tiny-gpt2.json", new LoraConfig(3, 9, 0, List.of("c_attn", "c_proj", "c_fc"), 0));
  }

  @Test
  void adapterIntoANonLoraEnsembleIsRefused() throws Exception {
    ModelConfig c = ModelConfigs.read(Path.of("tf-graphs", "tiny-llama.json"));
    Map<String, FloatTensor> w = new LinkedHashMap<>(Init.trunk(c, 3));
    w.put(RewardHeads.KEY, Init.heads(3, c.hiddenSize(), 1));
    EnsembleModel linear =
        new EnsembleModel(
            EnsembleSpec.of(EnsembleKind.LINEAR, 3),
            c,
            RewardToken.LAST_ATTENDED,
            w,
            null,
            Optional.empty(),
            Path.of("in-memory"));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> WeightAveraging.average(linear, List.of(), WeightAveraging.Into.ADAPTER));
    assertTrue(e.getMessage().contains("--into adapter needs a LoRA ensemble"), e.getMessage());
  }
}
