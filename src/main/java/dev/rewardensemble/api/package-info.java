/**
 * The public Java API of reward-ensemble: load a reward model (a Hugging Face checkpoint, a run
 * directory or an exported SavedModel), score token sequences, train, export. The {@code rme}
 * command line is a thin client of this package.
 *
 * <pre>{@code
 * try (RewardModel rm = RewardModel.load(Path.of("my-checkpoint"))) {
 *   float[][] rewards = rm.score(List.of(new int[] {5, 17, 42}), 16); // [N][K]
 * }
 * }</pre>
 */
package dev.rewardensemble.api;
