package dev.rewardensemble.model;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.family.TType;

/**
 * Where a trunk forks into K ensemble members that share its lower blocks (LoRA ensembles): blocks
 * below {@code fromLayer} run once for the batch, then the hidden rows are tiled K times
 * (member-major: rows of member k form the k-th block of {@code [K*B*T, H]}) and every later block
 * runs on the K*B sequences at once. {@code fromLayer = 0} forks at the embeddings; {@code
 * fromLayer = numLayers} forks after the last block (only the heads differ).
 *
 * @param mask {@code [K*B, T]} the attention mask tiled K times
 * @param geometry geometry of the tiled batch
 */
public record Members(int k, int fromLayer, Operand<TInt32> mask, Attention.Geometry geometry) {

  /**
   * Builds the forked geometry for {@code mask [B, T]}; K as validated by {@code
   * ensemble.EnsembleSpec}.
   */
  public static Members of(Ops tf, int k, int fromLayer, Operand<TInt32> mask) {
    if (fromLayer < 0) {
      throw new IllegalArgumentException("fork layer must be >= 0, got " + fromLayer);
    }
    Operand<TInt32> tiled = tf.tile(mask, tf.constant(new int[] {k, 1})); // [K*B, T]
    return new Members(k, fromLayer, tiled, Attention.geometry(tf, tiled));
  }

  /**
   * {@code shared + perMember} for every member: {@code shared [B*T, H]} the batch's rows once,
   * {@code perMember [K*B*T, H]} member-major; the sum is {@code [K*B*T, H]}. Same as adding {@link
   * #expand}{@code (shared)}, without writing the K copies.
   */
  public Operand<TFloat32> addToEach(
      Ops tf, Operand<TFloat32> shared, Operand<TFloat32> perMember, long width) {
    Operand<TFloat32> sum =
        tf.math.add(tf.reshape(perMember, tf.constant(new long[] {k, -1, width})), shared);
    return tf.reshape(sum, tf.constant(new long[] {-1, width}));
  }

  /** {@code rows [B*T, H]} -> {@code [K*B*T, H]}, member-major. */
  public <T extends TType> Operand<T> expand(Ops tf, Operand<T> rows) {
    return tf.tile(rows, tf.constant(new int[] {k, 1})); // [K*B*T, H]
  }
}
