/**
 * Throughput, FLOP-utilisation and memory benchmarks of the project's graphs ({@code rme bench}),
 * with an optional side-by-side run of the same workloads in PyTorch + transformers ({@code
 * scripts/bench_peer.py}) on the same weights and token ids.
 */
package dev.rewardensemble.bench;
