/**
 * {@code rme serve}: the reward model as an HTTP server ({@link
 * dev.rewardensemble.server.RewardServer}) speaking TF Serving's REST API, OpenRLHF's remote reward
 * protocol and {@code rme score}'s rows, with dynamic batching ({@link
 * dev.rewardensemble.server.Batcher}) and Prometheus metrics.
 */
package dev.rewardensemble.server;
