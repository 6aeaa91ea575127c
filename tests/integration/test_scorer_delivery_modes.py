"""The scorer's output on the real broker beyond the happy path: the transactions mode
(the embedded broker runs transactions and read_committed), a crash in the middle of a
transaction, and a refusal that stops the scorer with its reason instead of looping."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from services.scorer.service import build_scorer
from streams.errors import DeliveryRefused
from streams.kafka import delete_topics
from streams.topics import TRANSACTIONS, Topics
from tests.integration.conftest import SmallWorld
from tests.integration.scorer_helpers import (
    DecisionCounter,
    committed_equals_end,
    decode_decisions,
    produce,
    read_all,
    scorer_env,
    scorer_settings,
)
from tests.processes import ServiceProcess

pytestmark = pytest.mark.integration


def test_transactions_mode_decides_each_once_and_commits_offsets_with_the_output(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
) -> None:
    transactions = small_world.as_events(3_000)
    produce(kafka_bootstrap, topics.transactions, transactions)
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "tx0")
    scorer = build_scorer(scorer_settings(env).model_copy(update={"delivery_mode": "transactions"}))
    scorer.run(max_idle_s=4.0)

    decisions = decode_decisions(read_all(kafka_bootstrap, topics.scored))  # read_committed
    counts = Counter(d.transaction_id for d in decisions)
    assert len(counts) == 3_000 and max(counts.values()) == 1
    assert committed_equals_end(
        kafka_bootstrap,
        env["FRAUD_GROUP_ID"],
        topics.transactions,
        topics.partition_count(TRANSACTIONS),
    )
    ids = [t.transaction_id for t in transactions]
    assert scorer.ledger.undecided(ids).all()  # the transactions mode needs no ledger
    assert scorer.decided == 3_000


def test_a_crash_inside_a_transaction_leaves_nothing_visible_twice(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
    tmp_path: Path,
) -> None:
    """SIGKILL after a batch's records are queued in its open transaction, then a restart
    with the same member id (which fences the dead producer and aborts what it left)."""
    transactions = small_world.as_events(4_000)
    env = {
        **scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "txk"),
        "FRAUD_DELIVERY_MODE": "transactions",
    }
    sender = threading.Thread(
        target=produce, args=(kafka_bootstrap, topics.transactions, transactions, 1_000.0)
    )
    sender.start()
    command = ["--metrics-port", "0"]
    scorer_cmd = [sys.executable, "-m", "services.scorer"]
    crashing = ServiceProcess(
        command,
        {**env, "FRAUD_CRASH_AT": "after_send", "FRAUD_CRASH_AFTER": "5"},
        tmp_path / "crashing.log",
        command=scorer_cmd,
    )
    assert crashing.proc.wait(120) == -signal.SIGKILL, crashing.output()[-2000:]
    restarted = ServiceProcess(command, env, tmp_path / "restarted.log", command=scorer_cmd)
    sender.join(60)
    counter = DecisionCounter(kafka_bootstrap, topics.scored)
    deadline = time.monotonic() + 120
    while counter.count(poll_s=0.5) < 4_000 and time.monotonic() < deadline:
        pass
    counter.close()
    assert restarted.terminate() == 0, restarted.output()[-2000:]

    decisions = decode_decisions(read_all(kafka_bootstrap, topics.scored))
    counts = Counter(d.transaction_id for d in decisions)
    assert len(counts) == 4_000 and max(counts.values()) == 1, counts.most_common(2)


def test_an_output_topic_deleted_under_the_scorer_stops_it_with_the_reason(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transactions = small_world.as_events(3_000)
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "del")
    scorer = build_scorer(scorer_settings(env))
    stopped: list[BaseException] = []

    def run() -> None:
        try:
            scorer.run()
        except BaseException as exc:
            stopped.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        produce(kafka_bootstrap, topics.transactions, transactions[:1_000])
        deadline = time.monotonic() + 60
        while scorer.decided < 500 and time.monotonic() < deadline:
            time.sleep(0.1)
        delete_topics(kafka_bootstrap, [topics.scored])
        produce(kafka_bootstrap, topics.transactions, transactions[1_000:], rate=1_000.0)
        worker.join(90)
    finally:
        scorer.stop()
        worker.join(30)
    assert stopped and isinstance(stopped[0], DeliveryRefused), stopped
    assert not committed_equals_end(
        kafka_bootstrap,
        env["FRAUD_GROUP_ID"],
        topics.transactions,
        topics.partition_count(TRANSACTIONS),
    )  # what was refused is not committed: it replays once the cause is fixed
    assert any("writes refused for good" in r.getMessage() for r in caplog.records)
