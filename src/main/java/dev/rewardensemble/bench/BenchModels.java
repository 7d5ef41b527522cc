package dev.rewardensemble.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.config.WeightStorage;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.EnsembleSpec;
import dev.rewardensemble.ensemble.IndependentGraph;
import dev.rewardensemble.ensemble.LoraInit;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.TensorBytes;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.model.Init;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.model.Transformers;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;

/** The benchmark's models: presets, seeded random weights, and one ensemble of each kind. */
public final class BenchModels {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The ensemble kinds compared by workload (e): id, and LoRA's {@code --lora-layers} (0 = all
   * blocks).
   */
  public static final List<String> KINDS =
      List.of("single", "linear", "independent", "lora", "lora-top1");

  private BenchModels() {}

  /** The preset file's JSON. */
  public static ObjectNode presetJson(Path preset) throws IOException {
    if (!Files.isRegularFile(preset)) {
      throw new IllegalArgumentException("preset not found: " + preset);
    }
    return (ObjectNode) JSON.readTree(preset.toFile());
  }

  public static ModelConfig config(ObjectNode json, String source) {
    return ModelConfigs.parse(json, source);
  }

  /**
   * A copy of a preset with a wider and deeper trunk (for memory comparisons, where the bench model
   * is too small to stand out from the runtime): hidden {@code hidden}, {@code layers} blocks,
   * heads of 64 dimensions, Llama's MLP at {@code 2.6875 * hidden} (688/256 as in the preset).
   */
  public static ObjectNode scaled(ObjectNode preset, int hidden, int layers) {
    ObjectNode n = preset.deepCopy();
    int heads = Math.max(1, hidden / 64);
    if ("gpt2".equals(n.path("model_type").asText())) {
      n.put("n_embd", hidden);
      n.put("n_layer", layers);
      n.put("n_head", heads);
    } else {
      n.put("hidden_size", hidden);
      n.put("intermediate_size", (int) Math.round(hidden * 688.0 / 256.0));
      n.put("num_hidden_layers", layers);
      n.put("num_attention_heads", heads);
      n.put("num_key_value_heads", heads);
      n.put("head_dim", 64);
    }
    return n;
  }

  /**
   * LoRA settings of the benchmark: r 8, alpha 16, dropout 0.05, every projection of the family.
   */
  public static LoraConfig lora(ModelConfig c, int loraLayers) {
    return new LoraConfig(8, 16, 0.05, Transformers.loraTargets(c), loraLayers).checkFor(c);
  }

  /** Trunk plus {@code k} heads, seeded, float32. */
  public static Map<String, FloatTensor> weights(ModelConfig c, int k, long seed) {
    return weights(c, k, seed, Precision.FLOAT32);
  }

  /**
   * Trunk plus {@code k} heads, seeded: the trunk generated tensor by tensor when it is read or
   * streamed ({@link SeededWeights}, nothing model-sized in the heap), stored as {@code stored}
   * (bfloat16: as a bf16 checkpoint); the heads float32 in memory.
   */
  public static LazyWeights weights(ModelConfig c, int k, long seed, Precision stored) {
    LazyWeights w = SeededWeights.trunk(c, seed, stored);
    FloatTensor heads = Init.heads(k, c.hiddenSize(), seed + 1);
    if (stored == Precision.BFLOAT16) {
      // as in a bf16 checkpoint (the export writes them as BF16): the same values on both sides
      float[] d = heads.data();
      for (int i = 0; i < d.length; i++) {
        d[i] = TensorBytes.fromBfloat16(TensorBytes.toBfloat16(d[i]));
      }
    }
    w.put(RewardHeads.KEY, heads);
    return w;
  }

  /**
   * How the benchmark stores its random weights under {@code exec}: bfloat16 (a bf16 checkpoint)
   * for {@code --weights bfloat16}, else float32.
   */
  public static Precision stored(ExecConfig exec) {
    return exec.weights() == WeightStorage.BFLOAT16 ? Precision.BFLOAT16 : Precision.FLOAT32;
  }

  /** Prompt tokens of workload (d), generation. */
  public static final int PROMPT_TOKENS = 8;

  /** {@link #causalWeights(ModelConfig, long, Precision)} in float32. */
  public static Map<String, FloatTensor> causalWeights(ModelConfig c, long seed) {
    return causalWeights(c, seed, Precision.FLOAT32);
  }

  /**
   * A causal language model for workload (d): the bench trunk of {@link #weights} (seeded) and a
   * language-model head ({@code lm_head.weight}, or the tied embedding when the preset ties them).
   */
  public static LazyWeights causalWeights(ModelConfig c, long seed, Precision stored) {
    LazyWeights w = SeededWeights.trunk(c, seed, stored);
    if (dev.rewardensemble.model.LmHead.key(c).equals(dev.rewardensemble.model.LmHead.KEY)) {
      w.putDeferred(
          dev.rewardensemble.model.LmHead.KEY,
          SeededWeights.normal(
              new long[] {c.vocabSize(), c.hiddenSize()},
              Init.STD,
              seed + 17,
              dev.rewardensemble.model.LmHead.KEY,
              stored));
    }
    return w;
  }

  /** Fresh adapters (PEFT's init, B = 0) and {@code k} heads of a LoRA ensemble. */
  public static Map<String, FloatTensor> loraInit(
      ModelConfig c, LoraConfig lora, int k, long seed) {
    return LoraInit.values(c, lora, k, seed, Init.STD);
  }

  /**
   * One ensemble of {@code kind} ({@link #KINDS}) with {@code k} members (1 for single), random
   * weights: independent members have their own seeds; LoRA adapters have PEFT's A and a small
   * random B (so that members differ; the cost is the same as B = 0).
   */
  public static EnsembleModel ensemble(String kind, ModelConfig c, int k, long seed) {
    return ensemble(kind, c, k, seed, Precision.FLOAT32);
  }

  /** {@link #ensemble(String, ModelConfig, int, long)} with the trunks stored as {@code stored}. */
  public static EnsembleModel ensemble(
      String kind, ModelConfig c, int k, long seed, Precision stored) {
    return switch (kind) {
      case "single" -> model(EnsembleKind.SINGLE, c, 1, weights(c, 1, seed, stored), null);
      case "linear" -> model(EnsembleKind.LINEAR, c, k, weights(c, k, seed, stored), null);
      case "independent" -> {
        LazyWeights w = new LazyWeights();
        for (int m = 0; m < k; m++) {
          String p = IndependentGraph.prefix(m);
          LazyWeights member = weights(c, 1, seed + 101L * m, stored);
          member.keySet().forEach(key -> w.putFrom(p + key, member, key));
        }
        yield model(EnsembleKind.INDEPENDENT, c, k, w, null);
      }
      case "lora", "lora-top1" -> {
        LoraConfig lora = lora(c, kind.equals("lora") ? 0 : 1);
        LazyWeights w = SeededWeights.trunk(c, seed, stored);
        Map<String, FloatTensor> init = loraInit(c, lora, k, seed);
        SplittableRandom rnd = new SplittableRandom(seed + 7);
        init.replaceAll(
            (key, v) -> key.endsWith(".lora_B") ? Init.normal(v.shape(), 0.01, rnd.split()) : v);
        w.putAll(init);
        yield model(EnsembleKind.LORA, c, k, w, lora);
      }
      default ->
          throw new IllegalArgumentException(
              "unknown ensemble kind '" + kind + "' (expected " + KINDS + ")");
    };
  }

  private static EnsembleModel model(
      EnsembleKind kind, ModelConfig c, int k, Map<String, FloatTensor> w, LoraConfig lora) {
    return new EnsembleModel(
        EnsembleSpec.of(kind, k), c, RewardToken.LAST_NON_PAD, w, lora, Optional.empty(), null);
  }

  /**
   * Deterministic token ids in {@code [3, vocab)} (no pad, bos or eos), row-major {@code [rows,
   * t]}.
   */
  public static int[] tokenIds(ModelConfig c, int rows, int t, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    int[] ids = new int[rows * t];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = 3 + rnd.nextInt(c.vocabSize() - 3);
    }
    return ids;
  }

  /** Whether a config is a GPT-2 (for printing). */
  public static String family(ModelConfig c) {
    return c.modelType();
  }

  static JsonNode tree(Object o) {
    return JSON.valueToTree(o);
  }
}
