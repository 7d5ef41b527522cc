package dev.rewardensemble.model;

import org.tensorflow.Operand;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * A reward model's or ensemble's forward graph, whatever its kind: id and mask placeholders {@code
 * [B, T]}, the members' rewards {@code [B, K]} and the store holding every variable. Scoring,
 * training and export all work on this.
 */
public record ForwardGraph(
    Placeholder<TInt32> inputIds,
    Placeholder<TInt32> attentionMask,
    Operand<TFloat32> rewards,
    ParameterStore params,
    int heads) {}
