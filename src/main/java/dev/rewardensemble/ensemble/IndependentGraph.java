package dev.rewardensemble.ensemble;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.ForwardGraph;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.RewardGraph;
import java.util.ArrayList;
import java.util.List;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * K independent reward models in one graph and one {@code Session.run}: member k's variables are
 * {@code member<k>.<checkpoint key>}; the K rewards are concatenated to {@code [B, K]}.
 */
public final class IndependentGraph {
  private IndependentGraph() {}

  /** Key prefix of member {@code k}'s variables. */
  public static String prefix(int k) {
    return "member" + k + ".";
  }

  public static ForwardGraph build(
      BuildContext cx, ModelConfig c, int k, ParameterStore params, RewardToken rewardToken) {
    Ops tf = cx.tf();
    Placeholder<TInt32> ids =
        tf.withName("input_ids").placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
    Placeholder<TInt32> mask =
        tf.withName("attention_mask")
            .placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
    List<Operand<TFloat32>> members = new ArrayList<>();
    for (int m = 0; m < k; m++) {
      members.add(
          RewardGraph.build(
                  cx, c, 1, params.view(prefix(m)), Projector.NONE, rewardToken, ids, mask)
              .rewards()); // [B, 1]
    }
    Operand<TFloat32> rewards = tf.withName("rewards").concat(members, tf.constant(1)); // [B, K]
    return new ForwardGraph(ids, mask, rewards, params, k);
  }
}
