package dev.rewardensemble.config;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The configurations of today's families as transformers saves them (4.x and 5.x key styles), read
 * into their records, written back and refused with messages that name the key.
 */
class FamilyConfigsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static ModelConfig fixture(String name) throws Exception {
    return ModelConfigs.read(Path.of("src/test/resources/hf-families", name, "config.json"));
  }

  @Test
  void llama3In4xStyleReadsRopeScalingAndTorchDtype() throws Exception {
    LlamaConfig c = (LlamaConfig) fixture("llama3-seqcls");
    assertEquals(500000.0, c.ropeTheta());
    assertEquals(new RopeScaling("llama3", 8, 1, 4, 16), c.ropeScaling());
    assertEquals(16, c.headDim());
    assertEquals(2, c.numKeyValueHeads());
    assertEquals("LlamaForSequenceClassification", c.sequenceClassificationArchitecture());
  }

  @Test
  void llama3FrequenciesFollowTransformers() {
    // transformers' _compute_llama3_parameters for head_dim 16, theta 500000, factor 8, low 1,
    // high 4, original 16: wavelengths 2*pi*theta^(2i/16); > 16 divided by 8, < 4 kept, between
    // smoothed.
    RopeScaling r = new RopeScaling("llama3", 8, 1, 4, 16);
    float[] inv = r.inverseFrequencies(16, 500000.0);
    double base0 = 1.0; // i = 0: wavelength 2*pi (between 4 and 16): smoothed
    double smooth = (16 / (2 * Math.PI) - 1) / (4 - 1);
    assertEquals((float) ((1 - smooth) * base0 / 8 + smooth * base0), inv[0], 1e-7);
    for (int i = 1; i < 8; i++) { // wavelengths > 16: divided by the factor
      double f = 1.0 / Math.pow(500000.0, 2.0 * i / 16);
      assertEquals(f / 8, inv[i], 1e-7 * f);
    }
    float[] linear = new RopeScaling("linear", 2, 0, 0, 0).inverseFrequencies(8, 10000);
    float[] none = RopeScaling.NONE.inverseFrequencies(8, 10000);
    for (int i = 0; i < 4; i++) {
      assertEquals(none[i] / 2, linear[i], 1e-9);
    }
  }

  @Test
  void qwen2ReadsBiasesTiedEmbeddingsAndNoWindow() throws Exception {
    Qwen2Config c = assertInstanceOf(Qwen2Config.class, fixture("qwen2-seqcls"));
    assertTrue(c.tieWordEmbeddings());
    assertEquals(1e6, c.ropeTheta());
    assertEquals(List.of(0, 0), c.windows());
    assertArrayEquals(
        new long[] {32}, c.parameterShapes().get("model.layers.1.self_attn.k_proj.bias"));
  }

  @Test
  void qwen3In5xStyleReadsRopeParametersAndHeadDim() throws Exception {
    Qwen3Config c = assertInstanceOf(Qwen3Config.class, fixture("qwen3-seqcls"));
    assertEquals(1e6, c.ropeTheta());
    assertEquals(24, c.headDim());
    assertArrayEquals(
        new long[] {24}, c.parameterShapes().get("model.layers.0.self_attn.q_norm.weight"));
    assertArrayEquals(
        new long[] {96, 64}, c.parameterShapes().get("model.layers.0.self_attn.q_proj.weight"));
  }

  @Test
  void mistralWindowAppliesToEveryLayer() throws Exception {
    MistralConfig c = assertInstanceOf(MistralConfig.class, fixture("mistral-seqcls"));
    int w = c.attentionWindow(0);
    assertTrue(w > 0);
    assertEquals(w, c.attentionWindow(c.numLayers() - 1));
  }

  @Test
  void gemma2ReadsItsOwnKeys() throws Exception {
    Gemma2Config c = assertInstanceOf(Gemma2Config.class, fixture("gemma2-causal"));
    assertEquals(1.0, c.attnLogitSoftcapping());
    assertEquals(3.0, c.finalLogitSoftcapping());
    assertEquals(32, c.queryPreAttnScalar());
    assertEquals(List.of(5, 0), c.windows());
    assertEquals(0f, c.initialNormWeight());
    assertTrue(c.parameterShapes().containsKey("model.layers.1.pre_feedforward_layernorm.weight"));
    assertEquals("Gemma2ForCausalLM", c.causalLmArchitecture());
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "llama3-seqcls",
        "qwen2-seqcls",
        "qwen3-seqcls",
        "mistral-seqcls",
        "gemma2-seqcls",
        "llama3-padeos-seqcls"
      })
  void writtenConfigReadsBackEqual(String name) throws Exception {
    ModelConfig c = fixture(name);
    ObjectNode o = ModelConfigs.toHf(c, c.sequenceClassificationArchitecture(), 1);
    assertEquals(c, ModelConfigs.parse(JSON.readTree(o.toString()), "written"));
  }

  @Test
  void defaultsOfAbsentKeysAreTransformersDefaults() throws Exception {
    ObjectNode o =
        (ObjectNode)
            JSON.readTree(
                "{\"model_type\":\"gemma2\",\"vocab_size\":300,\"hidden_size\":64,\"intermediate_size\":144,"
                    + "\"num_hidden_layers\":3,\"num_attention_heads\":4,\"max_position_embeddings\":512}");
    Gemma2Config g = (Gemma2Config) ModelConfigs.parse(o, "g");
    assertEquals(50.0, g.attnLogitSoftcapping());
    assertEquals(30.0, g.finalLogitSoftcapping());
    assertEquals(256, g.headDim());
    assertEquals(List.of(4096, 0, 4096), g.windows());
    o.putNull("sliding_window");
    o.putNull("final_logit_softcapping");
    g = (Gemma2Config) ModelConfigs.parse(o, "g");
    assertEquals(List.of(0, 0, 0), g.windows());
    assertEquals(0.0, g.finalLogitSoftcapping());
  }

  @Test
  void refusalsNameTheKeyAndValue() throws Exception {
    ObjectNode o =
        (ObjectNode)
            JSON.readTree(
                "{\"model_type\":\"llama\",\"vocab_size\":300,\"hidden_size\":64,\"intermediate_size\":144,"
                    + "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"max_position_embeddings\":512,"
                    + "\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4.0}}");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> ModelConfigs.parse(o, "c.json"));
    assertTrue(
        e.getMessage().startsWith("c.json: rope_type 'yarn' is not supported"), e.getMessage());
    o.remove("rope_scaling");
    o.put("model_type", "phi3");
    e = assertThrows(IllegalArgumentException.class, () -> ModelConfigs.parse(o, "c.json"));
    assertEquals(
        "c.json: model_type 'phi3' is not supported (supported: gemma2, gpt2, llama, mistral,"
            + " qwen2, qwen3)",
        e.getMessage());
    o.put("model_type", "qwen2");
    o.putArray("layer_types").add("full_attention").add("chunked_attention");
    e = assertThrows(IllegalArgumentException.class, () -> ModelConfigs.parse(o, "c.json"));
    assertTrue(e.getMessage().contains("'chunked_attention' is not supported"), e.getMessage());
    o.remove("layer_types");
    o.putArray("architectures").add("LlamaForSequenceClassification");
    e = assertThrows(IllegalArgumentException.class, () -> ModelConfigs.parse(o, "c.json"));
    assertTrue(e.getMessage().contains("contradicts model_type 'qwen2'"), e.getMessage());
  }
}
