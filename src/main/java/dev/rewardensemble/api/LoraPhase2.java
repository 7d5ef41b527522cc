package dev.rewardensemble.api;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.ensemble.LoraEnsembleGraph;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.ForwardGraph;
import dev.rewardensemble.model.ParameterStore;
import java.util.Set;
import java.util.function.Function;

/**
 * The forward graph of a LoRA ensemble's phase 2 (trunk frozen in {@code frozen} storage, K
 * adapters and heads trained in float32): the one builder that {@code rme train-rm --ensemble lora}
 * and {@code rme bench --workloads scale} both train through, so the benchmark measures the
 * training path users run.
 */
public final class LoraPhase2 {
  private LoraPhase2() {}

  /**
   * @param trainable the trained keys ({@link LoraEnsembleGraph#trainableKeys}): float32 variables;
   *     every other key is stored as {@code frozen}
   * @param seed keys the adapters' dropout masks
   *     <p>Activation recomputation ({@code --recompute}) is not a property of the graph: the
   *     trainer applies it through the build context's {@code BlockRunner} when its {@code
   *     ExecConfig} asks.
   */
  public static Function<BuildContext, ForwardGraph> forward(
      ModelConfig config,
      LoraConfig lora,
      int k,
      Set<String> trainable,
      Precision frozen,
      long seed,
      RewardToken rule) {
    return forward(config, lora, k, trainable, frozen, seed, rule, null, null);
  }

  /**
   * {@link #forward(ModelConfig, LoraConfig, int, Set, Precision, long, RewardToken)} with a fixed
   * prior on the heads ({@link dev.rewardensemble.model.RewardHeads#prior}; null: none) and a LoRA
   * rank per member (null: every member {@code lora.rank()}).
   */
  public static Function<BuildContext, ForwardGraph> forward(
      ModelConfig config,
      LoraConfig lora,
      int k,
      Set<String> trainable,
      Precision frozen,
      long seed,
      RewardToken rule,
      dev.rewardensemble.io.FloatTensor prior,
      int[] memberRanks) {
    return cx ->
        LoraEnsembleGraph.training(
                cx,
                config,
                lora,
                k,
                new ParameterStore(cx.tf())
                    .storeAs(key -> trainable.contains(key) ? Precision.FLOAT32 : frozen),
                seed,
                rule,
                prior,
                memberRanks)
            .forward();
  }
}
