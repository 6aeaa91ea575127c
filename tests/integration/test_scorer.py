"""Acceptance (scorer): every transaction decided exactly once on the real broker + Redis."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Message, TopicPartition

from services.scorer.pipeline import StageClock
from services.scorer.service import Scorer, build_scorer
from streams.topics import SCORED, TRANSACTIONS, Topics
from tests.integration.conftest import SmallWorld
from tests.integration.scorer_helpers import (
    committed_equals_end,
    decode_decisions,
    produce,
    read_all,
    review_decoder,
    scorer_env,
    scorer_settings,
)
from tests.malformed import malformed_corpus

pytestmark = pytest.mark.integration


def test_backlog_of_10000_gets_exactly_10000_decisions(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
) -> None:
    transactions = small_world.as_events(10_000)
    bad = [payload for payload, _ in malformed_corpus(26) if len(payload) < 1_000_000]
    produce(kafka_bootstrap, topics.transactions, transactions, extra=bad)

    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "s0")
    scorer = build_scorer(scorer_settings(env))
    scorer.run(max_idle_s=4.0)

    decisions = decode_decisions(read_all(kafka_bootstrap, topics.scored))
    ids = Counter(d.transaction_id for d in decisions)
    assert len(decisions) == 10_000
    assert set(ids) == {t.transaction_id for t in transactions}
    assert max(ids.values()) == 1
    champion = scorer.champion.current().version
    assert {d.model_version for d in decisions} == {champion}
    assert all(len(d.features) == len(decisions[0].features) > 40 for d in decisions)

    flagged = {d.transaction_id for d in decisions if d.decision != "approve"}
    cases = [review_decoder.decode(m.value()) for m in read_all(kafka_bootstrap, topics.review)]
    assert {c.case_id for c in cases} == flagged  # type: ignore[union-attr]
    assert all(c.reasons for c in cases)  # type: ignore[union-attr]
    assert all(d.reasons == [] for d in decisions)  # decisions never wait for reasons

    letters = read_all(kafka_bootstrap, topics.dlq)
    assert len(letters) == len(bad)
    assert committed_equals_end(
        kafka_bootstrap,
        env["FRAUD_GROUP_ID"],
        topics.transactions,
        topics.partition_count(TRANSACTIONS),
    )
    assert topics.partition_count(SCORED) > 1


def test_the_progress_line_names_the_assignment_and_the_group_state(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transactions = small_world.as_events(200)
    produce(kafka_bootstrap, topics.transactions, transactions)
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "s0")
    settings = scorer_settings(env).model_copy(
        update={"progress_log_s": 0.5, "stats_interval_ms": 200}
    )
    scorer = build_scorer(settings)
    with caplog.at_level(logging.INFO, logger="fraud.scorer"):
        scorer.run(max_idle_s=3.0)

    lines = [r.getMessage() for r in caplog.records if "stage=progress" in r.getMessage()]
    assert lines[0].startswith("stage=progress decided=0 assigned=0 ")  # before the join
    last = lines[-1]
    partitions = topics.partition_count(TRANSACTIONS)
    assert f"decided=200 assigned={partitions} " in last
    assert "group_state=up join_state=steady rebalances=" in last


def test_replayed_transactions_are_not_decided_twice(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
) -> None:
    """The same 2,000 transactions sent twice (a producer retry storm) -> 2,000 decisions."""
    transactions = small_world.as_events(2_000)
    produce(kafka_bootstrap, topics.transactions, transactions + transactions)
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "s0")
    scorer = build_scorer(scorer_settings(env))
    worker = threading.Thread(target=scorer.run, kwargs={"max_idle_s": 4.0})
    worker.start()
    worker.join(120)
    decisions = decode_decisions(read_all(kafka_bootstrap, topics.scored))
    assert len(decisions) == 2_000
    assert len({d.transaction_id for d in decisions}) == 2_000


def test_a_batch_is_marked_decided_and_committed_only_when_settled(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
) -> None:
    """process() sends the writes; settle() - after the next batch is sent, or when no
    record comes - waits for their acks, marks the ledger and commits. Before it, a crash
    would replay the whole batch."""
    transactions = small_world.as_events(300)
    produce(kafka_bootstrap, topics.transactions, transactions)
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "s0")
    scorer = build_scorer(scorer_settings(env))
    scorer.consumer.subscribe([topics.transactions])
    messages = _take(scorer, 300)
    parts = _partitions(topics)
    ids = [t.transaction_id for t in transactions]
    try:
        scorer.process(messages, StageClock())

        assert scorer.unsettled is not None
        assert scorer.ledger.undecided(ids).all()
        assert all(tp.offset < 0 for tp in scorer.consumer.committed(parts, timeout=10))

        scorer.settle(synchronous=True)

        assert scorer.unsettled is None and scorer.decided == 300
        assert not scorer.ledger.undecided(ids).any()
        ends = {m.partition(): m.offset() + 1 for m in messages}  # offsets rise per partition
        assert _committed(scorer, parts) == ends
    finally:
        scorer.close()
    assert len(read_all(kafka_bootstrap, topics.scored)) == 300


def test_a_batch_is_settled_after_the_next_is_sent_which_skips_its_transactions(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
) -> None:
    """process(B) sends B's writes, then settles A (its review cases, acks, ledger,
    commit; with one unsettled batch allowed, whether or not A's reasons were ready). B's
    dedupe runs before A is in the ledger, so B must skip A's transactions by their sent
    ids."""
    events = small_world.as_events(350)
    first, repeated, new = events[:300], events[:100], events[300:]
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "s0")
    settings = scorer_settings(env).model_copy(update={"max_unsettled_batches": 1})
    scorer = build_scorer(settings)
    scorer.consumer.subscribe([topics.transactions])
    parts = _partitions(topics)
    try:
        produce(kafka_bootstrap, topics.transactions, first)
        batch_a = _take(scorer, 300)
        produce(kafka_bootstrap, topics.transactions, repeated + new)
        batch_b = _take(scorer, 150)

        scorer.process(batch_a, StageClock())
        assert scorer.ledger.undecided([t.transaction_id for t in first]).all()
        assert _committed(scorer, parts) == {}

        scorer.process(batch_b, StageClock())  # B sent, then A settled
        assert not scorer.ledger.undecided([t.transaction_id for t in first]).any()
        assert scorer.ledger.undecided([t.transaction_id for t in new]).all()
        assert _committed(scorer, parts) == {m.partition(): m.offset() + 1 for m in batch_a}
        assert scorer.unsettled is not None
        assert scorer.unsettled.ids == {t.transaction_id for t in new}

        scorer.settle(synchronous=True)
        ends = {m.partition(): m.offset() + 1 for m in [*batch_a, *batch_b]}
        assert _committed(scorer, parts) == ends
        assert scorer.decided == 350
    finally:
        scorer.close()
    decisions = decode_decisions(read_all(kafka_bootstrap, topics.scored))
    assert sorted(d.transaction_id for d in decisions) == sorted(t.transaction_id for t in events)


def _take(scorer: Scorer, n: int) -> list[Message]:
    """Exactly ``n`` records from the scorer's own consumer (within a minute)."""
    got: list[Message] = []
    deadline = time.monotonic() + 60
    while len(got) < n and time.monotonic() < deadline:
        got += scorer.consumer.consume(500, 0.5)
    assert len(got) == n
    return got


def _partitions(topics: Topics) -> list[TopicPartition]:
    count = topics.partition_count(TRANSACTIONS)
    return [TopicPartition(topics.transactions, p) for p in range(count)]


def _committed(scorer: Scorer, parts: list[TopicPartition]) -> dict[int, int]:
    """The group's committed offset per partition, for partitions that have one."""
    return {
        tp.partition: tp.offset
        for tp in scorer.consumer.committed(parts, timeout=10)
        if tp.offset >= 0
    }
