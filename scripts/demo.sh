#!/usr/bin/env bash
# `make demo`: the whole system on the embedded stack with a live dashboard (~10 minutes).
# Runs after `make setup`. Options pass through, e.g. `bash scripts/demo.sh --minutes 6`.
# Environment: DEMO_MINUTES (8), DEMO_RATE (100), DEMO_STATE_DIR (state/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
if [[ ! -x "$BIN/fraudctl" ]]; then
  echo "no $BIN/fraudctl: run 'make setup' first (or 'make demo', which does it)" >&2
  exit 1
fi
exec "$BIN/fraudctl" demo \
  --minutes "${DEMO_MINUTES:-8}" \
  --rate "${DEMO_RATE:-100}" \
  --state-dir "${DEMO_STATE_DIR:-state/demo}" \
  "$@"
