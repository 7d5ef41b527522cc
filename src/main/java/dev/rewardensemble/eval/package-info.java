/**
 * The gold-judge world used to reproduce RLHF offline (Gao et al. 2022 methodology): a programmatic
 * {@link dev.rewardensemble.eval.GoldJudge} stands for human raters, proxy reward models learn it
 * from noisy labels, a policy is optimised against the proxies, and the gold judge measures the
 * true improvement.
 *
 * <ul>
 *   <li>{@link dev.rewardensemble.eval.World}: the seeded facade; {@link
 *       dev.rewardensemble.eval.Task} and {@link dev.rewardensemble.eval.TaskSets} (five judgeable
 *       task kinds, training and held-out prompts); {@link dev.rewardensemble.eval.CharVocabulary}
 *       (100 character ids and the matching {@code tokenizer.json}).
 *   <li>{@link dev.rewardensemble.eval.Demonstrations}: imperfect SFT data in which politeness is a
 *       shortcut for correctness and some answers repeat.
 *   <li>{@link dev.rewardensemble.eval.SftPolicy}: trains and saves the 2-layer SFT policy.
 *   <li>{@link dev.rewardensemble.eval.PreferenceBuilder}: gold-labelled, label-flipped preference
 *       pairs from policy samples, in the AlpacaFarm format.
 * </ul>
 *
 * <p>The judge is used for labels and evaluation only, never as a training signal.
 */
package dev.rewardensemble.eval;
