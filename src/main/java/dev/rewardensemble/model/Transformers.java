package dev.rewardensemble.model;

import dev.rewardensemble.config.Gpt2Config;
import dev.rewardensemble.config.LlamaConfig;
import dev.rewardensemble.config.ModelConfig;
import java.util.List;
import java.util.Map;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/** Dispatch from a {@link ModelConfig} to its family's file. */
public final class Transformers {
  private Transformers() {}

  /** Checkpoint key to shape of every trunk parameter (no head). */
  public static Map<String, long[]> parameterShapes(ModelConfig c) {
    if (c instanceof Gpt2Config g) {
      return Gpt2.parameterShapes(g);
    }
    return Llama.parameterShapes((LlamaConfig) c);
  }

  /** Final hidden rows {@code [B*T, H]} of the trunk. */
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

  /** Final hidden rows, {@code [K*B*T, H]} when forked into {@code members} (nullable). */
  public static Operand<TFloat32> trunk(
      BuildContext cx,
      ModelConfig c,
      ParameterStore p,
      Operand<TInt32> ids,
      Attention.Geometry g,
      Projector proj,
      Members members) {
    if (c instanceof Gpt2Config g2) {
      return Gpt2.trunk(cx, g2, p, ids, g, proj, members);
    }
    return Llama.trunk(cx, (LlamaConfig) c, p, ids, g, proj, members);
  }

  /** PEFT module names a LoRA adapter may target in this family. */
  public static List<String> loraTargets(ModelConfig c) {
    return c instanceof Gpt2Config ? Gpt2.LORA_TARGETS : Llama.LORA_TARGETS;
  }
}
