"""Fault 2: Redis stops for 20 s mid-stream - longer than the scorers' (shortened)
``max.poll.interval.ms`` of 10 s - and restarts from its files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.events import Transaction
from tests.faults.harness import SCORER_SETTINGS, FaultRun, Outcome, Reference

pytestmark = pytest.mark.faults

OUTAGE_S = 20.0


def test_redis_stopped_past_the_poll_interval_decides_each_transaction_once(
    tmp_path: Path,
    champion_state: Path,
    fault_stream: list[Transaction],
    reference: Reference,
    fault_report: list[Outcome],
) -> None:
    assert int(SCORER_SETTINGS["FRAUD_MAX_POLL_INTERVAL_MS"]) < OUTAGE_S * 1000
    with FaultRun(tmp_path, champion_state, fault_stream[:20_000]) as run:
        run.start_stream()
        run.wait_decided(8_000)
        run.redis.stop()
        stopped = time.monotonic()
        run.wait_for(lambda: run.fault_visible("redis"), OUTAGE_S, "redis fault gauge")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        run.redis.start()
        run.healed()
        run.finish()
        outcome = run.outcome("Redis stopped 20 s (> max.poll.interval)", reference)
    fault_report.append(outcome)
    outcome.assert_exactly_once()
    assert run.fault_logged("redis")
    assert "MAX_POLL_EXCEEDED" not in run.logs()  # the members polled (paused) throughout
