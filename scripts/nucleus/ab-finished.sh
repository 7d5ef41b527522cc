#!/bin/bash
# Rows that finish early, two builds alternating: OLD and NEW are checkouts of the project (each with ./rme).
# Run in WORK after make_models.py and make_eos_model.py 5 made WORK/peaked-eos:
#   cd WORK && OLD=/path/to/old NEW=/path/to/new bash scripts/nucleus/ab-finished.sh | tee ab-finished.log
# rme generate of 32 prompts, top-p 0.9, stopping at EOS (17 of 32 rows end before 128 tokens), 8 or 128 new
# tokens; the time of the 120 further steps is t128 - t8. Then the responses' lengths and whether both builds
# drew the same tokens.
set -euo pipefail
: "${OLD:?}" "${NEW:?}"
for rep in 1 2 3; do
  for build in "$OLD" "$NEW"; do
    for n in 8 128; do
      t0=$(date +%s.%N)
      "$build/rme" generate --model peaked-eos --prompts prompts.jsonl --max-new-tokens "$n" --batch-size 32 \
        --top-p 0.9 --seed 1 --compute bfloat16 --weights bfloat16 --out "out-$(basename "$build")-eos-$n.jsonl" \
        >/dev/null 2>&1
      t1=$(date +%s.%N)
      echo "rep $rep $(basename "$build") new=$n $(echo "$t1 - $t0" | bc) s"
    done
  done
done
python3 - "$(basename "$OLD")" "$(basename "$NEW")" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(f"out-{x}-eos-128.jsonl")] for x in sys.argv[1:3])
print("lengths", sorted(len(r["response_ids"]) for r in b))
print("same tokens", [r["response_ids"] for r in a] == [r["response_ids"] for r in b])
print("max |logprob difference|", max(abs(p - q) for r, s in zip(a, b) for p, q in zip(r["token_logprobs"], s["token_logprobs"])))
PY
