#!/usr/bin/env bash
# What `make bench` runs: every benchmark in one run, written to bench/results/<date>.{json,md}
# plus <date>-latency.png. About 12-15 minutes on a 2-core box: the scorer's paced run in
# four traffic mixes (normal, attack, cold cards, schema-only generator; loadtest/mixes.py)
# adds ~5 to the rest (the first run also trains the bench champion once, ~1-2 min,
# cached in state/bench/registry). The scorer's backlog at 5,000 and 1,000,000 active cards
# (loadtest/bench_cards.py) adds ~10 minutes and ~6 GB of memory in a redis-server of its
# own (redis-server on PATH; stopped and removed afterwards).
#   scripts/bench.sh            the full report (features, profiles, model, scorer)
#   scripts/bench.sh --quick    a smoke run (~4 min on an idle box): small numbers, no model bench
# Extra arguments go to `fraudctl bench report` (e.g. --only scorer, --bootstrap H:P).
# Needs Redis (FRAUD_REDIS_URL, default 127.0.0.1:6379); the scorer bench starts its own
# noida-db broker on a free port. Numbers are measured, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
echo "bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$PY" -m loadtest.cli_bench report "$@"
