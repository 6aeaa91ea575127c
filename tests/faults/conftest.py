"""Fault-suite fixtures: one live-timed stream for every case, the fault-free reference
run of it, and the summary every case adds its outcome to.

The summary (fault, transactions, decisions, duplicates, lost, recovery time) is written
as JSON to ``FRAUD_FAULTS_REPORT`` when set (``make soak`` sets it), else next to pytest's
temporary folders, and printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.scorer.service import build_scorer
from streams.events import Transaction
from streams.kafka import ensure_topics
from streams.topics import Topics
from tests.faults.harness import RATE, Outcome, Reference
from tests.faults.report import markdown_table
from tests.integration.conftest import SmallWorld, champion_state, small_world, trained_bundle
from tests.integration.scorer_helpers import (
    decode_decisions,
    produce,
    read_all,
    scorer_env,
    scorer_settings,
)

__all__ = ["champion_state", "small_world", "trained_bundle"]

STREAM = 30_000
"""Transactions in the longest case's stream (30 s at the paced rate)."""

_OUTCOMES: list[Outcome] = []


@pytest.fixture(scope="session")
def fault_stream(small_world: SmallWorld) -> list[Transaction]:
    """The transactions every case streams (a case may take the first n), timed as live
    traffic at the suite's rate: a partition stalled for a minute stays within the allowed
    lateness of the others, as in production."""
    return small_world.as_live_events(STREAM, rate=RATE)


@pytest.fixture(scope="session")
def reference(
    kafka_bootstrap: str,
    redis_url: str,
    champion_state: Path,
    fault_stream: list[Transaction],
) -> Iterator[Reference]:
    """The stream decided by one scorer that meets no fault (on the shared broker and
    Redis, its own topics and key prefix)."""
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    prefix = f"test{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka_bootstrap, topics)
    produce(kafka_bootstrap, topics.transactions, fault_stream)
    env = scorer_env(kafka_bootstrap, redis_url, topics, prefix, champion_state, "reference")
    build_scorer(scorer_settings(env)).run(max_idle_s=4.0)
    decisions = decode_decisions(read_all(kafka_bootstrap, topics.scored))
    assert len(decisions) == len(fault_stream), "the reference run itself lost decisions"
    yield Reference(
        features={d.transaction_id: d.features for d in decisions},
        flagged=frozenset(d.transaction_id for d in decisions if d.decision != "approve"),
    )
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


@pytest.fixture(scope="session")
def fault_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Outcome]]:
    yield _OUTCOMES
    if not _OUTCOMES:
        return
    target = os.environ.get("FRAUD_FAULTS_REPORT")
    path = Path(target) if target else tmp_path_factory.getbasetemp() / "faults.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([o.row() for o in _OUTCOMES], indent=2) + "\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _OUTCOMES:
        terminalreporter.section("fault suite")
        terminalreporter.write_line(markdown_table([o.row() for o in _OUTCOMES]))
