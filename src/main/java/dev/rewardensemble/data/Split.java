package dev.rewardensemble.data;

import java.util.List;

/**
 * A train/eval partition of a list, made by {@link Splits#split}.
 *
 * @param train the training items, in their original relative order
 * @param eval the held-out items, in their original relative order (empty when none)
 */
public record Split<T>(List<T> train, List<T> eval) {
  public Split {
    train = List.copyOf(train);
    eval = List.copyOf(eval);
  }
}
