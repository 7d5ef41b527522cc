#!/bin/bash
# Top-p generation, two builds alternating: OLD and NEW are checkouts of the project (each with ./rme).
# Run in WORK after `python make_models.py 8` (the bench venv) made WORK/flat and WORK/peaked:
#   cd WORK && OLD=/path/to/old NEW=/path/to/new bash scripts/nucleus/ab.sh | tee ab.log
# Prints the wall time of rme generate (32 prompts, 8 or 72 new tokens, top-p 0.9, top-k off, bf16) per
# build and model; the per-step time is (t72 - t8) / 64. Then peak RSS at 72 new tokens (/usr/bin/time).
# TOP_P=1.0: pure sampling (rme generate's default) instead of 0.9.
set -euo pipefail
: "${OLD:?}" "${NEW:?}"
TOP_P="${TOP_P:-0.9}"
run() { # build model n
  "$1/rme" generate --model "$2" --prompts prompts.jsonl --max-new-tokens "$3" --batch-size 32 --top-p "$TOP_P" \
    --seed 1 --compute bfloat16 --weights bfloat16 --ignore-eos --out "out-$(basename "$1")-$2-$3.jsonl"
}
for rep in 1 2; do
  for model in peaked flat; do
    for build in "$OLD" "$NEW"; do
      for n in 8 72; do
        t0=$(date +%s.%N); run "$build" "$model" "$n" >/dev/null 2>&1; t1=$(date +%s.%N)
        echo "rep $rep $(basename "$build") $model new=$n $(echo "$t1 - $t0" | bc) s"
      done
    done
  done
done
for rep in 1 2; do
  for model in flat peaked; do
    for build in "$OLD" "$NEW"; do
      /usr/bin/time -f "$(basename "$build") $model maxrss_kb %M wall %e" \
        "$build/rme" generate --model "$model" --prompts prompts.jsonl --max-new-tokens 72 --batch-size 32 \
        --top-p "$TOP_P" --seed 1 --compute bfloat16 --weights bfloat16 --ignore-eos --out /dev/null 2>&1 | grep maxrss
    done
  done
done
