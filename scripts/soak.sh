#!/usr/bin/env bash
# What `make soak` runs: the fault-injection tier (tests/faults) SOAK_ROUNDS times over
# (default 3), each round's summary written to bench/results/faults-<date>-<round>.json
# and printed as a table. A round takes ~8-10 minutes on a 2-core box. The suite asserts;
# a failing round stops the soak with pytest's exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${SOAK_ROUNDS:-3}"
stamp="$(date -u +%Y-%m-%d)"
for round in $(seq 1 "$rounds"); do
  report="bench/results/faults-${stamp}-${round}.json"
  echo "soak round ${round}/${rounds} -> ${report}"
  FRAUD_FAULTS_REPORT="$report" bash scripts/run-tests.sh -m faults tests/faults "$@"
  .venv/bin/python -m tests.faults.report "$report"
done
