package dev.rewardensemble.interop;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.serving.SavedModelScorer;
import dev.rewardensemble.serving.SavedModels;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Exports the gpt2 and llama fixtures (K = 1, and K = 3 with a seeded random head) as SavedModels
 * and as {@code --format hf} checkpoints into {@code OUT}, scores the fixtures' batches from Java
 * (through the reloaded SavedModel) and writes {@code OUT/java-rewards.json} for {@code
 * scripts/interop_check.py}. Run by {@code scripts/python-interop.sh} on the test classpath.
 *
 * <p>Usage: {@code InteropExport OUT}
 */
public final class InteropExport {
  private static final ObjectMapper JSON = new ObjectMapper();

  private InteropExport() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: InteropExport OUT_DIR");
      System.exit(2);
    }
    Path out = Path.of(args[0]).toAbsolutePath();
    Files.createDirectories(out);
    ObjectNode report = JSON.createObjectNode();
    ArrayNode models = report.putArray("models");
    for (String fixture : new String[] {"gpt2-seqcls", "llama-seqcls"}) {
      Path fdir = fixtureDir(fixture);
      JsonNode expected = JSON.readTree(fdir.resolve("expected.json").toFile());
      HfCheckpoint.Checkpoint ck = HfCheckpoint.load(fdir);
      for (int k : new int[] {1, 3}) {
        Map<String, FloatTensor> w = k == 1 ? ck.weights() : withRandomHead(ck, k, 1234 + k);
        String name = fixture + "-k" + k;
        AggregationConfig agg = k == 1 ? AggregationConfig.mean() : AggregationConfig.lcb(1.0);
        Path sm = out.resolve("savedmodels").resolve(name).resolve("1");
        Path hf = out.resolve("hf").resolve(name);
        SavedModels.export(
            sm,
            ck.config(),
            k,
            w,
            dev.rewardensemble.config.RewardToken.LAST_NON_PAD,
            agg,
            Map.of("fixture", fixture, "seed", 1234 + k),
            true);
        SavedModels.exportHf(hf, ck.config(), w, k);

        int[][] ids = ints2(expected.get("input_ids"));
        int[][] mask = ints2(expected.get("attention_mask"));
        int b = ids.length;
        int t = ids[0].length;
        ObjectNode m = models.addObject();
        m.put("name", name);
        m.put("fixture", fixture);
        m.put("heads", k);
        m.put("savedmodel", sm.toString());
        m.put("hf", hf.toString());
        m.put("pad_token_id", ck.config().padTokenId());
        m.set("input_ids", expected.get("input_ids"));
        m.set("attention_mask", expected.get("attention_mask"));
        if (k == 1) {
          m.set("expected_rewards", expected.get("rewards"));
        }
        ObjectNode outputs = m.putObject("outputs");
        try (SavedModelScorer s = SavedModelScorer.load(sm)) {
          Map<String, float[]> o = s.outputs(flat(ids), flat(mask), b, t);
          for (Map.Entry<String, float[]> e : o.entrySet()) {
            ArrayNode a = outputs.putArray(e.getKey());
            for (float v : e.getValue()) {
              a.add(v);
            }
          }
          ArrayNode members = m.putArray("members");
          for (float[] row : s.run(flat(ids), flat(mask), b, t)) {
            ArrayNode r = members.addArray();
            for (float v : row) {
              r.add(v);
            }
          }
        }
        System.out.println("[interop] exported " + name + ": " + sm + " and " + hf);
      }
    }
    // PEFT: the llama-lora fixture's adapters imported, exported again by the project, and scored
    // by Java; Python loads each exported member with peft over the base model.
    Path base = fixtureDir("llama-seqcls");
    Path loraFixture = fixtureDir("llama-lora");
    java.util.List<Path> members = new java.util.ArrayList<>();
    for (int k = 0; k < 3; k++) {
      members.add(loraFixture.resolve("member" + k));
    }
    dev.rewardensemble.ensemble.EnsembleModel em =
        dev.rewardensemble.ensemble.EnsembleModel.fromPeft(base, members);
    java.util.Map<String, FloatTensor> loraWeights = new LinkedHashMap<>();
    em.weights()
        .forEach(
            (key, v) -> {
              if (key.endsWith(".lora_A")
                  || key.endsWith(".lora_B")
                  || key.equals("score.weight")) {
                loraWeights.put(key, v);
              }
            });
    var stacked =
        new dev.rewardensemble.lora.PeftAdapters.Stacked(em.config(), em.lora(), 3, loraWeights);
    JsonNode le = JSON.readTree(loraFixture.resolve("expected.json").toFile());
    int[][] lids = ints2(le.get("input_ids"));
    int[][] lmask = ints2(le.get("attention_mask"));
    ObjectNode peft = report.putObject("peft");
    peft.put("base", base.toString());
    peft.set("input_ids", le.get("input_ids"));
    peft.set("attention_mask", le.get("attention_mask"));
    ArrayNode dirs = peft.putArray("members");
    for (int k = 0; k < 3; k++) {
      Path d = out.resolve("peft").resolve("member-" + k);
      dev.rewardensemble.lora.PeftAdapters.export(d, stacked, k, base.toString());
      dirs.add(d.toString());
    }
    try (dev.rewardensemble.api.RewardModel rm =
        dev.rewardensemble.api.RewardModel.of(
            em, dev.rewardensemble.config.ExecConfig.defaults())) {
      ArrayNode rows = peft.putArray("java_member_rewards");
      for (float[] row : rm.run(flat(lids), flat(lmask), lids.length, lids[0].length)) {
        ArrayNode r = rows.addArray();
        for (float v : row) {
          r.add(v);
        }
      }
    }
    peft.set("expected_member_rewards", le.get("member_rewards"));
    JSON.writerWithDefaultPrettyPrinter()
        .writeValue(out.resolve("java-rewards.json").toFile(), report);
  }

  private static Path fixtureDir(String name) throws URISyntaxException {
    var url = InteropExport.class.getResource("/fixtures/" + name + "/expected.json");
    if (url == null) {
      throw new IllegalStateException(
          "fixture " + name + " not on the classpath (run with target/test-classes)");
    }
    return Path.of(url.toURI()).getParent();
  }

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

  private static int[][] ints2(JsonNode n) {
    int[][] out = new int[n.size()][];
    for (int i = 0; i < n.size(); i++) {
      out[i] = new int[n.get(i).size()];
      for (int j = 0; j < out[i].length; j++) {
        out[i][j] = n.get(i).get(j).asInt();
      }
    }
    return out;
  }

  private static int[] flat(int[][] a) {
    return java.util.Arrays.stream(a).flatMapToInt(java.util.Arrays::stream).toArray();
  }
}
