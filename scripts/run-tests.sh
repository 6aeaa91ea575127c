#!/usr/bin/env bash
# The test command of the README and of CI: all tiers, real broker + real Redis.
# Uses FRAUD_TEST_KAFKA_BOOTSTRAP / FRAUD_TEST_REDIS_URL when set; otherwise the session
# fixtures start a noida-db broker (and a redis-server when none answers) by themselves.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/pytest -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
