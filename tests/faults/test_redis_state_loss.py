"""Fault 5: Redis loses its data mid-stream (FLUSHALL: a restart without persistence, a
failover to an empty replica)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.events import Transaction
from tests.faults.harness import FaultRun, Outcome, Reference

pytestmark = pytest.mark.faults


def test_redis_flushed_mid_stream_rebuilds_the_state_before_deciding_on(
    tmp_path: Path,
    champion_state: Path,
    fault_stream: list[Transaction],
    reference: Reference,
    fault_report: list[Outcome],
) -> None:
    with FaultRun(tmp_path, champion_state, fault_stream[:20_000]) as run:
        run.start_stream()
        run.wait_decided(8_000)
        run.redis.client().flushall()
        run.healed()
        run.wait_for(
            lambda: any(
                run.scrape(n).get('fraud_faults_total{fault="state_lost"}', 0) >= 1
                for n in run.names
            ),
            60,
            "state_lost alert metric",
        )
        run.finish()
        outcome = run.outcome("Redis FLUSHALL mid-stream", reference)
    fault_report.append(outcome)
    outcome.assert_exactly_once()  # features after the rebuild equal the reference
    assert run.fault_logged("state_lost")
    assert "stage=state rebuilt epoch 1:" in run.logs()
