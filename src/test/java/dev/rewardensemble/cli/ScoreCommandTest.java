package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.testing.Cli;
import dev.rewardensemble.testing.Fixtures;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code rme score} end to end, and its error paths: one clear line, exit code 2. */
class ScoreCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  static Cli.Run rme(String... args) {
    return Cli.rme(args);
  }

  /** The fixture's sequences without padding, one JSONL row each. */
  private Path unpaddedRows(String fixture) throws Exception {
    JsonNode e = Fixtures.expected(fixture);
    int[][] ids = Fixtures.ints2(e.get("input_ids"));
    int[][] mask = Fixtures.ints2(e.get("attention_mask"));
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < ids.length; i++) {
      List<Integer> row = new ArrayList<>();
      for (int j = 0; j < ids[i].length; j++) {
        if (mask[i][j] == 1) {
          row.add(ids[i][j]);
        }
      }
      lines.add(JSON.writeValueAsString(Map.of("input_ids", row)));
    }
    Path p = tmp.resolve(fixture + ".jsonl");
    Files.write(p, lines);
    return p;
  }

  @ParameterizedTest
  @ValueSource(strings = {"gpt2-seqcls", "llama-seqcls"})
  void scoreReproducesTransformersRewards(String fixture) throws Exception {
    Path out = tmp.resolve("out.jsonl");
    Cli.Run r =
        rme(
            "score",
            "--model",
            Fixtures.dir(fixture).toString(),
            "--data",
            unpaddedRows(fixture).toString(),
            "--out",
            out.toString(),
            "--batch-size",
            "2");
    assertEquals(0, r.code(), r.err());
    List<String> lines = Files.readAllLines(out);
    float[] want = Fixtures.floats(Fixtures.expected(fixture).get("rewards"));
    assertEquals(want.length, lines.size());
    float[] got = new float[want.length];
    for (int i = 0; i < got.length; i++) {
      JsonNode row = JSON.readTree(lines.get(i));
      assertEquals(i + 1, row.get("line").asInt());
      got[i] = (float) row.get("reward").asDouble();
    }
    Fixtures.assertClose(want, got, 1e-4, 1e-5, fixture + " rewards via rme score");
  }

  @Test
  void computeAndXlaOptionsScoreWithinTheirPrecision() throws Exception {
    String fixture = "gpt2-seqcls";
    float[] want = Fixtures.floats(Fixtures.expected(fixture).get("rewards"));
    for (List<String> opts : List.of(List.of("--compute", "bfloat16"), List.of("--xla"))) {
      Path out = tmp.resolve("out-" + opts.get(0).substring(2) + ".jsonl");
      List<String> args =
          new java.util.ArrayList<>(
              List.of(
                  "score",
                  "--model",
                  Fixtures.dir(fixture).toString(),
                  "--data",
                  unpaddedRows(fixture).toString(),
                  "--out",
                  out.toString()));
      args.addAll(opts);
      Cli.Run r = rme(args.toArray(String[]::new));
      assertEquals(0, r.code(), r.err());
      List<String> lines = Files.readAllLines(out);
      float[] got = new float[want.length];
      for (int i = 0; i < got.length; i++) {
        got[i] = (float) JSON.readTree(lines.get(i)).get("reward").asDouble();
      }
      double tol = opts.contains("--xla") ? 1e-4 : 3e-2;
      Fixtures.assertClose(want, got, tol, tol, fixture + " rewards via rme score " + opts);
    }
    Cli.Run bad =
        rme(
            "score",
            "--model",
            Fixtures.dir(fixture).toString(),
            "--data",
            unpaddedRows(fixture).toString(),
            "--compute",
            "fp8");
    assertNotEquals(0, bad.code());
    assertTrue(bad.err().contains("--compute") && bad.err().contains("fp8"), bad.err());
  }

  private Path copyFixture(String fixture) throws Exception {
    Path dir = tmp.resolve("model");
    Files.createDirectories(dir);
    for (String f : List.of("config.json", "model.safetensors")) {
      Files.copy(Fixtures.dir(fixture).resolve(f), dir.resolve(f));
    }
    return dir;
  }

  @Test
  void corruptSafetensorsHeaderIsOneClearError() throws Exception {
    Path dir = copyFixture("gpt2-seqcls");
    Path st = dir.resolve("model.safetensors");
    byte[] bytes = Files.readAllBytes(st);
    ByteBuffer.wrap(bytes)
        .order(ByteOrder.LITTLE_ENDIAN)
        .putLong(0, 1L << 40); // header length beyond the file
    Files.write(st, bytes);
    Cli.Run r =
        rme("score", "--model", dir.toString(), "--data", unpaddedRows("gpt2-seqcls").toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("model.safetensors"), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
  }

  @Test
  void wrongShapedTensorNamesKeyAndBothShapes() throws Exception {
    Path dir = copyFixture("llama-seqcls");
    Path st = dir.resolve("model.safetensors");
    Map<String, FloatTensor> w;
    try (Safetensors s = Safetensors.open(st)) {
      w = new LinkedHashMap<>(s.readAll());
    }
    String key = "model.layers.1.self_attn.k_proj.weight";
    FloatTensor k = w.get(key);
    w.put(key, new FloatTensor(new long[] {64, 32}, k.data()));
    Safetensors.write(st, w);
    Cli.Run r =
        rme("score", "--model", dir.toString(), "--data", unpaddedRows("llama-seqcls").toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(
        r.err().contains(key) && r.err().contains("[64, 32]") && r.err().contains("[32, 64]"),
        r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
  }

  @Test
  void malformedJsonlLineNamesFileAndLine() throws Exception {
    Path data = tmp.resolve("bad.jsonl");
    Files.writeString(data, "{\"input_ids\": [5, 6]}\n{\"input_ids\": [5, \n");
    Path out = tmp.resolve("never.jsonl");
    Cli.Run r =
        rme(
            "score",
            "--model",
            Fixtures.dir("gpt2-seqcls").toString(),
            "--data",
            data.toString(),
            "--out",
            out.toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("bad.jsonl:2"), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertFalse(Files.exists(out), "no output file for failed input");
  }

  @Test
  void tooLongSequenceIsAnErrorUnlessTruncated() throws Exception {
    // GPT-2 fixture has 64 positions.
    List<Integer> ids = new ArrayList<>();
    for (int i = 0; i < 70; i++) {
      ids.add(5 + i);
    }
    Path data = tmp.resolve("long.jsonl");
    Files.writeString(data, JSON.writeValueAsString(Map.of("input_ids", ids)) + "\n");
    Cli.Run r =
        rme("score", "--model", Fixtures.dir("gpt2-seqcls").toString(), "--data", data.toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("long.jsonl:1"), r.err());
    Path out = tmp.resolve("o.jsonl");
    Cli.Run ok =
        rme(
            "score",
            "--model",
            Fixtures.dir("gpt2-seqcls").toString(),
            "--data",
            data.toString(),
            "--truncate",
            "left",
            "--out",
            out.toString());
    assertEquals(0, ok.code(), ok.err());
    assertEquals(1, Files.readAllLines(out).size());
  }

  @Test
  void unknownArchitectureIsAClearError() throws Exception {
    Path dir = copyFixture("gpt2-seqcls");
    Path cfg = dir.resolve("config.json");
    Files.writeString(
        cfg, Files.readString(cfg).replace("GPT2ForSequenceClassification", "BertForMaskedLM"));
    Cli.Run r =
        rme("score", "--model", dir.toString(), "--data", unpaddedRows("gpt2-seqcls").toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("BertForMaskedLM") && r.err().contains("config.json"), r.err());
  }
}
