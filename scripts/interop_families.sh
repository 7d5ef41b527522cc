#!/usr/bin/env bash
# For each model family's reward-model fixture (src/test/resources/hf-families/*-seqcls), as a user
# would, through the rme command line: export it with --format hf; train a K = 2 LoRA ensemble for
# a few steps on synthetic preferences; export its adapters with --format peft (with their base)
# and as a SavedModel; score rows with `rme score`. Then scripts/interop_families.py checks in
# Python that transformers, peft and TensorFlow give the same rewards.
#
# Usage: scripts/interop_families.sh WORK_DIR PYTHON [FAMILY...]   (called by python-interop.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$1
PY=$2
shift 2
FAMILIES=("$@")
if [[ ${#FAMILIES[@]} -eq 0 ]]; then
  FAMILIES=(llama3 qwen2 qwen3 mistral gemma2)
fi
RME="$ROOT/rme"
mkdir -p "$WORK"
"$RME" synthetic-prefs --out "$WORK/prefs.jsonl" --pairs 32 --vocab 300 --seed 5 2>/dev/null
"$PY" - "$WORK/rows.jsonl" <<'PYEOF'
import json, random, sys
random.seed(11)
with open(sys.argv[1], "w") as f:
    for i in range(6):
        f.write(json.dumps({"id": i, "input_ids": [random.randrange(3, 300) for _ in range(random.randrange(3, 13))]}) + "\n")
PYEOF
for fam in "${FAMILIES[@]}"; do
  fix="$ROOT/src/test/resources/hf-families/$fam-seqcls"
  out="$WORK/$fam"
  mkdir -p "$out"
  echo "[interop] $fam: hf export, LoRA K=2 training, peft and SavedModel exports"
  "$RME" export --model "$fix" --format hf --out "$out/hf" 2>>"$out/log"
  "$RME" score --model "$fix" --data "$WORK/rows.jsonl" --out "$out/fixture-scores.jsonl" 2>>"$out/log"
  "$RME" train-rm --model "$fix" --data "$WORK/prefs.jsonl" --ensemble lora --k 2 --steps 2 \
    --batch-size 4 --grad-accum 1 --eval-fraction 0 --lr 1e-3 --lora-lr 1e-2 --out "$out/run" >>"$out/log" 2>&1
  "$RME" export --model "$out/run" --format peft --out "$out/peft" 2>>"$out/log"
  "$RME" export --model "$out/run" --name "$fam" --root "$out/savedmodels" 2>>"$out/log"
  "$RME" score --model "$out/run" --data "$WORK/rows.jsonl" --out "$out/lora-scores.jsonl" 2>>"$out/log"
done
