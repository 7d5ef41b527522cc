#!/usr/bin/env bash
# The peer of `rme bench --peer`: runs scripts/bench_peer.py (PyTorch + transformers + peft, CPU)
# in a virtual environment made by scripts/venv.sh (default .venv-bench/, RME_BENCH_VENV overrides).
#
# Usage: scripts/bench-peer.sh SPEC.json OUT.json   (SPEC is written by `rme bench --peer`)
#        scripts/bench-peer.sh --install-only
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${RME_BENCH_VENV:-$ROOT/.venv-bench}
# shellcheck source=venv.sh
source "$ROOT/scripts/venv.sh"
rme_venv "$VENV" "${RME_BENCH_TORCH:-torch==2.13.0+cpu}" transformers safetensors peft
if [[ "${1:-}" == "--install-only" ]]; then
  exit 0
fi
export TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$VENV/bin/python" "$ROOT/scripts/bench_peer.py" "$@"
