"""The review core on the real broker (and Redis for the oracle): a closed terminal loses
no case and labels none twice; the oracle labels from ground truth."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import redis
from confluent_kafka import Consumer

from services.review.oracle import Oracle
from services.review.session import PendingCase, ReviewSession
from streams.events import Label, ReviewCase, Transaction
from streams.kafka import consumer_config, producer_config
from streams.producer import AckedProducer
from streams.serde import Decoder, encode
from streams.simulator.truth import GroundTruthStore
from streams.topics import Topics

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def send_cases(bootstrap: str, topics: Topics, n: int) -> None:
    producer = AckedProducer(producer_config(bootstrap, client_id="test-cases"))
    for i in range(n):
        tx = Transaction(
            transaction_id=f"tx{i:03d}",
            event_time=T0,
            card_id=f"C{i % 4}",
            customer_id="U1",
            terminal_id="T1",
            amount=10.0 + i,
        )
        case = ReviewCase(
            case_id=f"case{i:03d}", transaction=tx, score=0.8, decision="review", model_version="v1"
        )
        producer.produce(topics.review, encode(case), tx.card_id)
    producer.produce(topics.review, b"{not json", b"C0")
    producer.wait_acked()


def session(bootstrap: str, topics: Topics, analyst: str = "ana") -> ReviewSession:
    consumer = Consumer(
        consumer_config(bootstrap, group_id=f"{topics.prefix}review", client_id=f"test-{analyst}")
    )
    producer = AckedProducer(producer_config(bootstrap, client_id="test-review"))
    return ReviewSession(
        consumer,
        producer,
        topics,
        analyst=analyst,
        source="oracle" if analyst == "oracle" else "analyst",
    )


def fetch(s: ReviewSession, n: int, timeout_s: float = 60.0) -> list[PendingCase]:
    out: list[PendingCase] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        out += s.next_cases(timeout_s=0.5)
    return out


def read_labels(bootstrap: str, topics: Topics, quiet_s: float = 3.0) -> list[Label]:
    consumer = Consumer(
        consumer_config(bootstrap, group_id=f"{topics.prefix}reader", client_id="test-labels")
    )
    consumer.subscribe([topics.labels])
    decoder = Decoder(Label)
    labels: list[Label] = []
    last = time.monotonic()
    while time.monotonic() - last < quiet_s:
        for m in consumer.consume(100, 0.3):
            if m.error() is None:
                labels.append(decoder.decode(m.value()))  # type: ignore[arg-type]
                last = time.monotonic()
    consumer.close()
    return labels


def test_closed_terminal_loses_no_case_and_labels_none_twice(
    kafka_bootstrap: str, topics: Topics
) -> None:
    send_cases(kafka_bootstrap, topics, 9)
    first = session(kafka_bootstrap, topics)
    cases = fetch(first, 9)
    assert len(cases) == 9 and first.dead_letters == 1
    # the analyst works three cases (in fetch order, as the terminal shows them), then quits
    worked = cases[:3]
    assert first.verdict(worked[0], "fraud", "card abroad") is not None
    assert first.verdict(worked[1], "legit") is not None
    assert first.verdict(worked[2], "skip") is None
    first.close()

    second = session(kafka_bootstrap, topics, analyst="bob")
    again = fetch(second, 6)
    assert sorted(c.transaction_id for c in again) == sorted(c.transaction_id for c in cases[3:])
    for pending in again:
        second.verdict(pending, "legit")
    second.close()

    labels = read_labels(kafka_bootstrap, topics)
    by_id = {}
    for label in labels:
        assert label.transaction_id not in by_id, f"{label.transaction_id} labelled twice"
        by_id[label.transaction_id] = label
    assert len(by_id) == 8  # 9 cases, one skipped
    first_label = by_id[worked[0].transaction_id]
    assert (first_label.label, first_label.analyst, first_label.note) == (
        "fraud",
        "ana",
        "card abroad",
    )
    assert worked[2].transaction_id not in by_id


def test_oracle_labels_from_ground_truth(
    kafka_bootstrap: str, topics: Topics, redis_client: redis.Redis, redis_prefix: str
) -> None:
    send_cases(kafka_bootstrap, topics, 6)
    truth = GroundTruthStore(redis_client, redis_prefix, ttl_s=600)
    truth.write_batch([(f"tx{i:03d}", int(i % 2 == 0), 1) for i in range(5)])  # tx005 unknown
    s = session(kafka_bootstrap, topics, analyst="oracle")
    oracle = Oracle(truth, delay_s=0.0, error_rate=0.0)
    oracle.label(s, fetch(s, 6))
    s.close()
    labels = {lb.transaction_id: lb for lb in read_labels(kafka_bootstrap, topics)}
    assert {t: lb.label for t, lb in labels.items()} == {
        f"tx{i:03d}": ("fraud" if i % 2 == 0 else "legit") for i in range(5)
    }
    assert {lb.source for lb in labels.values()} == {"oracle"}
    assert (oracle.stats.labelled, oracle.stats.unknown) == (5, 1)
