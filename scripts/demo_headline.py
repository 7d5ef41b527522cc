#!/usr/bin/env python3
"""Headline table of a demo run directory (the README's format): python3 scripts/demo_headline.py RUN_DIR"""
import csv, sys
d = sys.argv[1]
bon = list(csv.DictReader(open(f"{d}/bon_summary.csv")))
paired = list(csv.DictReader(open(f"{d}/paired.csv")))
ppo = list(csv.DictReader(open(f"{d}/ppo_summary.csv")))
ppop = list(csv.DictReader(open(f"{d}/ppo_paired.csv")))
def f(m, s, sign=False):
    m, s = float(m), float(s)
    return (f"{m:+.3f}" if sign else f"{m:.3f}") + f" ± {s:.3f}"
methods = []
for r in bon:
    if r["method"] not in methods: methods.append(r["method"])
nmax = max(int(r["n"]) for r in bon)
ppo_iters = sorted({int(r["iteration"]) for r in ppo})
first, last = ppo_iters[1], ppo_iters[-1]  # the first evaluation after iteration 0, and the final one
print(f"| method | n = 8 | n = {nmax} | n = {nmax} vs single (paired) | PPO at iteration {first} | PPO at {last} | PPO at {last} vs single (paired) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for m in methods:
    for agg in ["mean", "lcb(0.5)"]:
        rows = [r for r in bon if r["method"] == m and r["aggregation"] == agg]
        if not rows: continue
        if agg != "mean" and not any(r["method"] == m and r["aggregation"] == agg for r in ppo): continue
        b = {int(r["n"]): r for r in rows}
        label = m if agg == "mean" else f"{m}, LCB 0.5"
        n8 = f(b[8]["win_mean"], b[8]["win_se"]) if agg == "mean" and 8 in b else ""
        nl = f(b[nmax]["win_mean"], b[nmax]["win_se"])
        p = [r for r in paired if r["method"] == m and r["aggregation"] == agg and r["versus"] == "single" and int(r["n"]) == nmax]
        vs = f(p[0]["win_diff_mean"], p[0]["win_diff_se"], True) if p else "—"
        pr = {int(r["iteration"]): r for r in ppo if r["method"] == m and r["aggregation"] == agg}
        if pr:
            p10 = f(pr[first]["win_mean"], pr[first]["win_se"]); pl = f(pr[last]["win_mean"], pr[last]["win_se"])
            pp = [r for r in ppop if r["method"] == m and r["aggregation"] == agg and r["at"] == "final"]
            pvs = f(pp[0]["win_diff_mean"], pp[0]["win_diff_se"], True) if pp else "—"
            print(f"| {label} | {n8} | {nl} | {vs} | {p10} | {pl} | {pvs} |")
        else:
            print(f"| {label} | {n8} | {nl} | {vs} | not run | | |")
