package dev.rewardensemble.serving;

import static dev.rewardensemble.testing.Fixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.tensorflow.Graph;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.Session;
import org.tensorflow.Signature;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.proto.MetaGraphDef;
import org.tensorflow.proto.SavedModel;
import org.tensorflow.proto.SignatureDef;
import org.tensorflow.proto.TensorInfo;
import org.tensorflow.types.TFloat32;

/** Export to SavedModel and Hugging Face layouts, reload, and score. */
class SavedModelsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  /** A fixture batch, flattened. */
  private record Batch(int[] ids, int[] mask, int b, int t) {
    static Batch of(JsonNode e) {
      int[][] ids = Fixtures.ints2(e.get("input_ids"));
      int[][] mask = Fixtures.ints2(e.get("attention_mask"));
      return new Batch(Fixtures.flatInts(ids), Fixtures.flatInts(mask), ids.length, ids[0].length);
    }
  }

  private static float[][] graphRewards(ModelConfig c, int k, Map<String, FloatTensor> w, Batch x) {
    Map<String, FloatTensor> weights = new LinkedHashMap<>(w);
    weights.remove("lm_head.weight");
    try (RewardModel m =
        RewardModel.fromWeights(
            c,
            k,
            weights,
            dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
            ExecConfig.deterministic(),
            Path.of("mem"),
            Optional.empty())) {
      return m.run(x.ids, x.mask, x.b, x.t);
    }
  }

  private static float[] column(float[][] a, int j) {
    float[] out = new float[a.length];
    for (int i = 0; i < a.length; i++) {
      out[i] = a[i][j];
    }
    return out;
  }

  private static float[] flat(float[][] a) {
    int k = a[0].length;
    float[] out = new float[a.length * k];
    for (int i = 0; i < a.length; i++) {
      System.arraycopy(a[i], 0, out, i * k, k);
    }
    return out;
  }

  /** The fixture's weights with a seeded random [k, H] head instead of its own. */
  private static Map<String, FloatTensor> withRandomHead(
      HfCheckpoint.Checkpoint ck, int k, long seed) {
    int h = ck.config().hiddenSize();
    Random rnd = new Random(seed);
    float[] w = new float[k * h];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (rnd.nextGaussian() * 0.3);
    }
    Map<String, FloatTensor> out = new LinkedHashMap<>(ck.weights());
    out.put("score.weight", new FloatTensor(new long[] {k, h}, w));
    return out;
  }

  @ParameterizedTest
  @ValueSource(strings = {"gpt2-seqcls", "llama-seqcls"})
  void singleModelRoundTripMatchesGraphAndTransformers(String name) throws Exception {
    JsonNode e = Fixtures.expected(name);
    Batch x = Batch.of(e);
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(Fixtures.dir(name));
    Path dir = tmp.resolve("savedmodels").resolve(name).resolve("1");
    Path out =
        SavedModels.export(
            dir,
            ck.config(),
            1,
            ck.weights(),
            dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
            AggregationConfig.mean(),
            Map.of("seed", 7));
    assertEquals(dir.toAbsolutePath().normalize(), out);
    float[] graph = column(graphRewards(ck.config(), 1, ck.weights(), x), 0);
    try (SavedModelScorer s = SavedModelScorer.load(dir)) {
      assertEquals(1, s.heads());
      assertEquals(ck.config(), s.config());
      float[][] members = s.run(x.ids, x.mask, x.b, x.t);
      assertEquals(x.b, members.length);
      assertEquals(1, members[0].length);
      assertClose(graph, column(members, 0), 0, 1e-6, name + " SavedModel vs graph");
      assertClose(
          Fixtures.floats(e.get("rewards")),
          column(members, 0),
          1e-4,
          1e-5,
          name + " vs transformers");
      assertEquals(List.of("reward"), List.copyOf(s.outputs(x.ids, x.mask, x.b, x.t).keySet()));
    }
  }

  @Test
  void ensembleOutputsAreConsistentWithPlainJava() throws Exception {
    JsonNode e = Fixtures.expected("llama-seqcls");
    Batch x = Batch.of(e);
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(Fixtures.dir("llama-seqcls"));
    Map<String, FloatTensor> w = withRandomHead(ck, 3, 11);
    double beta = 1.5;
    Path dir = tmp.resolve("llama-k3/1");
    SavedModels.export(
        dir,
        ck.config(),
        3,
        w,
        dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
        AggregationConfig.lcb(beta),
        Map.of());
    float[][] graph = graphRewards(ck.config(), 3, w, x);
    try (SavedModelScorer s = SavedModelScorer.load(dir)) {
      assertEquals(3, s.heads());
      assertEquals(AggregationConfig.lcb(beta), s.aggregation());
      float[][] members = s.run(x.ids, x.mask, x.b, x.t);
      assertClose(flat(graph), flat(members), 0, 1e-6, "members vs graph");
      Map<String, float[]> out = s.outputs(x.ids, x.mask, x.b, x.t);
      assertEquals(java.util.Set.of("reward", "members", "mean", "std", "lcb"), out.keySet());
      assertClose(flat(members), out.get("members"), 0, 0, "members output");
      float[] mean = new float[x.b];
      float[] std = new float[x.b];
      float[] lcb = new float[x.b];
      for (int i = 0; i < x.b; i++) {
        double m = (members[i][0] + members[i][1] + members[i][2]) / 3.0;
        double v = 0;
        for (float r : members[i]) {
          v += (r - m) * (r - m);
        }
        mean[i] = (float) m;
        std[i] = (float) Math.sqrt(v / 3); // population std
        lcb[i] = (float) (m - beta * Math.sqrt(v / 3));
        assertTrue(std[i] > 1e-3, "members differ, so the std test means something");
      }
      assertClose(mean, out.get("mean"), 1e-5, 1e-6, "mean");
      assertClose(std, out.get("std"), 1e-5, 1e-6, "std");
      assertClose(lcb, out.get("lcb"), 1e-5, 1e-6, "lcb");
      assertClose(lcb, out.get("reward"), 1e-5, 1e-6, "reward = lcb");
      assertClose(lcb, s.reward(x.ids, x.mask, x.b, x.t), 1e-5, 1e-6, "reward()");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"mean", "min", "uwo"})
  void rewardFollowsTheAggregation(String kind) throws Exception {
    Batch x = Batch.of(Fixtures.expected("gpt2-seqcls"));
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(Fixtures.dir("gpt2-seqcls"));
    Map<String, FloatTensor> w = withRandomHead(ck, 4, 3);
    AggregationConfig agg =
        switch (kind) {
          case "mean" -> AggregationConfig.mean();
          case "min" -> AggregationConfig.min();
          default -> AggregationConfig.uwo(2.0);
        };
    Path dir = tmp.resolve("gpt2-" + kind + "/3");
    SavedModels.export(
        dir, ck.config(), 4, w, dev.rewardensemble.config.RewardToken.LAST_NON_PAD, agg, Map.of());
    try (SavedModelScorer s = SavedModelScorer.load(dir)) {
      float[][] members = s.run(x.ids, x.mask, x.b, x.t);
      float[] want = new float[x.b];
      for (int i = 0; i < x.b; i++) {
        want[i] = (float) agg.apply(members[i]);
      }
      assertClose(want, s.reward(x.ids, x.mask, x.b, x.t), 1e-5, 1e-6, kind);
    }
  }

  @Test
  void savedModelHasServingSignatureAndMetadata() throws Exception {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(Fixtures.dir("gpt2-seqcls"));
    Path dir = tmp.resolve("m/1");
    SavedModels.export(
        dir,
        ck.config(),
        2,
        withRandomHead(ck, 2, 5),
        dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
        AggregationConfig.lcb(1.0),
        Map.of("data_sha256", "abc123", "seed", 42));
    SavedModel sm = SavedModel.parseFrom(Files.readAllBytes(dir.resolve("saved_model.pb")));
    assertEquals(1, sm.getMetaGraphsCount());
    MetaGraphDef mg = sm.getMetaGraphs(0);
    assertEquals(List.of("serve"), mg.getMetaInfoDef().getTagsList());
    assertTrue(
        mg.getSignatureDefMap().containsKey("serving_default"),
        mg.getSignatureDefMap().keySet().toString());
    SignatureDef sig = mg.getSignatureDefOrThrow("serving_default");
    assertEquals("tensorflow/serving/predict", sig.getMethodName());
    assertEquals(java.util.Set.of("input_ids", "attention_mask"), sig.getInputsMap().keySet());
    assertEquals(
        java.util.Set.of("reward", "members", "mean", "std", "lcb"), sig.getOutputsMap().keySet());
    for (String in : List.of("input_ids", "attention_mask")) {
      TensorInfo ti = sig.getInputsOrThrow(in);
      assertEquals(org.tensorflow.proto.DataType.DT_INT32, ti.getDtype(), in);
      assertEquals(2, ti.getTensorShape().getDimCount(), in);
      assertEquals(-1, ti.getTensorShape().getDim(0).getSize(), in);
      assertEquals(-1, ti.getTensorShape().getDim(1).getSize(), in);
    }
    assertEquals(
        org.tensorflow.proto.DataType.DT_FLOAT, sig.getOutputsOrThrow("reward").getDtype());
    // tf.saved_model.load uniquifies node names ignoring case: "mean" beside "Mean" breaks the
    // signature there (found by scripts/python-interop.sh).
    java.util.Map<String, String> lower = new java.util.HashMap<>();
    for (var node : mg.getGraphDef().getNodeList()) {
      String prev = lower.put(node.getName().toLowerCase(java.util.Locale.ROOT), node.getName());
      assertEquals(
          null, prev, "node names differing only in case: " + prev + ", " + node.getName());
    }
    // No training ops: an inference graph has no gradients or optimizer updates.
    for (var node : mg.getGraphDef().getNodeList()) {
      assertFalse(
          node.getName().contains("gradients") || node.getOp().startsWith("Apply"),
          "training op in the export: " + node.getName() + " (" + node.getOp() + ")");
    }

    JsonNode meta = JSON.readTree(dir.resolve("assets.extra/rme-model.json").toFile());
    assertEquals("rme-savedmodel", meta.get("format").asText());
    assertEquals(2, meta.get("heads").asInt());
    assertEquals(
        "GPT2ForSequenceClassification", meta.get("config").get("architectures").get(0).asText());
    assertEquals(2, meta.get("config").get("num_labels").asInt());
    assertEquals("lcb", meta.get("aggregation").get("rule").asText());
    assertEquals(1.0, meta.get("aggregation").get("beta").asDouble());
    JsonNode p = meta.get("provenance");
    assertEquals("abc123", p.get("data_sha256").asText());
    assertEquals(42, p.get("seed").asInt());
    assertTrue(p.has("git_commit"));
    assertEquals(
        org.tensorflow.TensorFlow.version(), p.get("libraries").get("tensorflow").asText());
    assertEquals(System.getProperty("java.version"), p.get("libraries").get("java").asText());
    assertFalse(p.get("libraries").get("reward_ensemble").asText().isEmpty());
  }

  @Test
  void failedExportLeavesNothingUnderTheFinalName() throws Exception {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(Fixtures.dir("gpt2-seqcls"));
    Map<String, FloatTensor> w = new LinkedHashMap<>(ck.weights());
    FloatTensor wte = w.get("transformer.wte.weight");
    w.put(
        "transformer.wte.weight",
        new FloatTensor(new long[] {wte.shape()[1], wte.shape()[0]}, wte.data()));
    Path root = tmp.resolve("savedmodels/broken");
    Path dir = root.resolve("1");
    IllegalArgumentException ex =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                SavedModels.export(
                    dir,
                    ck.config(),
                    1,
                    w,
                    dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
                    AggregationConfig.mean(),
                    Map.of()));
    assertTrue(ex.getMessage().contains("transformer.wte.weight"), ex.getMessage());
    assertFalse(Files.exists(dir));
    try (Stream<Path> left = Files.list(root)) {
      assertEquals(List.of(), left.toList(), "temporary directories are removed");
    }
  }

  @Test
  void refusesToOverwriteAnExistingVersionUnlessAsked() throws Exception {
    Batch x = Batch.of(Fixtures.expected("gpt2-seqcls"));
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(Fixtures.dir("gpt2-seqcls"));
    Path dir = tmp.resolve("savedmodels/rm/1");
    SavedModels.export(
        dir,
        ck.config(),
        1,
        ck.weights(),
        dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
        AggregationConfig.mean(),
        Map.of());
    IllegalArgumentException ex =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                SavedModels.export(
                    dir,
                    ck.config(),
                    1,
                    ck.weights(),
                    dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
                    AggregationConfig.mean(),
                    Map.of()));
    assertTrue(
        ex.getMessage().contains(dir.toAbsolutePath().normalize().toString()), ex.getMessage());
    assertTrue(ex.getMessage().contains("already exists"), ex.getMessage());

    Map<String, FloatTensor> w = withRandomHead(ck, 1, 99);
    SavedModels.export(
        dir,
        ck.config(),
        1,
        w,
        dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
        AggregationConfig.mean(),
        Map.of(),
        true);
    try (SavedModelScorer s = SavedModelScorer.load(dir)) {
      assertClose(
          column(graphRewards(ck.config(), 1, w, x), 0),
          column(s.run(x.ids, x.mask, x.b, x.t), 0),
          0,
          1e-6,
          "overwritten model");
    }
    try (Stream<Path> left = Files.list(dir.getParent())) {
      assertEquals(
          List.of(dir.toAbsolutePath().normalize()),
          left.map(p -> p.toAbsolutePath().normalize()).toList());
    }
  }

  @Test
  void headShapeIsCheckedBeforeAnythingIsWritten() throws Exception {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(Fixtures.dir("gpt2-seqcls"));
    Path dir = tmp.resolve("k/1");
    IllegalArgumentException ex =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                SavedModels.export(
                    dir,
                    ck.config(),
                    3,
                    ck.weights(),
                    dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
                    AggregationConfig.mean(),
                    Map.of()));
    assertTrue(
        ex.getMessage().contains("score.weight") && ex.getMessage().contains("[3, 32]"),
        ex.getMessage());
    assertFalse(Files.exists(tmp.resolve("k")));
  }

  /** The metadata's heads must be an exact integer and agree with the graph's members output. */
  @Test
  void metadataThatContradictsTheGraphIsRefusedNamingTheKey() throws Exception {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(Fixtures.dir("llama-seqcls"));
    Path dir = tmp.resolve("meta-k3/1");
    SavedModels.export(
        dir,
        ck.config(),
        3,
        withRandomHead(ck, 3, 5),
        dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
        AggregationConfig.mean(),
        Map.of());
    Path asset = dir.resolve(SavedModels.ASSET);
    String good = Files.readString(asset);
    assertTrue(good.matches("(?s).*\"heads\"\\s*:\\s*3.*"), good);
    for (String bad : new String[] {"\"3\"", "2.5", "2"}) {
      Files.writeString(asset, good.replaceFirst("\"heads\"\\s*:\\s*3", "\"heads\": " + bad));
      IllegalArgumentException ex =
          assertThrows(IllegalArgumentException.class, () -> SavedModelScorer.load(dir), bad);
      assertTrue(ex.getMessage().contains("heads"), bad + ": " + ex.getMessage());
      assertTrue(
          ex.getMessage().contains(dir.toString()) || ex.getMessage().contains(asset.toString()),
          bad + ": " + ex.getMessage());
      assertFalse(ex.getMessage().contains("\n"), ex.getMessage());
    }
    Files.writeString(asset, good);
    try (SavedModelScorer ok = SavedModelScorer.load(dir)) {
      assertEquals(3, ok.heads());
    }
  }

  @Test
  void loadErrorsNameTheDirectory() throws Exception {
    Path empty = Files.createDirectories(tmp.resolve("empty"));
    IllegalArgumentException ex =
        assertThrows(IllegalArgumentException.class, () -> SavedModelScorer.load(empty));
    assertTrue(
        ex.getMessage().contains("not a SavedModel") && ex.getMessage().contains(empty.toString()),
        ex.getMessage());

    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(Fixtures.dir("gpt2-seqcls"));
    Path dir = tmp.resolve("noasset/1");
    SavedModels.export(
        dir,
        ck.config(),
        1,
        ck.weights(),
        dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
        AggregationConfig.mean(),
        Map.of());
    Path asset = dir.resolve(SavedModels.ASSET);
    byte[] assetBytes = Files.readAllBytes(asset);
    Files.delete(asset);
    ex = assertThrows(IllegalArgumentException.class, () -> SavedModelScorer.load(dir));
    assertTrue(
        ex.getMessage().contains("rme-model.json") && ex.getMessage().contains(dir.toString()),
        ex.getMessage());

    // A SavedModel with another signature, and the asset of a K = 1 model.
    Path other = tmp.resolve("othersig");
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      Placeholder<TFloat32> in =
          tf.withName("x").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)));
      var v = tf.withName("v").variable(tf.constant(2f));
      var y = tf.withName("y").math.mul(in, v);
      try (Session s = new Session(g)) {
        s.runner().fetch(v).run().close();
        SavedModelBundle.exporter(other.toString())
            .withSession(s)
            .withSignature(
                Signature.builder()
                    .key("predict")
                    .methodName(SavedModels.METHOD)
                    .input("x", in)
                    .output("y", y)
                    .build())
            .export();
      }
    }
    Files.createDirectories(other.resolve("assets.extra"));
    Files.write(other.resolve(SavedModels.ASSET), assetBytes);
    ex = assertThrows(IllegalArgumentException.class, () -> SavedModelScorer.load(other));
    assertTrue(
        ex.getMessage().contains("serving_default") && ex.getMessage().contains(other.toString()),
        ex.getMessage());
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 3})
  void hfExportLoadsBackWithTheSameRewards(int k) throws Exception {
    for (String name : List.of("gpt2-seqcls", "llama-seqcls")) {
      Batch x = Batch.of(Fixtures.expected(name));
      HfCheckpoint.Checkpoint ck = HfCheckpoint.load(Fixtures.dir(name));
      Map<String, FloatTensor> w = k == 1 ? ck.weights() : withRandomHead(ck, k, 17);
      Path dir = tmp.resolve("hf-" + name + "-" + k);
      SavedModels.exportHf(dir, ck.config(), w, k);
      HfCheckpoint.Checkpoint back = HfCheckpoint.load(dir);
      assertEquals(SavedModels.sequenceClassification(ck.config()), back.architecture());
      assertEquals(k, back.numLabels());
      assertEquals(ck.config(), back.config());
      assertEquals(w.keySet(), back.weights().keySet());
      for (String key : w.keySet()) {
        assertEquals(w.get(key), back.weights().get(key), key);
      }
      JsonNode cfg = JSON.readTree(dir.resolve("config.json").toFile());
      assertEquals(k, cfg.get("num_labels").asInt());
      assertTrue(
          cfg.hasNonNull("pad_token_id"), "transformers needs pad_token_id to score batches");
      assertEquals(k, cfg.get("id2label").size());
      assertEquals("float32", cfg.get("dtype").asText());
      if (name.startsWith("llama")) {
        assertEquals("default", cfg.get("rope_parameters").get("rope_type").asText());
      } else {
        // GPT-2's 50256 lies outside the fixture's vocabulary: null, not transformers' default.
        assertTrue(
            cfg.get("bos_token_id").isNull() && cfg.get("eos_token_id").isNull(), cfg.toString());
      }
      try (RewardModel m = RewardModel.load(dir)) {
        assertClose(
            flat(graphRewards(ck.config(), k, w, x)),
            flat(m.run(x.ids, x.mask, x.b, x.t)),
            0,
            1e-6,
            name);
      }
    }
  }
}
