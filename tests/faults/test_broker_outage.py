"""Fault 1: the broker stops for 45 s mid-stream and restarts on the same data folder."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.events import Transaction
from tests.faults.harness import FaultRun, Outcome, Reference

pytestmark = pytest.mark.faults

OUTAGE_S = 45.0


def test_broker_stopped_45s_mid_stream_decides_each_transaction_once(
    tmp_path: Path,
    champion_state: Path,
    fault_stream: list[Transaction],
    reference: Reference,
    fault_report: list[Outcome],
) -> None:
    with FaultRun(tmp_path, champion_state, fault_stream[:30_000]) as run:
        run.start_stream()
        run.wait_decided(8_000)
        run.broker.stop()
        stopped = time.monotonic()
        run.wait_for(lambda: run.fault_visible("broker"), OUTAGE_S, "broker fault gauge")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        run.broker.start()
        run.healed()
        run.finish()
        outcome = run.outcome("broker stopped 45 s, restarted", reference)
    fault_report.append(outcome)
    outcome.assert_exactly_once()
    assert run.fault_logged("broker")
