package dev.rewardensemble.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.WeightStorage;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.LoraEnsembleGraph;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.PeftAdapters;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.ParameterStore;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.tensorflow.Graph;
import org.tensorflow.GraphOperation;
import org.tensorflow.op.Ops;
import org.tensorflow.proto.DataType;

/**
 * Frozen weights stored in bfloat16 ({@link ExecConfig#weights}) on the transformers bf16
 * checkpoints of {@code src/test/resources/hf-families/}: the same rewards bit for bit as float32
 * storage (widening bfloat16 is exact), with the trunk's variables really {@code DT_BFLOAT16} in
 * the graph; a float32 checkpoint stored as bfloat16 within 1e-2 relative.
 */
class WeightStorageTest {
  private static final ExecConfig EXEC = ExecConfig.deterministic();

  @TempDir Path tmp;

  static Path fixture(String name) throws Exception {
    return Path.of(
            WeightStorageTest.class.getResource("/hf-families/" + name + "/config.json").toURI())
        .getParent();
  }

  static List<int[]> rows(int vocab, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    List<int[]> out = new ArrayList<>();
    for (int len : new int[] {7, 3, 12}) {
      int[] ids = new int[len];
      for (int i = 0; i < len; i++) {
        ids[i] = r.nextInt(vocab);
      }
      out.add(ids);
    }
    return out;
  }

  static float[][] score(Path dir, List<Path> adapters, WeightStorage w) throws Exception {
    try (RewardModel rm = RewardModel.load(dir, adapters, EXEC.withWeights(w))) {
      return rm.score(rows(rm.config().vocabSize(), 7), 2);
    }
  }

  /** The dtype of every variable of {@code m}'s scoring graph built with {@code storage}. */
  static Map<String, DataType> variableTypes(EnsembleModel m, Precision storage) {
    Map<String, DataType> out = new LinkedHashMap<>();
    try (Graph g = new Graph()) {
      m.build(BuildContext.float32(Ops.create(g)), storage);
      g.operations()
          .forEachRemaining(
              op -> {
                if (op.type().startsWith("Variable")) {
                  // a VariableV2's output is a reference: DT_BFLOAT16_REF holds DT_BFLOAT16
                  String t = ((GraphOperation) op).output(0).dataType().name();
                  out.put(op.name(), DataType.valueOf(t.replace("_REF", "")));
                }
              });
    }
    return out;
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama3", "qwen2", "qwen3", "mistral", "gemma2"})
  void bf16CheckpointScoresBitForBitWithItsTrunkInBfloat16(String family) throws Exception {
    Path dir = fixture(family + "-seqcls");
    EnsembleModel m = EnsembleModel.load(dir);
    assertTrue(m.weights() instanceof LazyWeights, "the checkpoint stays on disk");
    assertEquals(Precision.BFLOAT16, m.frozenStorage(WeightStorage.AUTO));
    assertEquals(Precision.FLOAT32, m.frozenStorage(WeightStorage.FLOAT32));

    Map<String, DataType> types = variableTypes(m, m.frozenStorage(WeightStorage.AUTO));
    int trunk = 0;
    for (Map.Entry<String, DataType> e : types.entrySet()) {
      DataType want = m.isFrozen(e.getKey()) ? DataType.DT_BFLOAT16 : DataType.DT_FLOAT;
      assertEquals(want, e.getValue(), e.getKey());
      trunk += m.isFrozen(e.getKey()) ? 1 : 0;
    }
    assertTrue(trunk > 5 && types.get("score.weight") == DataType.DT_FLOAT, types.toString());
    assertTrue(
        variableTypes(m, Precision.FLOAT32).values().stream()
            .allMatch(t -> t == DataType.DT_FLOAT));
    assertEquals(0, ungatedBlockCasts(m), "every block widens its weights only once it starts");

    float[][] f32 = score(dir, List.of(), WeightStorage.FLOAT32);
    float[][] auto = score(dir, List.of(), WeightStorage.AUTO);
    float[][] bf16 = score(dir, List.of(), WeightStorage.BFLOAT16);
    for (int i = 0; i < f32.length; i++) {
      assertArrayEquals(f32[i], auto[i], 0f, "row " + i);
      assertArrayEquals(f32[i], bf16[i], 0f, "row " + i);
    }
    // and the same as the eager load of the old path
    float[][] eager = scoreEager(dir);
    for (int i = 0; i < f32.length; i++) {
      assertArrayEquals(eager[i], f32[i], 0f, "row " + i);
    }
  }

  /**
   * With {@code --compute bfloat16} a bfloat16 weight is multiplied as stored: every weight product
   * of the trunk reads its variable (no float32 copy made and rounded back), and the rewards equal
   * float32 storage's under the same precision bit for bit (rounding bf16-exact values is exact).
   */
  @Test
  void bfloat16ProductsReadBfloat16WeightsAsStored() throws Exception {
    Path dir = fixture("llama3-seqcls");
    EnsembleModel m = EnsembleModel.load(dir);
    int direct = 0;
    int widenedThenRounded = 0;
    try (Graph g = new Graph()) {
      m.build(
          BuildContext.of(g, EXEC.withCompute(Precision.BFLOAT16)),
          m.frozenStorage(WeightStorage.AUTO));
      java.util.Iterator<GraphOperation> it = g.operations();
      while (it.hasNext()) {
        GraphOperation o = it.next();
        if (!o.type().equals("MatMul")) {
          continue;
        }
        GraphOperation b = (GraphOperation) o.input(1).op();
        // unless oneDNN takes bfloat16 ops, a bfloat16 product is a float32 one of the operands
        // widened exactly
        // (Layers.bfloat16Product): the stored variable then reaches it through that one Cast
        if (!dev.rewardensemble.config.OneDnn.bfloat16Products()
            && b.type().equals("Cast")
            && ((GraphOperation) b.input(0).op()).type().startsWith("Variable")) {
          b = (GraphOperation) b.input(0).op();
        }
        if (b.type().startsWith("Variable")) {
          direct++;
        } else if (b.type().equals("Cast")
            && b.output(0).dataType() == org.tensorflow.proto.DataType.DT_BFLOAT16
            && ((GraphOperation) b.input(0).op()).type().equals("Cast")) {
          widenedThenRounded++;
        }
      }
    }
    assertTrue(direct >= 7 * m.config().numLayers(), "products reading bf16 variables: " + direct);
    assertEquals(0, widenedThenRounded, "weights widened to float32 and rounded back");

    ExecConfig bf16 = EXEC.withCompute(Precision.BFLOAT16);
    float[][] stored;
    float[][] f32;
    try (RewardModel rm = RewardModel.load(dir, List.of(), bf16.withWeights(WeightStorage.AUTO))) {
      stored = rm.score(rows(rm.config().vocabSize(), 7), 2);
    }
    try (RewardModel rm =
        RewardModel.load(dir, List.of(), bf16.withWeights(WeightStorage.FLOAT32))) {
      f32 = rm.score(rows(rm.config().vocabSize(), 7), 2);
    }
    for (int i = 0; i < f32.length; i++) {
      assertArrayEquals(f32[i], stored[i], 0f, "row " + i);
    }
  }

  /**
   * Casts of a block's bfloat16 weight without a control input: TensorFlow would run them all at
   * the start of the run (their only input, the variable, is ready), holding a float32 copy of
   * every block at once.
   */
  static int ungatedBlockCasts(EnsembleModel m) {
    int[] ungated = {0};
    int[] casts = {0};
    try (Graph g = new Graph()) {
      m.build(BuildContext.float32(Ops.create(g)), Precision.BFLOAT16);
      g.operations()
          .forEachRemaining(
              op -> {
                GraphOperation o = (GraphOperation) op;
                if (o.type().equals("Cast")
                    && o.numInputs() == 1
                    && o.input(0).op().name().startsWith("model.layers.")
                    && o.input(0).op().type().startsWith("Variable")) {
                  casts[0]++;
                  ungated[0] += o.numControlInputs() == 0 ? 1 : 0;
                }
              });
    }
    assertTrue(casts[0] > 0, "no widening casts of block weights");
    return ungated[0];
  }

  /** Rewards through {@link HfCheckpoint#load}'s Java arrays, the path before streaming. */
  static float[][] scoreEager(Path dir) throws Exception {
    EnsembleModel lazy = EnsembleModel.load(dir);
    Map<String, FloatTensor> eager = new LinkedHashMap<>();
    lazy.weights().forEach(eager::put); // every tensor read into the heap
    EnsembleModel m =
        new EnsembleModel(
            lazy.spec(),
            lazy.config(),
            lazy.rewardToken(),
            eager,
            lazy.lora(),
            lazy.tokenizer(),
            lazy.source());
    assertEquals(Precision.FLOAT32, m.frozenStorage(WeightStorage.AUTO));
    try (RewardModel rm = RewardModel.of(m, EXEC)) {
      return rm.score(rows(m.config().vocabSize(), 7), 2);
    }
  }

  @Test
  void loraEnsembleOverABf16BaseKeepsItsTrunkInBfloat16AndScoresTheSame() throws Exception {
    Path base = fixture("llama3-seqcls");
    EnsembleModel single = EnsembleModel.load(base);
    LoraConfig lora = LoraConfig.defaults(single.config()).withRank(4, 8);
    int k = 2;
    Map<String, long[]> shapes;
    try (Graph g = new Graph()) {
      ParameterStore p = new ParameterStore(Ops.create(g));
      LoraEnsembleGraph.scoring(
          BuildContext.float32(Ops.create(g)), single.config(), lora, k, p, single.rewardToken());
      shapes = p.shapes();
    }
    SplittableRandom r = new SplittableRandom(3);
    Map<String, FloatTensor> adapters = new LinkedHashMap<>();
    for (String key : LoraEnsembleGraph.trainableKeys(single.config(), lora)) {
      long[] shape = shapes.get(key);
      float[] v = new float[Math.toIntExact(FloatTensor.numElements(shape))];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) (r.nextGaussian() * 0.05);
      }
      adapters.put(key, new FloatTensor(shape, v));
    }
    PeftAdapters.Stacked stacked = new PeftAdapters.Stacked(single.config(), lora, k, adapters);
    List<Path> dirs = new ArrayList<>();
    for (int i = 0; i < k; i++) {
      Path d = tmp.resolve("adapter" + i);
      PeftAdapters.export(d, stacked, i, base.toString());
      dirs.add(d);
    }
    EnsembleModel m = EnsembleModel.load(base, dirs);
    assertEquals(Precision.BFLOAT16, m.frozenStorage(WeightStorage.AUTO));
    Map<String, DataType> types = variableTypes(m, Precision.BFLOAT16);
    for (Map.Entry<String, DataType> e : types.entrySet()) {
      boolean adapter = adapters.containsKey(e.getKey());
      assertEquals(
          adapter || !m.isFrozen(e.getKey()) ? DataType.DT_FLOAT : DataType.DT_BFLOAT16,
          e.getValue(),
          e.getKey());
    }
    assertTrue(types.containsValue(DataType.DT_BFLOAT16));

    float[][] f32 = score(base, dirs, WeightStorage.FLOAT32);
    float[][] auto = score(base, dirs, WeightStorage.AUTO);
    assertEquals(k, f32[0].length);
    for (int i = 0; i < f32.length; i++) {
      assertArrayEquals(f32[i], auto[i], 0f, "row " + i);
    }
  }

  @Test
  void float32CheckpointStoredAsBfloat16IsWithin1e2() throws Exception {
    Path bf16 = fixture("llama3-seqcls");
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(bf16);
    // Values off the bfloat16 grid, so that storing them as bfloat16 rounds.
    SplittableRandom r = new SplittableRandom(11);
    Map<String, FloatTensor> w = new LinkedHashMap<>();
    ck.weights()
        .forEach(
            (key, t) -> {
              float[] v = t.data().clone();
              for (int i = 0; i < v.length; i++) {
                v[i] *= (float) (1 + 0.003 * r.nextGaussian());
              }
              w.put(key, new FloatTensor(t.shape(), v));
            });
    Path f32dir = tmp.resolve("f32");
    HfCheckpoint.save(f32dir, ck.config(), ck.architecture(), w, Map.of());
    java.nio.file.Files.copy(
        bf16.resolve("config.json"),
        f32dir.resolve("config.json"),
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    EnsembleModel m = EnsembleModel.load(f32dir);
    assertEquals(Precision.FLOAT32, m.frozenStorage(WeightStorage.AUTO));

    float[][] f32 = score(f32dir, List.of(), WeightStorage.FLOAT32);
    float[][] auto = score(f32dir, List.of(), WeightStorage.AUTO);
    float[][] b16 = score(f32dir, List.of(), WeightStorage.BFLOAT16);
    double scale = 0;
    for (float[] row : f32) {
      for (float x : row) {
        scale = Math.max(scale, Math.abs(x));
      }
    }
    boolean differs = false;
    for (int i = 0; i < f32.length; i++) {
      assertArrayEquals(f32[i], auto[i], 0f);
      for (int j = 0; j < f32[i].length; j++) {
        assertEquals(f32[i][j], b16[i][j], 1e-2 * scale, "row " + i);
        differs |= f32[i][j] != b16[i][j];
      }
    }
    assertTrue(differs, "bfloat16 storage rounds the float32 weights");
    assertFalse(scale == 0);
  }

  /**
   * Gradients of the adapters and heads of a LoRA training graph whose trunk is stored as {@code
   * storage}.
   */
  static List<float[]> loraGradients(HfCheckpoint.Checkpoint base, Precision storage)
      throws Exception {
    LoraConfig lora = LoraConfig.defaults(base.config()).withRank(4, 8);
    int k = 2;
    List<float[]> out = new ArrayList<>();
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      java.util.Set<String> trainable =
          java.util.Set.copyOf(LoraEnsembleGraph.trainableKeys(base.config(), lora));
      ParameterStore p =
          new ParameterStore(tf)
              .storeAs(key -> trainable.contains(key) ? Precision.FLOAT32 : storage);
      LoraEnsembleGraph eg =
          LoraEnsembleGraph.training(
              tf, base.config(), lora, k, p, 5, dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
      for (String name : eg.frozenNames()) {
        assertEquals(storage, p.storage(name), name);
      }
      for (String name : eg.trainableNames()) {
        assertEquals(Precision.FLOAT32, p.storage(name), name);
      }
      org.tensorflow.Operand<org.tensorflow.types.TFloat32> loss =
          tf.sum(eg.rewards(), tf.constant(new int[] {0, 1}));
      org.tensorflow.op.core.Gradients grads = tf.gradients(loss, eg.trainable());
      try (org.tensorflow.Session s = new org.tensorflow.Session(g)) {
        eg.loadBase(s, base.weights(), "base");
        Map<String, FloatTensor> init =
            dev.rewardensemble.ensemble.LoraInit.adapters(base.config(), lora, k, 9);
        // nonzero B so that every adapter has a gradient path
        Map<String, FloatTensor> adapters = new LinkedHashMap<>();
        SplittableRandom r = new SplittableRandom(2);
        init.forEach(
            (key, t) -> {
              float[] v = t.data().clone();
              for (int i = 0; i < v.length; i++) {
                v[i] += (float) (0.01 * r.nextGaussian());
              }
              adapters.put(key, new FloatTensor(t.shape(), v));
            });
        float[] head = new float[k * base.config().hiddenSize()];
        for (int i = 0; i < head.length; i++) {
          head[i] = (float) (0.1 * r.nextGaussian());
        }
        adapters.put(
            "score.weight", new FloatTensor(new long[] {k, base.config().hiddenSize()}, head));
        eg.loadAdapters(s, new PeftAdapters.Stacked(base.config(), lora, k, adapters), "adapters");
        int[][] ids = {{1, 5, 9, 11, 3}, {1, 7, 2, 0, 0}};
        int[][] mask = {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}};
        try (org.tensorflow.types.TInt32 idT =
                org.tensorflow.types.TInt32.tensorOf(
                    org.tensorflow.ndarray.StdArrays.ndCopyOf(ids));
            org.tensorflow.types.TInt32 mT =
                org.tensorflow.types.TInt32.tensorOf(
                    org.tensorflow.ndarray.StdArrays.ndCopyOf(mask))) {
          org.tensorflow.Session.Runner run =
              s.runner().feed(eg.inputIds(), idT).feed(eg.attentionMask(), mT);
          for (int i = 0; i < eg.trainableNames().size(); i++) {
            run.fetch(grads.dy(i));
          }
          try (org.tensorflow.Result res = run.run()) {
            for (int i = 0; i < eg.trainableNames().size(); i++) {
              org.tensorflow.types.TFloat32 t = (org.tensorflow.types.TFloat32) res.get(i);
              float[] v = new float[Math.toIntExact(t.size())];
              t.asRawTensor().data().asFloats().read(v);
              out.add(v);
            }
          }
        }
      }
    }
    return out;
  }

  /** Variable op name to the dtype it holds, walked over the graph's ops. */
  static Map<String, DataType> variableTypes(Graph g) {
    Map<String, DataType> out = new LinkedHashMap<>();
    g.operations()
        .forEachRemaining(
            op -> {
              if (op.type().startsWith("Variable")) {
                String t = ((GraphOperation) op).output(0).dataType().name();
                out.put(op.name(), DataType.valueOf(t.replace("_REF", "")));
              }
            });
    return out;
  }

  @Test
  void loraPhaseTwoOfATrainingRunHoldsItsFrozenTrunkInBfloat16Variables() throws Exception {
    Path data = tmp.resolve("prefs.jsonl");
    StringBuilder rows = new StringBuilder();
    for (int i = 0; i < 10; i++) {
      rows.append(
          String.format(
              "{\"chosen_ids\": [1, %d, %d], \"rejected_ids\": [1, %d]}%n", 10 + i, 40, 90 + i));
    }
    java.nio.file.Files.writeString(data, rows);
    Path base = fixture("llama3-seqcls");
    List<Map<String, DataType>> graphs = new ArrayList<>();
    var req =
        new RewardTraining.TrainRequest(
            base,
            data,
            tmp.resolve("run"),
            dev.rewardensemble.train.TrainConfig.builder()
                .steps(1)
                .batchSize(2)
                .gradAccum(1)
                .evalFraction(0.2)
                .build(),
            EXEC.withWeights(WeightStorage.BFLOAT16),
            new EnsembleOptions(
                dev.rewardensemble.ensemble.EnsembleKind.LORA,
                2,
                false,
                null,
                0.5,
                null,
                5e-5,
                dev.rewardensemble.train.Schedule.Kind.CONSTANT,
                dev.rewardensemble.ensemble.AggregationConfig.mean(),
                true,
                2048),
            null,
            dev.rewardensemble.data.PromptTemplate.RAW,
            dev.rewardensemble.data.PreferenceFormat.AUTO,
            0,
            false,
            false,
            dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
    RewardTraining.train(
        req,
        new dev.rewardensemble.train.TrainListener() {
          @Override
          public void onTrainingGraph(Graph g) {
            graphs.add(variableTypes(g));
          }
        });
    assertEquals(2, graphs.size(), "phase 1 and phase 2");
    Map<String, DataType> phase1 = graphs.get(0);
    Map<String, DataType> phase2 = graphs.get(1);
    Map<String, long[]> trunk =
        dev.rewardensemble.config.ModelConfigs.read(base.resolve("config.json")).parameterShapes();
    // Phase 1 trains the whole model: float32 master copies throughout.
    for (String key : trunk.keySet()) {
      assertEquals(DataType.DT_FLOAT, phase1.get(key), "phase 1 " + key);
      assertEquals(DataType.DT_BFLOAT16, phase2.get(key), "phase 2 frozen " + key);
    }
    int trained = 0;
    for (Map.Entry<String, DataType> e : phase2.entrySet()) {
      if (e.getKey().contains("lora_") || e.getKey().equals("score.weight")) {
        assertEquals(DataType.DT_FLOAT, e.getValue(), "phase 2 trained " + e.getKey());
        trained++;
      }
    }
    assertTrue(trained > 2, phase2.toString());
  }

  @Test
  void loraTrainingGraphWithABfloat16TrunkHasTheFloat32Gradients() throws Exception {
    HfCheckpoint.Checkpoint base = HfCheckpoint.load(fixture("llama3-seqcls"));
    List<float[]> f32 = loraGradients(base, Precision.FLOAT32);
    List<float[]> bf16 = loraGradients(base, Precision.BFLOAT16);
    assertEquals(f32.size(), bf16.size());
    double norm = 0;
    for (int i = 0; i < f32.size(); i++) {
      assertArrayEquals(f32.get(i), bf16.get(i), 0f, "gradient " + i);
      for (float x : f32.get(i)) {
        norm += x * x;
      }
    }
    assertTrue(norm > 0, "the adapters have gradients");
  }
}
