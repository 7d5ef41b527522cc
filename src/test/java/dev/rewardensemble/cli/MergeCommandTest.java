package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.api.ModelMerge;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.WeightAveraging;
import dev.rewardensemble.io.CrashPoints;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.PeftFiles;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.StackedLora;
import dev.rewardensemble.serving.SavedModels;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.RandomCheckpoints;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code rme merge} (issue #19, item 3: WARM). The merged models are compared with references
 * computed in plain Java from the members' weights, and scored by the ordinary loaders.
 */
class MergeCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path tmp;
  static Path base;
  static ModelConfig config;
  static List<Path> adapters = new ArrayList<>();
  static final Map<String, Path> runs = new LinkedHashMap<>();
  static List<int[]> seqs;

  @BeforeAll
  static void models() throws Exception {
    // A random bf16 Llama reward model and three random PEFT adapters over it: two of rank 4
    // (alpha 8) on every projection, one of rank 2 (alpha 6) on q and v only.
    base = tmp.resolve("base");
    RandomCheckpoints.write(
        base, RandomCheckpoints.llamaConfig(64, 2, 320), Precision.BFLOAT16, 1, 3);
    config = ModelConfigs.read(base.resolve("config.json"));
    Random rnd = new Random(5);
    adapters.add(randomAdapter(tmp.resolve("a0"), 4, 8, null, rnd));
    adapters.add(randomAdapter(tmp.resolve("a1"), 4, 8, null, rnd));
    adapters.add(randomAdapter(tmp.resolve("a2"), 2, 6, List.of("q_proj", "v_proj"), rnd));

    Path data = tmp.resolve("syn.jsonl");
    Files.write(
        data, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(64, 64, 8, 16, 3, 11)));
    for (String kind : List.of("independent", "linear", "lora")) {
      Path out = tmp.resolve("run-" + kind);
      Cli.Run r =
          Cli.rme(
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
              "--steps",
              "3",
              "--batch-size",
              "8",
              "--grad-accum",
              "1",
              "--lr",
              "1e-3",
              "--lora-lr",
              "1e-2",
              "--eval-fraction",
              "0.25",
              "--lora-rank",
              "4",
              "--lora-alpha",
              "8");
      assertEquals(0, r.code(), kind + ": " + r.err());
      runs.put(kind, out);
    }
    Random ids = new Random(9);
    seqs = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      int[] s = new int[3 + ids.nextInt(10)];
      for (int j = 0; j < s.length; j++) {
        s[j] = 3 + ids.nextInt(300);
      }
      seqs.add(s);
    }
  }

  private static Path randomAdapter(
      Path dir, int rank, double alpha, List<String> targets, Random rnd) throws Exception {
    LoraConfig lora =
        LoraConfig.llama()
            .withRank(rank, alpha)
            .withDropout(0)
            .withTargets(targets == null ? LoraConfig.llama().targetModules() : targets);
    Map<String, FloatTensor> as = new LinkedHashMap<>();
    Map<String, FloatTensor> bs = new LinkedHashMap<>();
    for (StackedLora.Module m : StackedLora.modules(config, lora)) {
      as.put(m.module(), random(rnd, 0.2f, rank, m.in()));
      bs.put(m.module(), random(rnd, 0.2f, m.out(), rank));
    }
    FloatTensor score = random(rnd, 0.5f, 1, config.hiddenSize());
    PeftFiles.write(
        dir,
        config,
        new PeftFiles.Adapter(
            dir, rank, alpha, alpha / rank, 0, lora.targetModules(), as, bs, score),
        null,
        base.toString());
    return dir;
  }

  private static FloatTensor random(Random rnd, float scale, int rows, int cols) {
    float[] v = new float[rows * cols];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) rnd.nextGaussian() * scale;
    }
    return new FloatTensor(new long[] {rows, cols}, v);
  }

  private static String lora() {
    return String.join(",", adapters.stream().map(Path::toString).toList());
  }

  /** [N][K] rewards of {@code model} (and adapters) on {@link #seqs}. */
  private static float[][] score(Path model, List<Path> lora) throws Exception {
    try (RewardModel rm =
        RewardModel.load(model, lora, dev.rewardensemble.config.ExecConfig.defaults())) {
      return rm.score(seqs, 4);
    }
  }

  private static void assertClose(float[] want, float[] got, double tol, String what) {
    assertEquals(want.length, got.length, what);
    for (int i = 0; i < want.length; i++) {
      assertTrue(
          Math.abs(want[i] - got[i]) <= tol * Math.max(1, Math.abs(want[i])),
          what + " [" + i + "]: want " + want[i] + ", got " + got[i]);
    }
  }

  private static float[] col(float[][] a, int k) {
    float[] out = new float[a.length];
    for (int i = 0; i < a.length; i++) {
      out[i] = a[i][k];
    }
    return out;
  }

  private static Cli.Run merge(String... args) {
    String[] all = new String[args.length + 1];
    all[0] = "merge";
    System.arraycopy(args, 0, all, 1, args.length);
    return Cli.rme(all);
  }

  /**
   * The plain-Java reference of a LoRA merge into the base, in PEFT's own terms: {@code W + mean_k
   * (alpha_k / r_k) B_k A_k} for every adapted weight, the heads averaged.
   */
  private static Path loraReference(List<Path> members) throws Exception {
    Map<String, FloatTensor> w =
        new LazyWeights(HfCheckpoint.open(base).weights()).materializeAll();
    int h = config.hiddenSize();
    float[] head = new float[h];
    int n = members.size();
    for (Path dir : members) {
      PeftFiles.Adapter a = PeftFiles.read(dir, config);
      for (String module : a.loraA().keySet()) {
        FloatTensor aa = a.loraA().get(module); // [r, in]
        FloatTensor bb = a.loraB().get(module); // [out, r]
        FloatTensor wt = w.get(module + ".weight"); // [out, in]
        int r = a.rank();
        int in = (int) aa.shape()[1];
        int out = (int) bb.shape()[0];
        float[] res = wt.data().clone();
        for (int o = 0; o < out; o++) {
          for (int i = 0; i < in; i++) {
            double d = 0;
            for (int j = 0; j < r; j++) {
              d += bb.data()[o * r + j] * aa.data()[j * in + i];
            }
            res[o * in + i] += (float) (a.scaling() * d / n);
          }
        }
        w.put(module + ".weight", new FloatTensor(wt.shape(), res));
      }
      for (int i = 0; i < h; i++) {
        head[i] += a.score().data()[i] / n;
      }
    }
    w.put("score.weight", new FloatTensor(new long[] {1, h}, head));
    Path ref = tmp.resolve("reference-" + members.size() + "-" + System.nanoTime());
    Files.createDirectories(ref);
    SavedModels.writeHf(ref, config, w, 1);
    return ref;
  }

  @Test
  void loraIntoBaseEqualsThePlainJavaAverageAndTheOneAdapterMergeEqualsIt() throws Exception {
    Path intoBase = tmp.resolve("m-lora-base");
    Cli.Run r = merge("--model", base.toString(), "--lora", lora(), "--out", intoBase.toString());
    assertEquals(0, r.code(), r.err());
    float[] merged = col(score(intoBase, List.of()), 0);
    assertClose(col(score(loraReference(adapters), List.of()), 0), merged, 1e-5, "into base");
    // Not trivially so: the adapters move the rewards, and the merge is not the mean reward.
    float[] plain = col(score(base, List.of()), 0);
    float[][] members = score(base, adapters);
    double moved = 0;
    double fromMean = 0;
    for (int i = 0; i < merged.length; i++) {
      moved = Math.max(moved, Math.abs(merged[i] - plain[i]));
      fromMean =
          Math.max(
              fromMean, Math.abs(merged[i] - (members[i][0] + members[i][1] + members[i][2]) / 3));
    }
    assertTrue(moved > 1e-2, "the adapters did not change the merged rewards: " + moved);
    assertTrue(fromMean > 1e-4, "weight averaging equals reward averaging here: " + fromMean);

    Path oneAdapter = tmp.resolve("m-lora-adapter");
    r =
        merge(
            "--model",
            base.toString(),
            "--lora",
            lora(),
            "--out",
            oneAdapter.toString(),
            "--into",
            "adapter");
    assertEquals(0, r.code(), r.err());
    JsonNode manifest = JSON.readTree(oneAdapter.resolve("ensemble.json").toFile());
    assertEquals("lora", manifest.get("kind").asText());
    assertEquals(1, manifest.get("k").asInt());
    assertClose(merged, col(score(oneAdapter, List.of()), 0), 1e-5, "one adapter");
    // The adapter is a PEFT adapter like any other: base + --lora gives the same rewards.
    JsonNode cfg =
        JSON.readTree(oneAdapter.resolve("adapters/member-0/adapter_config.json").toFile());
    assertEquals(12, cfg.get("r").asInt()); // 3 members of rank 4 (rank 2 padded to 4)
    assertClose(
        merged,
        col(score(oneAdapter.resolve("base"), List.of(oneAdapter.resolve("adapters/member-0"))), 0),
        1e-5,
        "base + --lora");

    // --members 0,2: the reference of those two.
    Path two = tmp.resolve("m-lora-02");
    r =
        merge(
            "--model",
            base.toString(),
            "--lora",
            lora(),
            "--out",
            two.toString(),
            "--members",
            "0,2");
    assertEquals(0, r.code(), r.err());
    assertClose(
        col(score(loraReference(List.of(adapters.get(0), adapters.get(2))), List.of()), 0),
        col(score(two, List.of()), 0),
        1e-5,
        "members 0,2");
    JsonNode prov = JSON.readTree(two.resolve("ensemble.json").toFile()).get("provenance");
    assertEquals("[0,2]", prov.get("merge").get("members").toString());
    assertEquals("lora", prov.get("merge").get("source_kind").asText());
    assertEquals("base", prov.get("merge").get("into").asText());
  }

  @Test
  void aTrainedLoraRunMergesAndEveryCommandTakesTheResult() throws Exception {
    Path run = runs.get("lora");
    Path out = tmp.resolve("m-run-lora");
    Cli.Run r = merge("--model", run.toString(), "--out", out.toString(), "--into", "adapter");
    assertEquals(0, r.code(), r.err());
    Path single = tmp.resolve("m-run-lora-base");
    assertEquals(0, merge("--model", run.toString(), "--out", single.toString()).code());
    assertClose(col(score(single, List.of()), 0), col(score(out, List.of()), 0), 1e-5, "run");
    // Scored, exported and described by the ordinary commands; the reward token is kept.
    assertEquals(
        JSON.readTree(run.resolve("ensemble.json").toFile()).get("reward_token"),
        JSON.readTree(single.resolve("ensemble.json").toFile()).get("reward_token"));
    Path rows = tmp.resolve("rows.jsonl");
    Files.write(rows, List.of("{\"input_ids\": [5, 7, 9, 7, 11]}", "{\"input_ids\": [4, 8]}"));
    for (Path m : List.of(out, single)) {
      Cli.Run s = Cli.rme("score", "--model", m.toString(), "--data", rows.toString());
      assertEquals(0, s.code(), s.err());
      Cli.Run e =
          Cli.rme(
              "export",
              "--model",
              m.toString(),
              "--name",
              "warm",
              "--root",
              tmp.resolve("sm-" + m.getFileName()).toString());
      assertEquals(0, e.code(), e.err());
      assertEquals(0, Cli.rme("info", "--model", m.toString()).code());
    }
  }

  @Test
  void aLinearMergeRewardsTheMeanOfItsMembers() throws Exception {
    Path run = runs.get("linear");
    Path out = tmp.resolve("m-linear");
    Cli.Run r = merge("--model", run.toString(), "--out", out.toString());
    assertEquals(0, r.code(), r.err());
    float[][] members = score(run, List.of());
    float[] mean = new float[members.length];
    double spread = 0;
    for (int i = 0; i < members.length; i++) {
      mean[i] = (members[i][0] + members[i][1] + members[i][2]) / 3;
      spread = Math.max(spread, Math.abs(members[i][0] - members[i][1]));
    }
    assertTrue(spread > 1e-3, "the heads are alike: " + spread);
    assertClose(mean, col(score(out, List.of()), 0), 1e-5, "linear");
    // The Java API's in-memory average scores the same, without a directory.
    try (RewardModel rm =
        RewardModel.of(
            ModelMerge.average(
                EnsembleModel.load(run), List.of(), WeightAveraging.Into.BASE, false),
            dev.rewardensemble.config.ExecConfig.defaults())) {
      assertClose(mean, col(rm.score(seqs, 4), 0), 1e-5, "ModelMerge.average");
    }
    assertEquals(
        "single", JSON.readTree(out.resolve("ensemble.json").toFile()).get("kind").asText());
  }

  @Test
  void anIndependentMergeIsTheElementwiseMeanOfTheMembersWeights() throws Exception {
    Path run = runs.get("independent");
    Path out = tmp.resolve("m-independent");
    Cli.Run r = merge("--model", run.toString(), "--out", out.toString());
    assertEquals(0, r.code(), r.err());
    Map<String, FloatTensor> merged =
        new LazyWeights(HfCheckpoint.open(out).weights()).materializeAll();
    List<Map<String, FloatTensor>> ms = new ArrayList<>();
    for (int k = 0; k < 3; k++) {
      ms.add(
          new LazyWeights(HfCheckpoint.open(run.resolve("member-" + k)).weights())
              .materializeAll());
    }
    assertEquals(ms.get(0).keySet(), merged.keySet());
    double differ = 0;
    for (String key : merged.keySet()) {
      float[] got = merged.get(key).data();
      float[] want = new float[got.length];
      for (int i = 0; i < got.length; i++) {
        want[i] =
            (ms.get(0).get(key).data()[i]
                    + ms.get(1).get(key).data()[i]
                    + ms.get(2).get(key).data()[i])
                / 3;
        differ =
            Math.max(differ, Math.abs(ms.get(0).get(key).data()[i] - ms.get(1).get(key).data()[i]));
      }
      assertClose(want, got, 1e-6, key);
    }
    assertTrue(differ > 1e-4, "the members are alike");
    JsonNode prov = JSON.readTree(out.resolve("ensemble.json").toFile()).get("provenance");
    assertTrue(
        prov.get("merge").get("shared_init").asText().contains("tf-graphs/tiny-llama.json"),
        prov.toString());
  }

  @Test
  void independentMembersOfDifferentOrUnrecordedBasesAreRefused() throws Exception {
    Path copy = tmp.resolve("independent-copy");
    copyTree(runs.get("independent"), copy);
    Path runJson = copy.resolve("member-1/run.json");
    ObjectNode rj = (ObjectNode) JSON.readTree(runJson.toFile());
    ((ObjectNode) rj.get("provenance")).put("seed", 99);
    JSON.writeValue(runJson.toFile(), rj);
    Cli.Run r = merge("--model", copy.toString(), "--out", tmp.resolve("x1").toString());
    assertOneLineError(r, runJson + ": key 'provenance.seed' is 99");
    ((ObjectNode) rj.get("provenance")).put("base_model", "other-base");
    JSON.writeValue(runJson.toFile(), rj);
    r = merge("--model", copy.toString(), "--out", tmp.resolve("x1").toString());
    assertOneLineError(r, runJson + ": key 'provenance.base_model' is 'other-base'");
    // Members 0 and 2 still share theirs.
    assertEquals(
        0,
        merge(
                "--model",
                copy.toString(),
                "--members",
                "0,2",
                "--out",
                tmp.resolve("x02").toString())
            .code());
    ((ObjectNode) rj.get("provenance")).remove("base_model");
    JSON.writeValue(runJson.toFile(), rj);
    r = merge("--model", copy.toString(), "--out", tmp.resolve("x2").toString());
    assertOneLineError(r, "--assume-shared-init");
    r =
        merge(
            "--model",
            copy.toString(),
            "--out",
            tmp.resolve("x3").toString(),
            "--assume-shared-init");
    assertEquals(0, r.code(), r.err());
    assertFalse(Files.exists(tmp.resolve("x1")) || Files.exists(tmp.resolve("x2")));
  }

  @Test
  void badInputsAreOneLineErrors() throws Exception {
    Path out = tmp.resolve("bad-out");
    // Not an ensemble; K = 1.
    assertOneLineError(
        merge("--model", base.toString(), "--out", out.toString()), "nothing to average");
    assertOneLineError(
        merge(
            "--model",
            base.toString(),
            "--lora",
            adapters.get(0).toString(),
            "--out",
            out.toString()),
        "K = 1");
    // Mismatched members: an adapter of another base's shapes.
    Path other = tmp.resolve("other-base");
    RandomCheckpoints.write(
        other, RandomCheckpoints.llamaConfig(128, 2, 320), Precision.FLOAT32, 1, 4);
    assertOneLineError(
        merge("--model", other.toString(), "--lora", lora(), "--out", out.toString()), "a0");
    // Bad --members, --into.
    for (String members : List.of("0,7", "1,1", "2", "-1,0")) {
      assertOneLineError(
          merge(
              "--model",
              base.toString(),
              "--lora",
              lora(),
              "--out",
              out.toString(),
              "--members",
              members),
          "--members");
    }
    assertOneLineError(
        merge("--model", base.toString(), "--lora", lora(), "--out", out.toString(), "--into", "x"),
        "--into must be base or adapter");
    assertOneLineError(
        merge(
            "--model", runs.get("linear").toString(), "--out", out.toString(), "--into", "adapter"),
        "--into adapter needs a LoRA ensemble");
    assertFalse(Files.exists(out));
    // An existing --out is never written into.
    Files.createDirectories(out);
    Files.writeString(out.resolve("mine.txt"), "mine\n");
    assertOneLineError(
        merge("--model", base.toString(), "--lora", lora(), "--out", out.toString()), "exists");
    try (Stream<Path> s = Files.list(out)) {
      assertEquals(List.of(out.resolve("mine.txt")), s.toList());
    }
    Path empty = tmp.resolve("empty-out");
    Files.createDirectories(empty);
    assertOneLineError(
        merge("--model", base.toString(), "--lora", lora(), "--out", empty.toString()), "exists");
    // A SavedModel keeps no members.
    Path root = tmp.resolve("sm-bad");
    assertEquals(
        0,
        Cli.rme(
                "export",
                "--model",
                runs.get("linear").toString(),
                "--name",
                "l",
                "--root",
                root.toString())
            .code());
    assertOneLineError(
        merge("--model", root.resolve("l/1").toString(), "--out", out.resolve("y").toString()),
        "SavedModel");
  }

  private static void assertOneLineError(Cli.Run r, String contains) {
    assertEquals(2, r.code(), r.err());
    String err = r.err().strip();
    assertTrue(err.startsWith("rme: error: "), err);
    assertFalse(err.contains("\n"), "more than one line: " + err);
    assertTrue(err.contains(contains), "expected '" + contains + "' in: " + err);
  }

  @Test
  void aMergeKilledBeforeItsRenameLeavesNoModel() throws Exception {
    Path out = tmp.resolve("m-killed");
    List<String> cmd = new ArrayList<>(List.of("java", "-Xmx512m"));
    cmd.add("-D" + CrashPoints.PROPERTY + "=merge-staged");
    cmd.addAll(
        List.of(
            "-cp",
            "target/classes:" + Files.readString(Path.of("target/classpath.txt")).trim(),
            "dev.rewardensemble.cli.Main",
            "merge",
            "--model",
            runs.get("linear").toString(),
            "--out",
            out.toString()));
    Path log = tmp.resolve("killed.log");
    Process p =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "subprocess did not finish");
    assertEquals(137, p.exitValue(), Files.readString(log));
    assertFalse(Files.exists(out), "a killed merge left " + out);
    List<Path> leftovers;
    try (Stream<Path> s = Files.list(tmp)) {
      leftovers = s.filter(x -> x.getFileName().toString().startsWith(".m-killed")).toList();
    }
    assertEquals(1, leftovers.size(), leftovers.toString());
    Path rows = tmp.resolve("rows-k.jsonl");
    Files.write(rows, List.of("{\"input_ids\": [5, 7, 9]}"));
    assertEquals(2, Cli.rme("score", "--model", out.toString(), "--data", rows.toString()).code());
    // The next merge to the same --out removes the dead writer's leftover and completes.
    Cli.Run r = merge("--model", runs.get("linear").toString(), "--out", out.toString());
    assertEquals(0, r.code(), r.err());
    assertFalse(Files.exists(leftovers.get(0)), "the dead merge's staging directory stayed");
    assertEquals(0, Cli.rme("score", "--model", out.toString(), "--data", rows.toString()).code());
  }

  private static void copyTree(Path from, Path to) throws Exception {
    try (Stream<Path> s = Files.walk(from)) {
      for (Path p : s.toList()) {
        Path d = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(d);
        } else {
          Files.copy(p, d);
        }
      }
    }
  }
}
