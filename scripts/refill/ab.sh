#!/bin/bash
# Best-of-n sampling with and without refilled batches, two builds alternating: OLD (before refill, e.g.
# adfc7f9) and NEW are checkouts of the project (each with ./rme). Run in WORK after
# scripts/nucleus/make_models.py 8 and scripts/nucleus/make_eos_model.py 5 (the bench venv) made WORK/peaked-eos
# (a bf16 1024-wide, 8-block Llama with Llama 3's vocabulary whose sampled responses end at EOS at different
# steps) and WORK/prompts.jsonl:
#   cd WORK && OLD=/path/to/old NEW=/path/to/new bash scripts/refill/ab.sh | tee ab.log
# Requests: N_PROMPTS prompts (default 2) x N samples (default 64), consecutive (as rme best-of-n and the Java
# API's BestOfNRunner ask for them), rme generate --top-p 1.0 --max-new-tokens 128 --batch-size 16, stopping
# at EOS. Prints each run's wall time, then the responses' lengths and whether both builds drew the same tokens.
set -euo pipefail
: "${OLD:?}" "${NEW:?}"
N="${N:-64}"
N_PROMPTS="${N_PROMPTS:-2}"
REPS="${REPS:-3}"
python3 - "$N_PROMPTS" "$N" <<'PY'
import sys
lines = open("prompts.jsonl").readlines()[: int(sys.argv[1])]
with open("prompts-bon.jsonl", "w") as f:
    for line in lines:
        f.write(line * int(sys.argv[2]))
PY
for rep in $(seq 1 "$REPS"); do
  for build in "$OLD" "$NEW"; do
    t0=$(date +%s.%N)
    "$build/rme" generate --model peaked-eos --prompts prompts-bon.jsonl --max-new-tokens 128 --batch-size 16 \
      --top-p 1.0 --seed 1 --compute bfloat16 --weights bfloat16 --out "out-$(basename "$build")-bon.jsonl" \
      >/dev/null 2>&1
    t1=$(date +%s.%N)
    echo "rep $rep $(basename "$build") $(echo "$t1 - $t0" | bc) s"
  done
done
python3 - "$(basename "$OLD")" "$(basename "$NEW")" <<'PY'
import json, statistics, sys
a, b = ([json.loads(l) for l in open(f"out-{x}-bon.jsonl")] for x in sys.argv[1:3])
lens = [len(r["response_ids"]) for r in b]
print("responses", len(lens), "tokens", sum(lens), "mean length", round(statistics.mean(lens), 1),
      "median", statistics.median(lens), "ended before 128:", sum(1 for n in lens if n < 128))
# what a batch of 16 waits for without refill: its longest response
batches = [lens[i:i + 16] for i in range(0, len(lens), 16)]
print("steps without refill (sum of each batch's longest)", sum(max(x) for x in batches),
      "; tokens / 16 rows", round(sum(lens) / 16, 1))
print("same tokens", [r["response_ids"] for r in a] == [r["response_ids"] for r in b])
print("max |logprob difference|", max(abs(p - q) for r, s in zip(a, b) for p, q in zip(r["token_logprobs"], s["token_logprobs"])))
PY
