package dev.rewardensemble.model;

import dev.rewardensemble.config.Gemma2Config;
import dev.rewardensemble.config.Gpt2Config;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.config.MistralConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Qwen2Config;
import dev.rewardensemble.config.Qwen3Config;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/** Dispatch from a {@link ModelConfig} to its family's file: the registry of forwards. */
public final class Transformers {
  private Transformers() {}

  /** Each family's forward by its config record's class: one line per family. */
  private static final Map<Class<? extends ModelConfig>, Family<?>> FAMILIES =
      new LinkedHashMap<>();

  static {
    register(Gpt2Config.class, Gpt2::forward);
    register(LlamaConfig.class, Llama::forward);
    register(Qwen2Config.class, Qwen2::forward);
    register(Qwen3Config.class, Qwen3::forward);
    register(MistralConfig.class, Llama::forward); // Llama with a sliding window
    register(Gemma2Config.class, Gemma2::forward);
  }

  private static <C extends ModelConfig> void register(Class<C> config, Family<C> family) {
    FAMILIES.put(config, family);
  }

  /** The forward of {@code c}'s family. */
  @SuppressWarnings("unchecked")
  public static <C extends ModelConfig> Family<C> family(C c) {
    Family<?> f = FAMILIES.get(c.getClass());
    if (f == null) {
      throw new IllegalArgumentException("model_type '" + c.modelType() + "' has no forward");
    }
    return (Family<C>) f;
  }

  /** Checkpoint key to shape of every trunk parameter (no head). */
  public static Map<String, long[]> parameterShapes(ModelConfig c) {
    return c.parameterShapes();
  }

  /**
   * The family's forward ({@link Family#forward}): final hidden rows {@code [B*T, H]} ({@code
   * [K*B*T, H]} when forked into {@code members}), writing and reading {@code cache} when given.
   */
  public static Operand<TFloat32> forward(
      BuildContext cx,
      ModelConfig c,
      Weights w,
      Operand<TInt32> ids,
      Attention.Geometry g,
      Projector proj,
      Members members,
      KvCache cache) {
    if (members != null && cache != null) {
      throw new IllegalArgumentException(
          "a forward with a key/value cache cannot fork into members");
    }
    return family(c).forward(cx, c, w, ids, g, proj, members, cache);
  }

  /** Final hidden rows {@code [B*T, H]} of the trunk over the variables of {@code p}. */
  public static Operand<TFloat32> trunk(
      BuildContext cx,
      ModelConfig c,
      ParameterStore p,
      Operand<TInt32> ids,
      Attention.Geometry g,
      Projector proj) {
    return trunk(cx, c, p, ids, g, proj, null);
  }

  /**
   * {@link #trunk(BuildContext, ModelConfig, ParameterStore, Operand, Attention.Geometry,
   * Projector)} in float32.
   */
  public static Operand<TFloat32> trunk(
      Ops tf,
      ModelConfig c,
      ParameterStore p,
      Operand<TInt32> ids,
      Attention.Geometry g,
      Projector proj) {
    return trunk(BuildContext.float32(tf), c, p, ids, g, proj, null);
  }

  /**
   * Final hidden rows over the variables of {@code p}, {@code [K*B*T, H]} when forked into {@code
   * members} (nullable).
   */
  public static Operand<TFloat32> trunk(
      BuildContext cx,
      ModelConfig c,
      ParameterStore p,
      Operand<TInt32> ids,
      Attention.Geometry g,
      Projector proj,
      Members members) {
    return forward(cx, c, Weights.of(p, c.parameterShapes()), ids, g, proj, members, null);
  }

  /** PEFT module names a LoRA adapter may target in this family. */
  public static List<String> loraTargets(ModelConfig c) {
    return c.loraTargets();
  }
}
