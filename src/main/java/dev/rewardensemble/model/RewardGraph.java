package dev.rewardensemble.model;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.RewardToken;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * A reward model's forward graph: placeholders {@code input_ids} and {@code attention_mask} (int32
 * {@code [B, T]}, both dynamic), the trunk, and K stacked heads reading the token chosen by a
 * {@link RewardToken} rule ({@link RewardHeads#readMask}).
 *
 * @param rewards {@code [B, K]}
 * @param hidden {@code [B, T, H]} final hidden states (after the final norm)
 */
public record RewardGraph(
    ModelConfig config,
    int heads,
    ParameterStore params,
    Placeholder<TInt32> inputIds,
    Placeholder<TInt32> attentionMask,
    Operand<TFloat32> hidden,
    Operand<TFloat32> rewards) {

  /**
   * Builds the graph of a model with {@code k} heads into the context's graph; K as validated by
   * {@code ensemble.EnsembleSpec}.
   */
  public static RewardGraph build(
      BuildContext cx,
      ModelConfig c,
      int k,
      ParameterStore params,
      Projector proj,
      RewardToken rewardToken) {
    return build(cx, c, k, params, proj, rewardToken, (dev.rewardensemble.io.FloatTensor) null);
  }

  /**
   * {@link #build(BuildContext, ModelConfig, int, ParameterStore, Projector, RewardToken)} with a
   * fixed prior added to the heads ({@link RewardHeads#withPrior}; null: none).
   */
  public static RewardGraph build(
      BuildContext cx,
      ModelConfig c,
      int k,
      ParameterStore params,
      Projector proj,
      RewardToken rewardToken,
      dev.rewardensemble.io.FloatTensor prior) {
    Ops tf = cx.tf();
    Placeholder<TInt32> ids =
        tf.withName("input_ids").placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
    Placeholder<TInt32> mask =
        tf.withName("attention_mask")
            .placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
    RewardGraph g = build(cx, c, k, params, proj, rewardToken, ids, mask, prior);
    Operand<TFloat32> named = tf.withName("rewards").identity(g.rewards());
    return new RewardGraph(c, k, params, ids, mask, g.hidden(), named);
  }

  /**
   * {@link #build(BuildContext, ModelConfig, int, ParameterStore, Projector, RewardToken)} in
   * float32.
   */
  public static RewardGraph build(
      Ops tf,
      ModelConfig c,
      int k,
      ParameterStore params,
      Projector proj,
      RewardToken rewardToken) {
    return build(BuildContext.float32(tf), c, k, params, proj, rewardToken);
  }

  /** Builds the graph over existing id and mask placeholders (the output op is not named). */
  public static RewardGraph build(
      BuildContext cx,
      ModelConfig c,
      int k,
      ParameterStore params,
      Projector proj,
      RewardToken rewardToken,
      Placeholder<TInt32> ids,
      Placeholder<TInt32> mask) {
    return build(cx, c, k, params, proj, rewardToken, ids, mask, null);
  }

  /** The graph over existing placeholders with a fixed prior on the heads (null: none). */
  public static RewardGraph build(
      BuildContext cx,
      ModelConfig c,
      int k,
      ParameterStore params,
      Projector proj,
      RewardToken rewardToken,
      Placeholder<TInt32> ids,
      Placeholder<TInt32> mask,
      dev.rewardensemble.io.FloatTensor prior) {
    Ops tf = cx.tf();
    Attention.Geometry g = Attention.geometry(tf, mask);
    Operand<TFloat32> rows = Transformers.trunk(cx, c, params, ids, g, proj); // [B*T, H]
    Operand<TFloat32> hidden =
        tf.reshape(
            rows,
            tf.stack(
                java.util.List.of(g.batch(), g.time(), tf.constant(c.hiddenSize())))); // [B, T, H]
    Operand<TInt32> read = RewardHeads.readMask(tf, ids, mask, rewardToken, c.padTokenId());
    Operand<TFloat32> last = RewardHeads.lastToken(tf, rows, read, g); // [B, H]
    Operand<TFloat32> w =
        RewardHeads.withPrior(tf, params.get(RewardHeads.KEY, k, c.hiddenSize()), prior);
    Operand<TFloat32> rewards = RewardHeads.rewards(cx, last, w); // [B, K]
    return new RewardGraph(c, k, params, ids, mask, hidden, rewards);
  }

  /** This graph as the common forward-graph view. */
  public ForwardGraph forward() {
    return new ForwardGraph(inputIds, attentionMask, rewards, params, heads);
  }
}
