package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.data.PreferencePair;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.EnsembleSpec;
import dev.rewardensemble.ensemble.LoraEnsembleGraph;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.StackedLora;
import dev.rewardensemble.model.ForwardGraph;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Transformers;
import dev.rewardensemble.testing.Fixtures;
import dev.rewardensemble.train.RewardTrainer;
import dev.rewardensemble.train.Schedule;
import dev.rewardensemble.train.TrainConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tensorflow.Graph;
import org.tensorflow.op.Ops;

/** The three ensembles of the paper trained, scored, counted and exported through the CLI. */
class EnsembleCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path tmp;
  static Path data;
  static final Map<String, Path> runs = new LinkedHashMap<>();

  @BeforeAll
  static void trainEachKind() throws Exception {
    data = tmp.resolve("syn.jsonl");
    Files.write(
        data, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(800, 64, 8, 16, 3, 11)));
    for (String kind : List.of("independent", "linear", "lora")) {
      Path out = tmp.resolve(kind);
      var r =
          ScoreCommandTest.rme(
              "train-rm",
              "--model",
              "tf-graphs/tiny-llama.json",
              "--data",
              data.toString(),
              "--out",
              out.toString(),
              "--ensemble",
              kind,
              "--k",
              "3",
              "--epochs",
              "2",
              "--batch-size",
              "16",
              "--grad-accum",
              "1",
              "--lr",
              "1e-3",
              "--lora-lr",
              "1e-3",
              "--eval-fraction",
              "0.25",
              "--bootstrap",
              "--lora-rank",
              "4",
              "--lora-alpha",
              "8");
      assertEquals(0, r.code(), kind + ": " + r.err());
      runs.put(kind, out);
    }
  }

  @Test
  void everyMemberAndAggregateBeatChanceAndMembersDiffer() throws Exception {
    for (var e : runs.entrySet()) {
      JsonNode diag =
          JSON.readTree(e.getValue().resolve("ensemble.json").toFile())
              .get("provenance")
              .get("diagnostics");
      assertEquals(200, diag.get("pairs").asInt());
      for (JsonNode acc : diag.get("memberAccuracy")) {
        assertTrue(acc.asDouble() > 0.8, e.getKey() + " member accuracy " + acc);
      }
      diag.get("aggregationAccuracy")
          .fields()
          .forEachRemaining(
              a ->
                  assertTrue(
                      a.getValue().asDouble() > 0.8,
                      e.getKey() + " " + a.getKey() + " " + a.getValue()));
      double corr = diag.get("meanOffDiagonalCorrelation").asDouble();
      assertTrue(corr < 0.99999, e.getKey() + ": members identical (correlation " + corr + ")");
      // Members give different rewards to the same sequence.
      try (RewardModel rm = RewardModel.load(e.getValue())) {
        float[] m = rm.score(List.of(new int[] {5, 7, 9, 7, 11, 13}), 1)[0];
        assertEquals(3, m.length);
        assertTrue(
            Math.abs(m[0] - m[1]) > 1e-4 && Math.abs(m[1] - m[2]) > 1e-4,
            e.getKey() + " " + Arrays.toString(m));
      }
    }
  }

  @Test
  void theMemoryPlanReadFromJsonAloneMatchesTheLoadedModel() throws Exception {
    for (var e : runs.entrySet()) {
      var shape =
          dev.rewardensemble.ensemble.ModelShape.read(e.getValue(), List.of()).orElseThrow();
      var loaded = dev.rewardensemble.ensemble.EnsembleModel.load(e.getValue());
      assertEquals(loaded.kind(), shape.kind(), e.getKey());
      assertEquals(loaded.members(), shape.k(), e.getKey());
      assertEquals(loaded.config(), shape.config(), e.getKey());
      var counts = loaded.parameterCounts();
      assertEquals(
          counts.adapter(),
          dev.rewardensemble.ensemble.MemoryPlan.adapterParameters(shape.config(), shape.lora()),
          e.getKey());
      // The plan's weights in float32 are exactly the loaded tensors' bytes.
      var plan =
          dev.rewardensemble.ensemble.MemoryPlan.of(
              dev.rewardensemble.ensemble.MemoryPlan.Request.score(
                  shape.config(), shape.kind(), shape.k(), shape.lora(), 1, 0));
      long weights =
          plan.bytes("trunk weights (frozen)")
              + plan.bytes("reward heads")
              + plan.bytes("LoRA adapters");
      assertEquals(4 * counts.total(), weights, e.getKey());
      assertEquals(4 * counts.total(), plan.bytes("loading copy (float32 Java arrays)"));
    }
  }

  @Test
  void infoReportsThePapersParameterCountsExactly() throws Exception {
    ModelConfig c = ModelConfigs.read(Path.of("tf-graphs/tiny-llama.json"));
    long m =
        Transformers.parameterShapes(c).values().stream().mapToLong(FloatTensor::numElements).sum();
    long l = c.hiddenSize();
    LoraConfig lora = LoraConfig.defaults(c).withRank(4, 8);
    long a = 0;
    for (StackedLora.Module mod : StackedLora.modules(c, lora)) {
      a += 4L * (mod.in() + mod.out());
    }
    Map<String, Long> expected =
        Map.of("independent", 3 * (m + l), "linear", m + 3 * l, "lora", m + 3 * l + 3 * a);
    for (var e : runs.entrySet()) {
      EnsembleModel em = EnsembleModel.load(e.getValue());
      assertEquals(expected.get(e.getKey()), em.parameterCounts().total(), e.getKey());
      StringBuilder out = new StringBuilder();
      var old = System.out;
      var buf = new java.io.ByteArrayOutputStream();
      System.setOut(new java.io.PrintStream(buf, true));
      try {
        assertEquals(0, ScoreCommandTest.rme("info", "--model", e.getValue().toString()).code());
      } finally {
        System.setOut(old);
      }
      out.append(buf);
      assertTrue(
          out.toString().contains("total in memory: " + expected.get(e.getKey())), out.toString());
    }
  }

  @Test
  void scoreOutputsMembersMeanStdAndTheChosenAggregation() throws Exception {
    Path in = tmp.resolve("score.jsonl");
    Files.write(in, List.of("{\"input_ids\": [5, 7, 9, 7, 11]}", "{\"input_ids\": [4, 4, 8]}"));
    for (var e : runs.entrySet()) {
      Path out = tmp.resolve(e.getKey() + "-scores.jsonl");
      var r =
          ScoreCommandTest.rme(
              "score",
              "--model",
              e.getValue().toString(),
              "--data",
              in.toString(),
              "--out",
              out.toString(),
              "--aggregation",
              "lcb",
              "--beta",
              "0.5");
      assertEquals(0, r.code(), r.err());
      for (String line : Files.readAllLines(out)) {
        JsonNode row = JSON.readTree(line);
        assertEquals(3, row.get("members").size());
        double mean = row.get("mean").asDouble();
        double std = row.get("std").asDouble();
        assertEquals(mean - 0.5 * std, row.get("reward").asDouble(), 1e-5);
        double[] z = new double[3];
        for (int k = 0; k < 3; k++) {
          z[k] = row.get("members_standardized").get(k).asDouble();
        }
        assertEquals((z[0] + z[1] + z[2]) / 3, mean, 1e-5);
      }
    }
  }

  @Test
  void diagnoseWritesAccuraciesCorrelationsAndDisagreementBins() throws Exception {
    Path heldOut = tmp.resolve("held-out.jsonl");
    Files.write(
        heldOut,
        SyntheticPreferences.toJsonl(SyntheticPreferences.counting(120, 64, 8, 16, 3, 77)));
    Path json = tmp.resolve("diag.json");
    var r =
        ScoreCommandTest.rme(
            "diagnose",
            "--model",
            runs.get("linear").toString(),
            "--data",
            heldOut.toString(),
            "--json",
            json.toString());
    assertEquals(0, r.code(), r.err());
    JsonNode d = JSON.readTree(json.toFile());
    assertEquals(120, d.get("pairs").asInt());
    assertEquals(3, d.get("memberAccuracy").size());
    assertEquals(5, d.get("aggregationAccuracy").size());
    assertEquals(3, d.get("correlation").size());
    assertEquals(1.0, d.get("correlation").get(1).get(1).asDouble(), 1e-9);
    int binned = 0;
    for (JsonNode b : d.get("disagreementBins")) {
      binned += b.get("pairs").asInt();
      assertTrue(b.get("accuracy").asDouble() >= 0 && b.get("accuracy").asDouble() <= 1);
    }
    assertEquals(120, binned);
  }

  @Test
  void loraPeftExportImportRoundTripGivesIdenticalRewards() throws Exception {
    Path lora = runs.get("lora");
    Path peft = tmp.resolve("peft");
    assertEquals(
        0,
        ScoreCommandTest.rme(
                "export", "--model", lora.toString(), "--format", "peft", "--out", peft.toString())
            .code());
    // The adapters name their base, written beside them as a one-head checkpoint of the trunk.
    var adapterConfig =
        new com.fasterxml.jackson.databind.ObjectMapper()
            .readTree(peft.resolve("member-0").resolve("adapter_config.json").toFile());
    assertEquals(
        peft.resolve("base").toAbsolutePath().normalize().toString(),
        adapterConfig.get("base_model_name_or_path").asText());
    var baseConfig =
        new com.fasterxml.jackson.databind.ObjectMapper()
            .readTree(peft.resolve("base").resolve("config.json").toFile());
    assertEquals(1, baseConfig.get("num_labels").asInt());
    List<int[]> seqs = List.of(new int[] {5, 7, 9, 7, 11}, new int[] {4, 4, 8, 30, 31, 7});
    try (RewardModel a = RewardModel.load(lora);
        RewardModel b =
            RewardModel.loadWithAdapters(
                peft.resolve("base"),
                List.of(
                    peft.resolve("member-0"), peft.resolve("member-1"), peft.resolve("member-2")),
                ExecConfig.defaults())) {
      float[][] ra = a.score(seqs, 2);
      float[][] rb = b.score(seqs, 2);
      for (int i = 0; i < ra.length; i++) {
        assertArrayEquals(ra[i], rb[i]);
      }
    }
  }

  @Test
  void independentAndLoraEnsemblesExportAsOneSavedModel() throws Exception {
    List<int[]> seqs = List.of(new int[] {5, 7, 9, 7, 11}, new int[] {4, 4, 8});
    for (String kind : List.of("independent", "lora")) {
      Path root = tmp.resolve("sm-" + kind);
      var r =
          ScoreCommandTest.rme(
              "export",
              "--model",
              runs.get(kind).toString(),
              "--name",
              kind,
              "--root",
              root.toString());
      assertEquals(0, r.code(), r.err());
      try (RewardModel a = RewardModel.load(runs.get(kind));
          RewardModel b = RewardModel.load(root.resolve(kind).resolve("1"))) {
        assertEquals(EnsembleKind.byName(kind), b.kind());
        float[][] ra = a.score(seqs, 2);
        float[][] rb = b.score(seqs, 2);
        for (int i = 0; i < ra.length; i++) {
          Fixtures.assertClose(ra[i], rb[i], 1e-5, 1e-6, kind + " SavedModel members");
        }
      }
    }
  }

  @Test
  void phaseTwoLeavesTheFrozenTrunkBitIdenticalAndZeroBReproducesPhaseOne() throws Exception {
    Path phase1 = runs.get("lora").resolve("phase1");
    Map<String, FloatTensor> p1;
    try (Safetensors s = Safetensors.open(phase1.resolve("model.safetensors"))) {
      p1 = s.readAll();
    }
    ModelConfig c = ModelConfigs.read(Path.of("tf-graphs/tiny-llama.json"));
    LoraConfig lora = LoraConfig.defaults(c).withRank(4, 8).withDropout(0);
    Map<String, FloatTensor> init = new LinkedHashMap<>(p1);
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      Map<String, FloatTensor> fresh =
          LoraEnsembleGraph.training(
                  tf,
                  c,
                  lora,
                  3,
                  new ParameterStore(tf),
                  1,
                  dev.rewardensemble.config.RewardToken.LAST_NON_PAD)
              .initialValues(1, 0.02);
      fresh.remove("score.weight");
      init.putAll(fresh);
    }
    // B = 0: the LoRA ensemble equals the phase-1 linear ensemble.
    List<int[]> seqs = List.of(new int[] {5, 7, 9, 7, 11}, new int[] {4, 4, 8, 30});
    try (RewardModel base = RewardModel.load(phase1);
        RewardModel zero =
            RewardModel.of(
                new EnsembleModel(
                    EnsembleSpec.of(EnsembleKind.LORA, 3),
                    c,
                    dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
                    init,
                    lora,
                    Optional.empty(),
                    phase1),
                ExecConfig.deterministic())) {
      float[][] a = base.score(seqs, 2);
      float[][] b = zero.score(seqs, 2);
      for (int i = 0; i < a.length; i++) {
        Fixtures.assertClose(a[i], b[i], 1e-6, 1e-6, "B = 0 vs phase 1");
      }
    }
    // Phase-2 steps change adapters and heads only.
    TrainConfig tc =
        TrainConfig.builder()
            .steps(3)
            .gradAccum(1)
            .lr(1e-2)
            .weightDecay(0.1)
            .schedule(Schedule.Kind.CONSTANT)
            .warmupRatio(0)
            .evalFraction(0)
            .seed(1)
            .keepCheckpoints(1)
            .build();
    List<PreferencePair> pairs = SyntheticPreferences.counting(8, 64, 8, 16, 3, 5);
    try (RewardTrainer t =
        new RewardTrainer(
            tf -> {
              ParameterStore p = new ParameterStore(tf);
              LoraEnsembleGraph lg =
                  LoraEnsembleGraph.training(
                      tf, c, lora, 3, p, 1, dev.rewardensemble.config.RewardToken.LAST_NON_PAD);
              return new ForwardGraph(lg.inputIds(), lg.attentionMask(), lg.rewards(), p, 3);
            },
            init,
            tc,
            ExecConfig.deterministic(),
            k -> k.endsWith(".lora_A") || k.endsWith(".lora_B") || k.equals("score.weight"))) {
      for (int s = 1; s <= 3; s++) {
        t.accumulate(pairs, 0);
        t.apply(1e-2, s);
      }
      Map<String, FloatTensor> after = t.weights();
      int changed = 0;
      for (String key : init.keySet()) {
        boolean same = Arrays.equals(init.get(key).data(), after.get(key).data());
        if (Transformers.parameterShapes(c).containsKey(key)) {
          assertTrue(same, "frozen trunk tensor changed: " + key);
        } else if (!same) {
          changed++;
        }
      }
      assertTrue(changed > 10, "adapters and heads should train, changed " + changed);
    }
  }
}
