package dev.rewardensemble.train;

/** Receives progress of a training run (the CLI draws a progress bar from it). */
public interface TrainListener {
  /** After optimizer step {@code step} (1-based) of {@code total}. */
  default void onStep(
      int step,
      int total,
      double loss,
      double accuracy,
      double lr,
      double gradNorm,
      double seconds) {}

  /** After an evaluation at {@code step}. */
  default void onEval(int step, double loss, double accuracy, double margin) {}

  /** A message worth showing (resume point, checkpoint written). */
  default void onMessage(String message) {}

  /**
   * The training graph of a run, built and its weights loaded, before the first step: for
   * inspection (e.g. the dtypes of its variables); it must not be changed.
   */
  default void onTrainingGraph(org.tensorflow.Graph graph) {}

  TrainListener NONE = new TrainListener() {};
}
