package dev.rewardensemble.reliability;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.data.EncodedSequence;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.PromptTemplate;
import dev.rewardensemble.data.SyntheticPreferences;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.Safetensors;
import dev.rewardensemble.testing.Cli;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad input of every kind: one line {@code rme: error: ...} naming the file, line or key, exit 2.
 */
class BadInputTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path RM = Path.of("examples/tiny-llama-rm");
  @TempDir Path tmp;

  private static void assertOneLine(Cli.Run r, int code, String... mentions) {
    assertEquals(code, r.code(), r.err());
    assertEquals(1, r.err().strip().lines().count(), r.err());
    assertTrue(r.err().startsWith("rme: error: "), r.err());
    for (String m : mentions) {
      assertTrue(r.err().contains(m), "expected '" + m + "' in: " + r.err());
    }
  }

  private Path write(String name, String... lines) throws Exception {
    Path p = tmp.resolve(name);
    Files.write(p, List.of(lines));
    return p;
  }

  private static final String LONG =
      "one two three four five six seven eight nine ten eleven twelve thirteen";

  // ---- item 11: text rows follow --truncate ----

  @Test
  void overlongTextRowIsAnErrorWithTruncateErrorAndNamesFileLineAndLengths() throws Exception {
    Path data =
        write(
            "text.jsonl",
            "{\"prompt\": \"hi\", \"response\": \"ok\"}",
            "{\"prompt\": \"" + LONG + "\", \"response\": \" fine\"}");
    var r =
        Cli.rme(
            "score",
            "--model",
            RM.toString(),
            "--data",
            data.toString(),
            "--max-length",
            "12",
            "--template",
            "raw",
            "--out",
            tmp.resolve("o.jsonl").toString());
    assertOneLine(r, 2, data + ":2: response:", "prompt +", "maximum length 12");
    assertTrue(Files.notExists(tmp.resolve("o.jsonl")));
    // --truncate left scores it, the prompt cut from the left.
    var ok =
        Cli.rme(
            "score",
            "--model",
            RM.toString(),
            "--data",
            data.toString(),
            "--max-length",
            "12",
            "--template",
            "raw",
            "--truncate",
            "left",
            "--out",
            tmp.resolve("o.jsonl").toString());
    assertEquals(0, ok.code(), ok.err());
    assertEquals(2, Files.readAllLines(tmp.resolve("o.jsonl")).size());
  }

  @Test
  void aResponseLongerThanTheLimitIsNeverCutEvenWithTruncateLeft() throws Exception {
    Path data = write("text.jsonl", "{\"prompt\": \"hi\", \"response\": \"" + LONG + "\"}");
    var r =
        Cli.rme(
            "score",
            "--model",
            RM.toString(),
            "--data",
            data.toString(),
            "--max-length",
            "6",
            "--template",
            "raw",
            "--truncate",
            "left");
    assertOneLine(r, 2, data + ":1: response:", "the response alone has", "maximum length 6");
  }

  @Test
  void truncateLeftKeepsTheWholeResponseAndItsEos() {
    Tokenizer tok = Tokenizer.load(RM.resolve("tokenizer.json"));
    int[] resp = tok.encode(" the answer");
    Encoder enc =
        new Encoder(
            tok,
            PromptTemplate.RAW,
            resp.length + 1 + 3,
            OptionalInt.of(2),
            Encoder.Truncation.LEFT);
    EncodedSequence s = enc.encode(LONG, " the answer");
    int[] ids = s.ids();
    assertEquals(resp.length + 4, ids.length);
    assertEquals(2, ids[ids.length - 1], "the EOS survives");
    assertArrayEquals(resp, Arrays.copyOfRange(ids, 3, 3 + resp.length));
  }

  @Test
  @Timeout(60)
  void trainRmTextRowTooLongNamesTheLine() throws Exception {
    Path data =
        write(
            "trl.jsonl",
            "{\"prompt\": \"a\", \"chosen\": \" good\", \"rejected\": \" bad\"}",
            "{\"prompt\": \"a\", \"chosen\": \"" + LONG + "\", \"rejected\": \" bad\"}");
    var r =
        Cli.rme(
            "train-rm",
            "--model",
            RM.toString(),
            "--data",
            data.toString(),
            "--out",
            tmp.resolve("run").toString(),
            "--format",
            "trl",
            "--template",
            "raw",
            "--max-length",
            "6",
            "--steps",
            "1",
            "--eval-fraction",
            "0");
    assertOneLine(r, 2, data + ":2: chosen:", "the response alone has");
  }

  // ---- item 12: non-finite rewards ----

  @Test
  void aNanWeightIsAnErrorNamingTheModelUnlessAllowed() throws Exception {
    Path m = tmp.resolve("nan-rm");
    Files.createDirectories(m);
    for (String f : List.of("config.json", "tokenizer.json")) {
      Files.copy(RM.resolve(f), m.resolve(f));
    }
    Map<String, FloatTensor> w;
    try (Safetensors s = Safetensors.open(RM.resolve("model.safetensors"))) {
      w = new LinkedHashMap<>(s.readAll());
    }
    FloatTensor head = w.get("score.weight");
    float[] d = head.data().clone();
    d[0] = Float.NaN;
    w.put("score.weight", new FloatTensor(head.shape(), d));
    Safetensors.write(m.resolve("model.safetensors"), w);
    Path data = write("ids.jsonl", "{\"input_ids\": [1, 5, 7]}", "{\"input_ids\": [1, 9]}");
    Path out = tmp.resolve("scores.jsonl");
    var r =
        Cli.rme(
            "score", "--model", m.toString(), "--data", data.toString(), "--out", out.toString());
    assertOneLine(r, 2, m.toString(), "non-finite reward for line 1");
    assertTrue(Files.notExists(out));
    java.io.ByteArrayOutputStream stderr = new java.io.ByteArrayOutputStream();
    java.io.PrintStream old = System.err;
    Cli.Run ok;
    try {
      System.setErr(new java.io.PrintStream(stderr, true, java.nio.charset.StandardCharsets.UTF_8));
      ok =
          Cli.rme(
              "score",
              "--model",
              m.toString(),
              "--data",
              data.toString(),
              "--out",
              out.toString(),
              "--allow-nonfinite");
    } finally {
      System.setErr(old);
    }
    assertEquals(0, ok.code(), ok.err());
    String printed = stderr.toString(java.nio.charset.StandardCharsets.UTF_8);
    assertTrue(printed.contains("2 of 2 rows had non-finite rewards"), printed);
    for (String line : Files.readAllLines(out)) {
      JsonNode row = JSON.readTree(line);
      assertTrue(row.get("reward").isNull(), line);
    }
  }

  // ---- item 14: the remaining multi-line or nameless errors ----

  @Test
  void picocliErrorsAreOneLine() {
    var r = Cli.rme("score", "--model", RM.toString(), "--data", "x.jsonl", "--bogus");
    assertOneLine(r, 2, "--bogus", "rme score --help");
    var n =
        Cli.rme(
            "score",
            "--model",
            RM.toString(),
            "--data",
            "x.jsonl",
            "--batch-size",
            "99999999999999999999");
    assertOneLine(n, 2, "--batch-size", "99999999999999999999");
  }

  private Path linearRun() throws Exception {
    Path data = tmp.resolve("pairs.jsonl");
    Files.write(
        data, SyntheticPreferences.toJsonl(SyntheticPreferences.counting(30, 64, 8, 16, 3, 1)));
    Path run = tmp.resolve("linear");
    var t =
        Cli.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            data.toString(),
            "--out",
            run.toString(),
            "--ensemble",
            "linear",
            "--k",
            "2",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--grad-accum",
            "1",
            "--eval-fraction",
            "0.1",
            "--save-every",
            "1",
            "--threads",
            "1");
    assertEquals(0, t.code(), t.err());
    return run;
  }

  @Test
  @Timeout(60)
  void corruptEnsembleJsonStateJsonAndTokenizerJsonAreOneLineNamingTheFile() throws Exception {
    Path run = linearRun();
    Path data = write("ids.jsonl", "{\"input_ids\": [1, 5, 7]}");
    Path manifest = run.resolve("ensemble.json");
    String good = Files.readString(manifest);
    Files.writeString(manifest, "{\n  \"kind\": \"linear\",\n  \"members\": [1,,\n}");
    var a = Cli.rme("score", "--model", run.toString(), "--data", data.toString());
    assertOneLine(a, 2, manifest.toString(), "line 3");

    Files.writeString(
        manifest, good.replaceFirst("\"rule\"\\s*:\\s*\"mean\"", "\"rule\": \"foo\""));
    assertTrue(Files.readString(manifest).contains("\"foo\""), "the manifest names a rule");
    var b = Cli.rme("score", "--model", run.toString(), "--data", data.toString());
    assertOneLine(b, 2, manifest.toString(), "'foo' is not one of mean, lcb, min, uwo");
    Files.writeString(manifest, good);

    Path tok = write("tokenizer.json", "{\"model\": {\"vocab\": [", "  1, 2,", "  oops");
    var c =
        Cli.rme(
            "score",
            "--model",
            run.toString(),
            "--data",
            data.toString(),
            "--tokenizer",
            tok.toString());
    assertOneLine(c, 2, tok.toString(), "line 3");

    // A checkpoint's state.json, read on --resume.
    Path ckpt;
    try (Stream<Path> s = Files.list(run.resolve("checkpoints"))) {
      ckpt =
          s.filter(p -> p.getFileName().toString().startsWith("step-"))
              .max(Path::compareTo)
              .orElseThrow();
    }
    Files.writeString(ckpt.resolve("state.json"), "{\"step\": 2,\n \"seed\": }");
    Files.delete(run.resolve("model.safetensors"));
    Files.delete(manifest);
    var d =
        Cli.rme(
            "train-rm",
            "--model",
            "tf-graphs/tiny-llama.json",
            "--data",
            tmp.resolve("pairs.jsonl").toString(),
            "--out",
            run.toString(),
            "--ensemble",
            "linear",
            "--k",
            "2",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--grad-accum",
            "1",
            "--eval-fraction",
            "0.1",
            "--save-every",
            "1",
            "--threads",
            "1",
            "--resume");
    assertOneLine(d, 2, ckpt.resolve("state.json").toString(), "not valid JSON (line 2");
  }

  @Test
  void deeplyNestedJsonRowIsOneLine() throws Exception {
    Path data = tmp.resolve("deep.jsonl");
    Files.writeString(data, "{\"input_ids\": " + "[".repeat(100_000) + "]".repeat(100_000) + "}\n");
    var r = Cli.rme("score", "--model", RM.toString(), "--data", data.toString());
    assertOneLine(r, 2, data + ":1");
  }

  @Test
  void anArchitectureThatContradictsModelTypeNamesBoth() throws Exception {
    JsonNode n = JSON.readTree(Path.of("tf-graphs/tiny-llama.json").toFile());
    ((com.fasterxml.jackson.databind.node.ObjectNode) n)
        .putArray("architectures")
        .add("GPT2ForSequenceClassification");
    Path p = tmp.resolve("mixed.json");
    Files.writeString(p, JSON.writeValueAsString(n));
    var r =
        Cli.rme(
            "train-rm",
            "--model",
            p.toString(),
            "--data",
            write("d.jsonl", "{}").toString(),
            "--out",
            tmp.resolve("run").toString());
    assertOneLine(r, 2, p.toString(), "GPT2ForSequenceClassification", "model_type 'llama'");
  }
}
