#!/usr/bin/env bash
# Creates (or reuses) a Python virtual environment holding the given packages.
# Shared by scripts/python-interop.sh and scripts/bench-peer.sh.
#
# Usage: scripts/venv.sh VENV_DIR PACKAGE... (or source it and call rme_venv VENV_DIR PACKAGE...)
# Environment: RME_PIP_TIMEOUT (s, default 1500).
# The CPU build of torch: pin the local version (torch==2.13.0+cpu) so pip does not choose a CUDA
# wheel (several GB of nvidia-* packages). /opt/wheels holds it on the project's machines.

rme_venv() {
  local venv=$1
  shift
  local packages=("$@")
  local stamp="$venv/.rme-installed"
  local want="${packages[*]}"
  local timeout_s=${RME_PIP_TIMEOUT:-1500}
  # import names of the packages, for the reuse check
  local imports=()
  local p
  for p in "${packages[@]}"; do
    p=${p%%[=<>]*}
    case "$p" in
      tensorflow-cpu|tensorflow) imports+=(tensorflow) ;;
      *) imports+=("${p//-/_}") ;;
    esac
  done
  local import_list
  import_list=$(IFS=,; echo "${imports[*]}")
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
      && "$venv/bin/python" -c "import $import_list" 2>/dev/null; then
    echo "[venv] reusing $venv ($want)" >&2
    return 0
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "[venv] creating $venv" >&2
    python3 -m venv "$venv" || return 1
  fi
  local extra=()
  if [[ -d /opt/wheels ]]; then
    extra+=(--find-links /opt/wheels)
  fi
  echo "[venv] pip install $want (time limit ${timeout_s}s)" >&2
  local t0
  t0=$(date +%s)
  if ! timeout "$timeout_s" "$venv/bin/pip" install --retries 0 --progress-bar off "${extra[@]}" \
      "${packages[@]}" >&2; then
    echo "[venv] FAIL pip install (see above)" >&2
    return 1
  fi
  echo "[venv] pip install took $(( $(date +%s) - t0 )) s" >&2
  echo "$want" > "$stamp"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  if [[ $# -lt 2 ]]; then
    echo "usage: $0 VENV_DIR PACKAGE..." >&2
    exit 2
  fi
  rme_venv "$@"
fi
