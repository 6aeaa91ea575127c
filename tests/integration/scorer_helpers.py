"""Producing transactions and collecting decisions for the scorer tests."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from services.scorer.settings import ScorerSettings
from streams.events import Decision, ReviewCase, Transaction
from streams.kafka import consumer_config, producer_config
from streams.serde import Decoder, decision_decoder, encode
from streams.topics import Topics

review_decoder: Decoder[ReviewCase] = Decoder(ReviewCase, max_bytes=1 << 20)


def scorer_env(
    bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    state: Path,
    instance: str,
) -> dict[str, str]:
    return {
        "FRAUD_KAFKA_BOOTSTRAP": bootstrap,
        "FRAUD_REDIS_URL": redis_url,
        "FRAUD_TOPIC_PREFIX": topics.prefix,
        "FRAUD_REDIS_PREFIX": redis_prefix,
        "FRAUD_FEAST_PROJECT": f"fraud_{redis_prefix}",
        "FRAUD_STATE_DIR": str(state),
        "FRAUD_INSTANCE_ID": instance,
        "FRAUD_GROUP_ID": f"{topics.prefix}scorer",
        # The small world's history (dated from 2026-01-01) is replayed as a backlog.
        "FRAUD_EVENT_TIME_MAX_AGE_S": "0",
    }


def scorer_settings(env: dict[str, str]) -> ScorerSettings:
    return ScorerSettings(
        kafka_bootstrap=env["FRAUD_KAFKA_BOOTSTRAP"],
        redis_url=env["FRAUD_REDIS_URL"],
        topic_prefix=env["FRAUD_TOPIC_PREFIX"],
        redis_prefix=env["FRAUD_REDIS_PREFIX"],
        feast_project=env["FRAUD_FEAST_PROJECT"],
        state_dir=Path(env["FRAUD_STATE_DIR"]),
        instance_id=env["FRAUD_INSTANCE_ID"],
        group_id=env["FRAUD_GROUP_ID"],
        event_time_max_age_s=float(env["FRAUD_EVENT_TIME_MAX_AGE_S"]),
        metrics_port=0,
    )


def produce(
    bootstrap: str,
    topic: str,
    transactions: Sequence[Transaction],
    rate: float | None = None,
    extra: Sequence[bytes] = (),
) -> None:
    """Send ``transactions`` keyed by card_id (paced at ``rate``/s when given)."""
    producer = Producer(producer_config(bootstrap, client_id="test-producer"))
    started = time.monotonic()
    for i, tx in enumerate(transactions):
        producer.produce(topic, encode(tx), key=tx.card_id)
        if rate is not None and i % 100 == 0:
            ahead = i / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
            producer.poll(0)
    for payload in extra:
        producer.produce(topic, payload, key=b"bad")
    assert producer.flush(60) == 0


def read_all(bootstrap: str, topic: str, *, idle_s: float = 3.0, timeout_s: float = 120) -> list:  # type: ignore[type-arg]
    """Every message on ``topic`` from the start, until ``idle_s`` without new ones."""
    consumer = Consumer(
        consumer_config(
            bootstrap, group_id=f"reader-{topic}-{time.monotonic_ns()}", client_id="test-reader"
        )
    )
    consumer.subscribe([topic])
    out: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last < idle_s:
        batch = [m for m in consumer.consume(1000, 0.2) if m.error() is None]
        if batch:
            out.extend(batch)
            last = time.monotonic()
    consumer.close()
    return out


class DecisionCounter:
    """A reader that keeps counting the messages on a topic (cheap to ask repeatedly)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = Consumer(
            consumer_config(bootstrap, group_id=f"count-{time.monotonic_ns()}", client_id="count")
        )
        self._consumer.subscribe([topic])
        self.seen = 0

    def count(self, poll_s: float = 0.2) -> int:
        self.seen += sum(1 for m in self._consumer.consume(1000, poll_s) if m.error() is None)
        return self.seen

    def close(self) -> None:
        self._consumer.close()


def wait_for_decisions(
    bootstrap: str, topic: str, expected: int, timeout_s: float = 120
) -> list[Decision]:
    """Decisions on ``topic`` once at least ``expected`` are there (or the timeout passed)."""
    deadline = time.monotonic() + timeout_s
    decisions: list[Decision] = []
    while time.monotonic() < deadline:
        decisions = decode_decisions(read_all(bootstrap, topic, idle_s=1.0))
        if len(decisions) >= expected:
            break
        time.sleep(1.0)
    return decode_decisions(read_all(bootstrap, topic, idle_s=2.0))


def decode_decisions(messages: list) -> list[Decision]:  # type: ignore[type-arg]
    out = []
    for m in messages:
        decision = decision_decoder.decode(m.value())
        assert isinstance(decision, Decision), decision
        out.append(decision)
    return out


def committed_equals_end(bootstrap: str, group: str, topic: str, partitions: int) -> bool:
    consumer = Consumer(consumer_config(bootstrap, group_id=group, client_id="test-offsets"))
    parts = [TopicPartition(topic, p) for p in range(partitions)]
    committed = consumer.committed(parts, timeout=10)
    ok = True
    for tp in committed:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
        ok = ok and (tp.offset == high or (high == 0 and tp.offset < 0))
    consumer.close()
    return ok
