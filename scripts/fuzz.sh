#!/usr/bin/env bash
# `make fuzz`: every decoder under FUZZ_PAYLOADS generated payloads (default 100,000) and
# schemathesis over the API's spec with SCHEMA_EXAMPLES examples per operation (default
# 300). Counts and times go to bench/results/fuzz-<date>.json. Needs the broker and Redis
# the tests use (FRAUD_TEST_* or started by the fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."
payloads="${FUZZ_PAYLOADS:-100000}"
examples="${SCHEMA_EXAMPLES:-300}"
out="bench/results/fuzz-$(date -u +%Y-%m-%d).json"
counts="$(mktemp)"
mkdir -p bench/results
start=$(date +%s)
FRAUD_FUZZ_EXAMPLES="$payloads" FRAUD_FUZZ_REPORT="$counts" \
  .venv/bin/pytest -p no:cacheprovider -q tests/unit/test_fuzz_decoders.py
decoders_s=$(( $(date +%s) - start ))
start=$(date +%s)
FRAUD_SCHEMA_EXAMPLES="$examples" \
  .venv/bin/pytest -p no:cacheprovider -q tests/integration/test_api_schemathesis.py
schema_s=$(( $(date +%s) - start ))
.venv/bin/python - "$counts" "$out" "$decoders_s" "$examples" "$schema_s" <<'PY'
import json, platform, sys
from datetime import UTC, datetime
counts = json.load(open(sys.argv[1]))
report = {
    "date": datetime.now(UTC).isoformat(timespec="seconds"),
    "host": platform.node(),
    # written only when pytest passed (set -e): every payload was decoded or rejected
    "decoders": {**counts, "seconds": int(sys.argv[3]), "uncaught_exceptions": 0},
    "schemathesis": {"examples_per_operation": int(sys.argv[4]), "seconds": int(sys.argv[5])},
}
json.dump(report, open(sys.argv[2], "w"), indent=1)
print(json.dumps(report))
PY
rm -f "$counts"
