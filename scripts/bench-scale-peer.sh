#!/usr/bin/env bash
# The peer of `rme bench --workloads scale`: runs one workload of scripts/bench_scale_peer.py
# (PyTorch + transformers + peft, CPU) in a fresh process, in the virtual environment of
# scripts/bench-peer.sh (default .venv-bench/, RME_BENCH_VENV overrides).
#
# RME_BENCH_PYTHON=/path/to/python uses that interpreter as it is (no virtual environment made).
#
# Usage: scripts/bench-scale-peer.sh SPEC.json WORKLOAD DTYPE   (SPEC is written by `rme bench`)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [[ -n "${RME_BENCH_PYTHON:-}" ]]; then
  exec "$RME_BENCH_PYTHON" "$ROOT/scripts/bench_scale_peer.py" "$@"
fi
VENV=${RME_BENCH_VENV:-$ROOT/.venv-bench}
# shellcheck source=venv.sh
source "$ROOT/scripts/venv.sh"
rme_venv "$VENV" "${RME_BENCH_TORCH:-torch==2.13.0+cpu}" transformers safetensors peft
exec "$VENV/bin/python" "$ROOT/scripts/bench_scale_peer.py" "$@"
