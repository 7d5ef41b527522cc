/**
 * Reward ensembles: {@link dev.rewardensemble.ensemble.LoraEnsembleGraph} (shared frozen trunk, K
 * LoRA adapters and K heads, rewards {@code [B, K]} in one run) and the uncertainty-penalised
 * aggregation rules {@link dev.rewardensemble.ensemble.Aggregation} (mean, LCB, min, UWO;
 * population standard deviation) with their parameters in {@link
 * dev.rewardensemble.ensemble.AggregationConfig}.
 */
package dev.rewardensemble.ensemble;
