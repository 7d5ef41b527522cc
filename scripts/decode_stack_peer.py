"""torch's side of dev.rewardensemble.bench.DecodeStackProbe (issue #16).

The four weight products of each of LAYERS GPT-2 blocks at ROWS rows, chained as a block chains them
(F.linear over [out, in] weights, as transformers' GPT-2 and Llama decode steps run them under
torch.no_grad), median of REPS steps, as weight bytes read per second; and the memory bandwidth of
this machine as torch reads it: the median rate of summing a 512 MiB float32 tensor on the same
threads. Usage (the bench venv: scripts/venv.sh):
  python scripts/decode_stack_peer.py [--rows 8] [--layers 12] [--hidden 768] [--threads 2] [--reps 30]
"""

import argparse
import statistics
import time

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=30)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    h = a.hidden
    shapes = [(3 * h, h), (h, h), (4 * h, h), (h, 4 * h)]
    ws = [torch.randn(o, i) * 0.02 for _ in range(a.layers) for (o, i) in shapes]
    x = torch.randn(a.rows, h) * 0.1
    lin = torch.nn.functional.linear

    def step():
        t = x
        for l in range(a.layers):
            w_qkv, w_o, w_fc, w_proj = ws[4 * l : 4 * l + 4]
            o = t + lin(lin(t, w_qkv)[:, :h], w_o)
            t = o + lin(torch.tanh(lin(o, w_fc)), w_proj)
        return t.sum()

    weight_bytes = sum(w.numel() for w in ws) * 4
    with torch.no_grad():
        for _ in range(3):
            step()
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        big = torch.ones(128 * 1024 * 1024)
        sums = []
        for _ in range(7):
            t0 = time.perf_counter()
            big.sum()
            sums.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(
        f"torch decode stack: {a.rows} rows, {a.layers} blocks of hidden {h}, "
        f"{weight_bytes / 1e6:.1f} MB; {t * 1e3:.2f} ms, {weight_bytes / t / 1e9:.1f} GB/s of weights "
        f"({a.threads} threads)"
    )
    print(
        f"memory read bandwidth (torch sum of 512 MiB, {a.threads} threads): "
        f"{big.numel() * 4 / statistics.median(sums) / 1e9:.1f} GB/s"
    )


if __name__ == "__main__":
    main()
