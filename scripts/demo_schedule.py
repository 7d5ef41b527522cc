#!/usr/bin/env python3
"""Replays a demo run's own unit times through the two schedules of `rme demo --jobs 2`.

python3 scripts/demo_schedule.py RUN_DIR [JOBS]

Units: each world (the sum of its phases in results.json's phase_seconds, keys "world N ...") and each PPO run
("PPO run j with ..."; run j uses world j mod worlds). Both schedules queue every world first on one FIFO queue of
JOBS workers; "barrier" starts PPO runs only when every world is done (before session 17), "pipeline" queues a world's
PPO runs when it completes (DemoParallelism.pipeline). Prints the measured total and each schedule's makespan."""
import collections, json, re, sys

run = sys.argv[1]
jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
d = json.load(open(f"{run}/results.json"))
worlds = collections.defaultdict(float)
ppo = []
for k, v in d["phase_seconds"].items():
    if k.startswith("world "):
        worlds[int(k.split(" ")[1])] += v
    elif k.startswith("PPO run "):
        ppo.append((int(re.match(r"PPO run (\d+)", k).group(1)), v))
order = sorted(worlds)


def makespan(pipeline):
    clock = [0.0] * jobs
    queue = [(w, worlds[w]) for w in order]
    ready = []  # (time the run may start, seconds)
    done = {}
    while queue or ready:
        i = min(range(jobs), key=lambda k: clock[k])
        t = clock[i]
        if queue:
            w, secs = queue.pop(0)
            clock[i] = t + secs
            done[w] = clock[i]
            for j, s in ppo:
                if order[j % len(order)] == w:
                    ready.append((done[w], s))
            continue
        gate = (lambda r: r[0]) if pipeline else (lambda r: max(done.values()))
        ready.sort(key=gate)
        start, secs = gate(ready[0]), ready.pop(0)[1]
        clock[i] = max(t, start) + secs
    return max(clock)


print(f"{run}: measured {d['total_seconds']:.0f} s; barrier {makespan(False):.0f} s; pipeline {makespan(True):.0f} s")
