/**
 * The sampling side of the policy: a causal language model that generates responses with a
 * key/value cache, the whole decode loop running inside the graph ({@link
 * dev.rewardensemble.rl.Sampler}), sampling settings ({@link dev.rewardensemble.rl.SamplingConfig})
 * and the per-token log-probabilities PPO needs.
 *
 * <p>Shapes follow the legend of {@link dev.rewardensemble.model}; in addition P is the (padded)
 * prompt length, S the number of new tokens of one decode step (P at prefill, 1 afterwards), Tk the
 * number of cached positions and M the maximum number of new tokens.
 */
package dev.rewardensemble.rl;
