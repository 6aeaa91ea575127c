"""Fault 3: one of two scorers is SIGSTOPped for longer than its session timeout, then
SIGCONTed: a member the group may have given up on comes back holding a batch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.events import Transaction
from tests.faults.harness import SCORER_SETTINGS, FaultRun, Outcome, Reference

pytestmark = pytest.mark.faults

STALL_S = 15.0


def test_a_scorer_stopped_past_its_session_timeout_writes_no_duplicate(
    tmp_path: Path,
    champion_state: Path,
    fault_stream: list[Transaction],
    reference: Reference,
    fault_report: list[Outcome],
) -> None:
    assert int(SCORER_SETTINGS["FRAUD_SESSION_TIMEOUT_MS"]) < STALL_S * 1000
    with FaultRun(tmp_path, champion_state, fault_stream[:20_000]) as run:
        run.start_stream()
        run.wait_decided(8_000)
        stalled = run.scorer("scorer-1")
        stalled.pause()
        time.sleep(STALL_S)
        assert run.scrape("scorer-1") == {}  # visible as a scorer down (ScorerDown alert)
        stalled.resume()
        run.healed()
        run.finish()
        outcome = run.outcome("scorer SIGSTOPped 15 s (> session timeout)", reference)
    fault_report.append(outcome)
    outcome.assert_exactly_once()
    assert run.fault_logged("group")  # it came back without its partitions, and rejoined
