"""Fault 4: SIGKILL at each named point of the batch cycle (the scorer's crash hook), then
five kills in a row from outside, while the other scorer keeps deciding."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from services.scorer.crashpoints import CRASH_POINTS
from streams.events import Transaction
from tests.faults.harness import FaultRun, Outcome, Reference

pytestmark = pytest.mark.faults

KILLS_IN_A_ROW = 5


def test_sigkill_at_every_point_of_the_batch_cycle_decides_each_transaction_once(
    tmp_path: Path,
    champion_state: Path,
    fault_stream: list[Transaction],
    reference: Reference,
    fault_report: list[Outcome],
) -> None:
    with FaultRun(tmp_path, champion_state, fault_stream[:30_000]) as run:
        run.start_stream()
        run.wait_decided(3_000)
        run.scorer("scorer-0").kill()
        for point in CRASH_POINTS:  # the process kills itself at its 3rd batch's point
            crashing = run.start_scorer("scorer-0", FRAUD_CRASH_AT=point, FRAUD_CRASH_AFTER="3")
            assert crashing.proc.wait(90) == -signal.SIGKILL, crashing.output()[-3000:]
            assert f"stage=crash_hook point={point}" in crashing.output()
        for _ in range(KILLS_IN_A_ROW):  # killed again as soon as it is deciding
            restarted = run.start_scorer("scorer-0")
            run.wait_for(lambda p=restarted: "stage=assign " in p.output(), 60, "assignment")
            time.sleep(1.0)
            restarted.kill()
        run.start_scorer("scorer-0")
        run.healed()
        run.finish()
        outcome = run.outcome("SIGKILL after send/ack/mark/commit, then 5 in a row", reference)
    fault_report.append(outcome)
    outcome.assert_exactly_once()
