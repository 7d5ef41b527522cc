package dev.rewardensemble.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.ensemble.LoraEnsembleGraph;
import dev.rewardensemble.lora.LoraConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.GraphOperation;
import org.tensorflow.op.Ops;
import org.tensorflow.proto.DataType;

/** Which dtypes flow through the graphs each compute precision builds. */
class ActivationDtypeTest {

  /** Op type and output dtypes of every op, counted, in a fixed order. */
  static String histogram(Graph g) {
    Map<String, Integer> counts = new TreeMap<>();
    Iterator<GraphOperation> it = g.operations();
    while (it.hasNext()) {
      GraphOperation op = it.next();
      StringBuilder key = new StringBuilder(op.type());
      for (int i = 0; i < op.numOutputs(); i++) {
        key.append(':').append(op.output(i).dataType());
      }
      counts.merge(key.toString(), 1, Integer::sum);
    }
    StringBuilder out = new StringBuilder();
    counts.forEach((k, v) -> out.append(k).append('=').append(v).append('\n'));
    return out.toString();
  }

  static String sha(String s) throws Exception {
    return HexFormat.of()
        .formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)))
        .substring(0, 16);
  }

  static String build(Precision p, Consumer<BuildContext> body) throws Exception {
    try (Graph g = new Graph()) {
      body.accept(new BuildContext(Ops.create(g), p, false));
      return histogram(g);
    }
  }

  static ModelConfig config(String file) throws Exception {
    return ModelConfigs.read(Path.of(file));
  }

  static void rewardGraph(BuildContext cx, ModelConfig c) {
    RewardGraph.build(cx, c, 1, new ParameterStore(cx), Projector.NONE, RewardToken.LAST_NON_PAD);
  }

  static void loraTraining(BuildContext cx, ModelConfig c) {
    LoraEnsembleGraph.training(
        cx,
        c,
        LoraConfig.defaults(c).withRank(4, 8),
        3,
        new ParameterStore(cx),
        5,
        RewardToken.LAST_NON_PAD);
  }

  static void loraScoring(BuildContext cx, ModelConfig c) {
    LoraEnsembleGraph.scoring(
        cx,
        c,
        LoraConfig.defaults(c).withRank(4, 8),
        3,
        new ParameterStore(cx),
        RewardToken.LAST_NON_PAD);
  }

  static Map<String, ModelConfig> families() throws Exception {
    Map<String, ModelConfig> out = new java.util.LinkedHashMap<>();
    out.put("tiny-llama", config("tf-graphs/tiny-llama.json"));
    out.put("tiny-gpt2", config("tf-graphs/tiny-gpt2.json"));
    for (String f : java.util.List.of("qwen2", "qwen3", "mistral", "gemma2")) {
      out.put(
          f,
          ModelConfigs.read(
              Path.of(
                  ActivationDtypeTest.class
                      .getResource("/hf-families/" + f + "-seqcls/config.json")
                      .toURI())));
    }
    return out;
  }

  /**
   * SHA-256 (first 16 hex digits) of {@link #histogram}: the float32 reward graph, LoRA training
   * graph and LoRA scoring graph of each family, as built before bfloat16 activations existed.
   */
  static final Map<String, String> FLOAT32_GRAPHS =
      Map.of(
          "tiny-llama", "7a8fd365e083b65e c9ed4aca1912797e 995e9e2183b57d08",
          "tiny-gpt2", "2d7d080040251467 d35d5dc6a2da4b97 f393c7cd499967e8",
          "qwen2", "75b938fc27101350 c1bcef805fb30ff2 9da6d84673a880b8",
          "qwen3", "d774138e50e4c21c 740b279f225fcf9c 4a617fb344fb97c0",
          "mistral", "1852494c0fcb91b1 f5ab110f4adbb2b4 0280877bd517b208",
          "gemma2", "4a3cd49bd253e544 e710bbb269dd370b ca9d0d0893c12a17");

  @Test
  void float32GraphsAreUnchanged() throws Exception {
    for (Map.Entry<String, ModelConfig> e : families().entrySet()) {
      ModelConfig c = e.getValue();
      String got =
          sha(build(Precision.FLOAT32, cx -> rewardGraph(cx, c)))
              + " "
              + sha(build(Precision.FLOAT32, cx -> loraTraining(cx, c)))
              + " "
              + sha(build(Precision.FLOAT32, cx -> loraScoring(cx, c)));
      assertEquals(FLOAT32_GRAPHS.get(e.getKey()), got, e.getKey());
    }
  }

  /** Output dtype of each op of {@code type} whose name does not start with {@code gradients}. */
  static List<DataType> forwardDtypes(Graph g, String type) {
    List<DataType> out = new ArrayList<>();
    Iterator<GraphOperation> it = g.operations();
    while (it.hasNext()) {
      GraphOperation op = it.next();
      if (op.type().equals(type) && !op.name().startsWith("gradients")) {
        out.add(op.output(0).dataType());
      }
    }
    return out;
  }

  static long count(List<DataType> l, DataType t) {
    return l.stream().filter(t::equals).count();
  }

  @Test
  void blockActivationsAreBfloat16UnderBfloat16ComputeOnly() throws Exception {
    for (Map.Entry<String, ModelConfig> e : families().entrySet()) {
      ModelConfig c = e.getValue();
      int layers = c.numLayers();
      for (Precision p : Precision.values()) {
        DataType want = p == Precision.BFLOAT16 ? DataType.DT_BFLOAT16 : DataType.DT_FLOAT;
        String what = e.getKey() + " " + p.id();
        try (Graph g = new Graph()) {
          BuildContext cx = new BuildContext(Ops.create(g), p, false);
          loraTraining(cx, c);
          // q k^T and p v of every block (the ensemble's heads, one more batched product, stay
          // float32).
          List<DataType> bmm = forwardDtypes(g, "BatchMatMulV2");
          assertEquals(
              2L * layers + (p == Precision.FLOAT32 ? 1 : 0),
              count(bmm, want),
              what + " attention products " + bmm);
          // Every weight product: projections, LoRA's A and B, the heads (cast back to float32
          // after the product).
          List<DataType> mm = forwardDtypes(g, "MatMul");
          assertEquals(mm.size(), count(mm, want), what + " products " + mm);
          assertTrue(mm.size() >= 3 * layers, what + " products " + mm.size());
          // Softmax in float32 in both.
          List<DataType> sm = forwardDtypes(g, "Softmax");
          assertEquals(layers, count(sm, DataType.DT_FLOAT), what + " softmax " + sm);
          // The MLP's activation: SiLU's sigmoid (Llama, Qwen, Mistral), the tanh of gelu_new
          // (GPT-2, Gemma 2's GeGLU) and of Gemma 2's attention soft-capping (in float32).
          List<DataType> act = new ArrayList<>(forwardDtypes(g, "Sigmoid"));
          act.addAll(forwardDtypes(g, "Tanh"));
          assertTrue(count(act, want) >= layers, what + " MLP activations " + act);
          if (p == Precision.FLOAT32) {
            assertEquals(0, histogram(g).split("DT_BFLOAT16", -1).length - 1, what);
          }
        }
      }
    }
  }

  @Test
  void printSnapshots() throws Exception {
    for (Map.Entry<String, ModelConfig> e : families().entrySet()) {
      ModelConfig c = e.getValue();
      System.out.println(
          "SNAP "
              + e.getKey()
              + " "
              + sha(build(Precision.FLOAT32, cx -> rewardGraph(cx, c)))
              + " "
              + sha(build(Precision.FLOAT32, cx -> loraTraining(cx, c)))
              + " "
              + sha(build(Precision.FLOAT32, cx -> loraScoring(cx, c)))
              + " "
              + sha(build(Precision.BFLOAT16, cx -> rewardGraph(cx, c))));
    }
    assertEquals(1, 1);
  }
}
