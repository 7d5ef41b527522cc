package dev.rewardensemble.bench;

/**
 * One workload's measurement.
 *
 * @param name e.g. {@code bench-llama/score}
 * @param unit {@code sequences/s} or {@code tokens/s}
 * @param project the project's throughput
 * @param seconds median seconds of one run (one batch or one optimizer step)
 * @param flops analytic FLOPs of one run ({@link Flops})
 * @param mfu {@code flops / seconds / peak matmul FLOP/s}
 * @param peakRssMb peak RSS above a baseline process, MiB (ensemble kinds only; else null)
 * @param peer the peer's throughput (null when not run)
 * @param peerMfu the peer's MFU against the same peak (null when not run)
 * @param peerPeakRssMb the peer's peak RSS above its baseline (null when not run)
 * @param note anything the row needs to be read correctly
 */
public record WorkloadResult(
    String name,
    String unit,
    double project,
    double seconds,
    double flops,
    double mfu,
    Double peakRssMb,
    Double peer,
    Double peerMfu,
    Double peerPeakRssMb,
    String note) {

  public Double ratio() {
    return peer == null || peer == 0 ? null : project / peer;
  }

  public WorkloadResult withPeer(Double p, Double pMfu, Double pRss) {
    return new WorkloadResult(
        name, unit, project, seconds, flops, mfu, peakRssMb, p, pMfu, pRss, note);
  }

  public WorkloadResult withMfu(double m) {
    return new WorkloadResult(
        name, unit, project, seconds, flops, m, peakRssMb, peer, peerMfu, peerPeakRssMb, note);
  }

  public WorkloadResult withPeakRss(Double rss, String n) {
    return new WorkloadResult(
        name, unit, project, seconds, flops, mfu, rss, peer, peerMfu, peerPeakRssMb, n);
  }
}
