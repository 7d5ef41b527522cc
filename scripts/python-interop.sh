#!/usr/bin/env bash
# Checks that the project's exports load in the Python stack:
#   - SavedModels: tf.saved_model.load(...).signatures["serving_default"] and saved_model_cli;
#   - --format hf checkpoints: transformers' AutoModelForSequenceClassification.from_pretrained;
#   - every model family (Llama 3, Qwen2, Qwen3, Mistral, Gemma 2) through the command line: hf export,
#     a trained LoRA ensemble's peft adapters (peft) and SavedModel (scripts/interop_families.*).
# Creates (or reuses) a virtual environment in .venv-interop/, builds the project, exports the
# gpt2 and llama fixtures from Java, and compares Python's rewards with Java's.
#
# Usage: scripts/python-interop.sh [--install-only]
# Environment: RME_INTEROP_VENV (venv dir), RME_INTEROP_PIP_TIMEOUT (s, default 1500),
#              RME_INTEROP_CHECK_TIMEOUT (s, default 900), RME_INTEROP_KEEP=1 keeps the temp dir.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${RME_INTEROP_VENV:-$ROOT/.venv-interop}
PIP_TIMEOUT=${RME_INTEROP_PIP_TIMEOUT:-1500}
CHECK_TIMEOUT=${RME_INTEROP_CHECK_TIMEOUT:-900}
START=$(date +%s)

# The CPU build of torch (pinned so that pip does not choose a CUDA wheel); see scripts/venv.sh.
TORCH_SPEC=${RME_INTEROP_TORCH:-torch==2.13.0+cpu}
PACKAGES=("$TORCH_SPEC" tensorflow-cpu transformers safetensors peft)

log() { echo "[interop] $*"; }

# shellcheck source=venv.sh
source "$ROOT/scripts/venv.sh"
RME_PIP_TIMEOUT=$PIP_TIMEOUT rme_venv "$VENV" "${PACKAGES[@]}" || { log "FAIL pip install (see above)"; exit 1; }
"$VENV/bin/python" -c "import torch, tensorflow as tf, transformers, peft, safetensors; print('[interop] torch', torch.__version__, '| tensorflow', tf.__version__, '| transformers', transformers.__version__, '| peft', peft.__version__)"
if [[ "${1:-}" == "--install-only" ]]; then
  exit 0
fi

# Build (main + test classes) and the runtime classpath (target/classpath.txt).
log "building (mvn -q -B -DskipTests test-compile)"
MVN_OFFLINE=()
if [[ -d "$HOME/.m2/repository/org/tensorflow/tensorflow-core-api" ]]; then
  MVN_OFFLINE=(-o)
fi
(cd "$ROOT" && timeout "$CHECK_TIMEOUT" mvn "${MVN_OFFLINE[@]}" -q -B -DskipTests test-compile)
CP="$ROOT/target/test-classes:$ROOT/target/classes:$(cat "$ROOT/target/classpath.txt")"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rme-interop.XXXXXX")
if [[ "${RME_INTEROP_KEEP:-0}" != 1 ]]; then
  trap 'rm -rf "$WORK"' EXIT
else
  log "keeping $WORK"
fi

log "exporting the fixtures from Java into $WORK"
t0=$(date +%s)
if ! TF_CPP_MIN_LOG_LEVEL=2 timeout "$CHECK_TIMEOUT" java -cp "$CP" dev.rewardensemble.interop.InteropExport "$WORK" \
    2> "$WORK/java.stderr"; then
  cat "$WORK/java.stderr" >&2
  log "FAIL Java export"
  exit 1
fi
log "Java export took $(( $(date +%s) - t0 )) s"

log "checking in Python"
t0=$(date +%s)
set +e
TF_CPP_MIN_LOG_LEVEL=2 TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
  timeout "$CHECK_TIMEOUT" "$VENV/bin/python" "$ROOT/scripts/interop_check.py" "$WORK" "$VENV/bin/saved_model_cli"
rc=$?
set -e
log "Python checks took $(( $(date +%s) - t0 )) s"

# Every model family end to end through the command line: hf export, LoRA training, peft and
# SavedModel exports, checked in transformers, peft and TensorFlow.
if [[ $rc -eq 0 ]]; then
  log "model families: exporting and training from the command line"
  t0=$(date +%s)
  FAMILIES=(llama3 qwen2 qwen3 mistral gemma2)
  if ! TF_CPP_MIN_LOG_LEVEL=2 timeout "$CHECK_TIMEOUT" bash "$ROOT/scripts/interop_families.sh" "$WORK/families" \
      "$VENV/bin/python" "${FAMILIES[@]}"; then
    for f in "$WORK"/families/*/log; do echo "--- $f"; tail -5 "$f"; done >&2
    log "FAIL model-family exports"
    rc=1
  else
    set +e
    TF_CPP_MIN_LOG_LEVEL=2 TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
      timeout "$CHECK_TIMEOUT" "$VENV/bin/python" "$ROOT/scripts/interop_families.py" "$WORK/families" "${FAMILIES[@]}"
    rc=$?
    set -e
  fi
  log "model families took $(( $(date +%s) - t0 )) s"
fi
log "total $(( $(date +%s) - START )) s"
if [[ $rc -ne 0 ]]; then
  log "FAIL (exit $rc)"
  exit 1
fi
log "PASS"
