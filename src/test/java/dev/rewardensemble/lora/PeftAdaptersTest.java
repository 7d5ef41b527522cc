package dev.rewardensemble.lora;

import static dev.rewardensemble.testing.Fixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.ensemble.LoraEnsembleGraph;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.PeftFiles;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.io.TensorSource;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.testing.Fixtures;
import dev.rewardensemble.testing.Runs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tensorflow.Graph;
import org.tensorflow.Session;
import org.tensorflow.op.Ops;

class PeftAdaptersTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final String Q_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";

  @TempDir Path tmp;

  static HfCheckpoint.Checkpoint base() throws Exception {
    return HfCheckpoint.load(Fixtures.dir("llama-seqcls"));
  }

  static Path member(int k) {
    return Fixtures.dir("llama-lora").resolve("member" + k);
  }

  static List<Path> members() {
    return List.of(member(0), member(1), member(2));
  }

  /** Rewards {@code [B, K]} of stacked adapters on the llama-lora batch. */
  static float[] rewards(HfCheckpoint.Checkpoint base, PeftAdapters.Stacked st) throws Exception {
    JsonNode e = Fixtures.expected("llama-lora");
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      LoraEnsembleGraph eg =
          LoraEnsembleGraph.inference(
              tf,
              base.config(),
              st.lora(),
              st.members(),
              p,
              dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
      try (Session s = new Session(g)) {
        eg.loadBase(s, base.weights(), "base");
        eg.loadAdapters(s, st, "adapters");
        assertEquals(st.weights(), eg.readAdapters(s).weights(), "session round trip");
        return Runs.run(s, eg.inputIds(), eg.attentionMask(), List.of(eg.rewards()), ids, mask)[0];
      }
    }
  }

  static float[] column(float[] bk, int k, int m) {
    float[] out = new float[bk.length / k];
    for (int i = 0; i < out.length; i++) {
      out[i] = bk[i * k + m];
    }
    return out;
  }

  /** Copies an adapter directory, editing its config and tensors. */
  Path copy(
      Path from,
      String name,
      java.util.function.Consumer<ObjectNode> config,
      java.util.function.Consumer<Map<String, FloatTensor>> tensors)
      throws Exception {
    Path to = Files.createDirectories(tmp.resolve(name));
    ObjectNode cfg = (ObjectNode) JSON.readTree(from.resolve(PeftFiles.CONFIG_FILE).toFile());
    config.accept(cfg);
    JSON.writeValue(to.resolve(PeftFiles.CONFIG_FILE).toFile(), cfg);
    Map<String, FloatTensor> t;
    try (TensorSource src = Safetensors.open(from.resolve(PeftFiles.WEIGHTS_FILE))) {
      t = new LinkedHashMap<>(src.readAll());
    }
    tensors.accept(t);
    Safetensors.write(to.resolve(PeftFiles.WEIGHTS_FILE), t, Map.of("format", "pt"));
    return to;
  }

  @Test
  void exportThenImportRoundTripsExactly() throws Exception {
    HfCheckpoint.Checkpoint base = base();
    ModelConfig c = base.config();
    PeftAdapters.Stacked st = PeftAdapters.load(c, members());
    float[] all = rewards(base, st);
    for (int m = 0; m < 3; m++) {
      Path out = tmp.resolve("export" + m);
      PeftAdapters.export(out, st, m, "llama-seqcls");
      PeftAdapters.Stacked back = PeftAdapters.stack(c, List.of(PeftFiles.read(out, c)));
      assertEquals(st.lora(), back.lora());
      for (Map.Entry<String, FloatTensor> e : back.weights().entrySet()) {
        FloatTensor orig = st.weights().get(e.getKey());
        int per = orig.data().length / 3;
        float[] slice = java.util.Arrays.copyOfRange(orig.data(), m * per, (m + 1) * per);
        assertTrue(
            java.util.Arrays.equals(slice, e.getValue().data()), e.getKey() + " of member " + m);
      }
      // The exported files hold exactly the tensors of the PEFT original.
      try (TensorSource a = Safetensors.open(member(m).resolve(PeftFiles.WEIGHTS_FILE));
          TensorSource b = Safetensors.open(out.resolve(PeftFiles.WEIGHTS_FILE))) {
        assertEquals(a.keys(), b.keys());
        for (String key : a.keys()) {
          assertEquals(a.read(key), b.read(key), key);
        }
      }
      // Alone (K = 1) the batched products have other sizes, so only nearly equal.
      assertClose(
          column(all, 3, m),
          rewards(base, back),
          1e-5,
          1e-6,
          "member " + m + " after export/import");
    }
    // The re-imported ensemble is the same ensemble: identical rewards.
    List<PeftFiles.Adapter> again = new ArrayList<>();
    for (int m = 0; m < 3; m++) {
      again.add(PeftFiles.read(tmp.resolve("export" + m), c));
    }
    PeftAdapters.Stacked st2 = PeftAdapters.stack(c, again);
    assertEquals(st.weights(), st2.weights());
    assertTrue(java.util.Arrays.equals(all, rewards(base, st2)), "rewards after export/import");
  }

  @Test
  void topBlockAdaptersExportLayersToTransform() throws Exception {
    ModelConfig c = base().config();
    PeftAdapters.Stacked st = PeftAdapters.load(c, members());
    Map<String, FloatTensor> w = new LinkedHashMap<>(st.weights());
    w.replaceAll(
        (k, v) ->
            k.startsWith("model.layers.0.") && k.endsWith(StackedLora.B)
                ? FloatTensor.zeros(v.shape())
                : v);
    String msg =
        assertThrows(IllegalArgumentException.class, () -> st.withLoraLayers(1)).getMessage();
    assertTrue(msg.contains("model.layers.0.self_attn.q_proj.lora_B (block 0) is not zero"), msg);
    PeftAdapters.Stacked top = new PeftAdapters.Stacked(c, st.lora(), 3, w).withLoraLayers(1);
    Path out = tmp.resolve("top");
    PeftAdapters.export(out, top, 2, "llama-seqcls");
    JsonNode cfg = JSON.readTree(out.resolve(PeftFiles.CONFIG_FILE).toFile());
    assertEquals("[1]", cfg.get("layers_to_transform").toString());
    PeftAdapters.Stacked back = PeftAdapters.stack(c, List.of(PeftFiles.read(out, c)));
    assertEquals(top.lora(), back.lora());
    assertEquals(1, back.lora().forkLayer(c));
  }

  @Test
  void membersWithDifferentRanksAlphasAndTargetsKeepTheirOwnRewards() throws Exception {
    HfCheckpoint.Checkpoint base = base();
    ModelConfig c = base.config();
    // member1 cut to rank 2 with alpha 3 (scaling 1.5), member2 keeps only q_proj and down_proj.
    Path r2 =
        copy(
            member(1),
            "rank2",
            cfg -> cfg.put("r", 2).put("lora_alpha", 3),
            t ->
                t.replaceAll(
                    (k, v) -> {
                      if (k.endsWith("lora_A.weight")) {
                        return new FloatTensor(
                            new long[] {2, v.shape()[1]},
                            java.util.Arrays.copyOf(v.data(), (int) (2 * v.shape()[1])));
                      }
                      if (k.endsWith("lora_B.weight")) {
                        int out = (int) v.shape()[0];
                        float[] d = new float[out * 2];
                        for (int o = 0; o < out; o++) {
                          d[o * 2] = v.data()[o * 4];
                          d[o * 2 + 1] = v.data()[o * 4 + 1];
                        }
                        return new FloatTensor(new long[] {out, 2}, d);
                      }
                      return v;
                    }));
    Path few =
        copy(
            member(2),
            "few",
            cfg -> cfg.putArray("target_modules").add("q_proj").add("down_proj"),
            t ->
                t.keySet()
                    .removeIf(
                        k ->
                            k.contains("lora_")
                                && !k.contains("q_proj")
                                && !k.contains("down_proj")));
    List<PeftFiles.Adapter> ads = new ArrayList<>();
    for (Path p : List.of(member(0), r2, few)) {
      ads.add(PeftFiles.read(p, c));
    }
    assertEquals(1.5, ads.get(1).scaling());
    PeftAdapters.Stacked mixed = PeftAdapters.stack(c, ads);
    assertEquals(4, mixed.lora().rank());
    assertEquals(2.0, mixed.lora().scaling());
    float[] all = rewards(base, mixed);
    for (int m = 0; m < 3; m++) {
      float[] alone = rewards(base, PeftAdapters.stack(c, List.of(ads.get(m))));
      assertClose(alone, column(all, 3, m), 1e-5, 1e-6, "member " + m + " alone vs stacked");
    }
  }

  @Test
  void gpt2AdaptersRoundTrip() throws Exception {
    HfCheckpoint.Checkpoint gpt2 = HfCheckpoint.load(Fixtures.dir("gpt2-seqcls"));
    ModelConfig c = gpt2.config();
    LoraConfig lora = LoraConfig.gpt2().withRank(4, 8);
    Map<String, FloatTensor> w;
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      LoraEnsembleGraph eg =
          LoraEnsembleGraph.inference(
              tf,
              c,
              lora,
              2,
              new ParameterStore(tf),
              dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
      w = eg.initialValues(9, 0.02);
    }
    Random rnd = new Random(1);
    w.replaceAll(
        (k, v) -> {
          float[] d = v.data().clone();
          for (int i = 0; i < d.length; i++) {
            d[i] += (float) (0.01 * rnd.nextGaussian());
          }
          return new FloatTensor(v.shape(), d);
        });
    PeftAdapters.Stacked st = new PeftAdapters.Stacked(c, lora, 2, w);
    Path out = tmp.resolve("gpt2");
    PeftAdapters.export(out, st, 1, "gpt2-seqcls");
    JsonNode cfg = JSON.readTree(out.resolve(PeftFiles.CONFIG_FILE).toFile());
    assertTrue(cfg.get("fan_in_fan_out").asBoolean());
    try (TensorSource src = Safetensors.open(out.resolve(PeftFiles.WEIGHTS_FILE))) {
      int h = c.hiddenSize();
      assertEquals(
          List.of(4L, (long) h),
          toList(src.info("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").shape()));
      assertEquals(
          List.of(3L * h, 4L),
          toList(src.info("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").shape()));
    }
    PeftAdapters.Stacked back = PeftAdapters.stack(c, List.of(PeftFiles.read(out, c)));
    assertEquals(lora.withDropout(0.05), back.lora());
    for (Map.Entry<String, FloatTensor> e : back.weights().entrySet()) {
      float[] d = st.weights().get(e.getKey()).data();
      int per = d.length / 2;
      assertTrue(
          java.util.Arrays.equals(
              java.util.Arrays.copyOfRange(d, per, 2 * per), e.getValue().data()),
          e.getKey());
    }
  }

  @Test
  void doraIsRejected() throws Exception {
    Path d = copy(member(0), "dora", cfg -> cfg.put("use_dora", true), t -> {});
    String msg =
        assertThrows(IllegalArgumentException.class, () -> PeftFiles.read(d, base().config()))
            .getMessage();
    assertTrue(msg.contains("DoRA is not supported") && msg.contains(d.toString()), msg);
  }

  @Test
  void wrongShapedTensorIsNamedWithBothShapes() throws Exception {
    Path d = copy(member(0), "shape", cfg -> {}, t -> t.put(Q_A, FloatTensor.zeros(4, 63)));
    String msg =
        assertThrows(IllegalArgumentException.class, () -> PeftFiles.read(d, base().config()))
            .getMessage();
    assertTrue(
        msg.contains("'" + Q_A + "' has shape [4, 63], the base model implies [4, 64]"), msg);
    assertTrue(msg.contains(PeftFiles.WEIGHTS_FILE), msg);
  }

  @Test
  void missingScoreHeadIsRejected() throws Exception {
    Path d = copy(member(0), "noscore", cfg -> {}, t -> t.remove("base_model.model.score.weight"));
    String msg =
        assertThrows(IllegalArgumentException.class, () -> PeftFiles.read(d, base().config()))
            .getMessage();
    assertEquals("adapter " + d + " has no score head (modules_to_save must include score)", msg);
  }

  @Test
  void unsupportedConfigsAreRejectedWithTheField() throws Exception {
    ModelConfig c = base().config();
    Path bad =
        copy(
            member(0),
            "target",
            cfg -> cfg.putArray("target_modules").add("q_proj").add("c_attn"),
            t -> {});
    String msg =
        assertThrows(IllegalArgumentException.class, () -> PeftFiles.read(bad, c)).getMessage();
    assertTrue(msg.contains("'c_attn'") && msg.contains("allowed: q_proj"), msg);
    Path rank =
        copy(member(0), "rank", cfg -> cfg.putObject("rank_pattern").put("q_proj", 8), t -> {});
    msg = assertThrows(IllegalArgumentException.class, () -> PeftFiles.read(rank, c)).getMessage();
    assertTrue(msg.contains("rank_pattern"), msg);
    Path fan = copy(member(0), "fan", cfg -> cfg.put("fan_in_fan_out", true), t -> {});
    msg = assertThrows(IllegalArgumentException.class, () -> PeftFiles.read(fan, c)).getMessage();
    assertTrue(msg.contains("fan_in_fan_out"), msg);
    Path ia3 = copy(member(0), "ia3", cfg -> cfg.put("peft_type", "IA3"), t -> {});
    msg = assertThrows(IllegalArgumentException.class, () -> PeftFiles.read(ia3, c)).getMessage();
    assertTrue(msg.contains("peft_type 'IA3'"), msg);
  }

  @Test
  void rsLoraScalesByTheSquareRootOfTheRank() throws Exception {
    Path d = copy(member(0), "rslora", cfg -> cfg.put("use_rslora", true), t -> {});
    assertEquals(8 / Math.sqrt(4), PeftFiles.read(d, base().config()).scaling());
  }

  private static List<Long> toList(long[] a) {
    return java.util.Arrays.stream(a).boxed().toList();
  }
}
