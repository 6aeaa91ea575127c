"""Acceptance: the live simulator against the real broker and the real Redis.

10,000 transactions are streamed into a uuid-named topic, read back with a plain
consumer and decoded: none lost, none duplicated, each keyed by its card_id, each with
its ground truth readable from Redis.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
import redis
from confluent_kafka import Consumer, Message, TopicPartition

from streams.kafka import consumer_config
from streams.serde import Rejection, transaction_decoder
from streams.simulator import GroundTruthStore, Simulator, SimulatorConfig, stream_transactions
from streams.simulator.source import LiveSource
from streams.topics import Topics

pytestmark = pytest.mark.integration
COUNT = 10_000


def _read_all(bootstrap: str, topic: str, expected: int, give_up_s: float = 120.0) -> list[Message]:
    consumer = Consumer(
        consumer_config(bootstrap, group_id=f"g{uuid.uuid4().hex[:8]}", client_id="sim-test")
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + give_up_s  # a liveness guard, not a speed assertion
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                assert msg.error() is None, msg.error()
                messages.append(msg)
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        high = sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        )
    finally:
        consumer.close()
    assert high == expected  # exactly what was sent is in the log: no duplicate writes
    return messages


def test_stream_10k_transactions_all_arrive_once_with_truth(
    kafka_bootstrap: str, topics: Topics, redis_client: redis.Redis, redis_prefix: str
) -> None:
    config = SimulatorConfig.small(seed=21)
    run_id = uuid.uuid4().hex[:8]
    store = GroundTruthStore(redis_client, redis_prefix, ttl_s=600)
    report = stream_transactions(
        Simulator(config, run_id=run_id),
        bootstrap=kafka_bootstrap,
        topic=topics.transactions,
        rate=5_000,
        count=COUNT,
        truth=store,
    )
    assert report.count == COUNT and report.delivery_failures == 0

    messages = _read_all(kafka_bootstrap, topics.transactions, COUNT)
    decoded = [transaction_decoder.decode(m.value()) for m in messages]
    rejected = [d for d in decoded if isinstance(d, Rejection)]
    assert rejected == []
    transactions = [d for d in decoded if not isinstance(d, Rejection)]
    ids = [tx.transaction_id for tx in transactions]
    assert len(ids) == COUNT and len(set(ids)) == COUNT

    # exactly the rows the generator makes for this seed and run, nothing else
    source = LiveSource(Simulator(config, run_id=run_id))
    expected = [
        batch.transaction_id[i]
        for batch, index in source.take(COUNT, card_testing=False)
        for i in index.tolist()
    ]
    assert set(ids) == set(expected)

    # keyed by card_id, so one card's transactions share a partition and keep their order
    partition_of_card: dict[str, set[int | None]] = {}
    for msg, tx in zip(messages, transactions, strict=True):
        assert msg.key() == tx.card_id.encode()
        partition_of_card.setdefault(tx.card_id, set()).add(msg.partition())
    assert all(len(parts) == 1 for parts in partition_of_card.values())
    position = {t: i for i, t in enumerate(expected)}
    by_partition: dict[int | None, list[int]] = {}
    for msg, tx in zip(messages, transactions, strict=True):
        by_partition.setdefault(msg.partition(), []).append(position[tx.transaction_id])
    assert all(order == sorted(order) for order in by_partition.values())

    truth = store.read_batch(ids)
    assert len(truth) == COUNT
    scenarios = Counter(scenario for _, scenario in truth.values())
    assert dict(scenarios) == {s: n for s, n in report.stats.per_scenario.items() if n}
    assert all(is_fraud == int(scenario > 0) for is_fraud, scenario in truth.values())


def test_ground_truth_store_round_trip_with_ttl(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    store = GroundTruthStore(redis_client, redis_prefix, ttl_s=120)
    rows = [(f"tx{i:04d}", int(i % 3 == 0), (i % 3 == 0) * (1 + i % 4)) for i in range(2_500)]
    assert store.write_batch(rows) == 2_500
    got = store.read_batch([r[0] for r in rows] + ["tx-missing"])
    assert got == {tid: (fraud, scenario) for tid, fraud, scenario in rows}
    ttl = redis_client.ttl(store.key("tx0007"))
    assert 0 < ttl <= 120
    assert store.key("tx0007") == f"{redis_prefix}:truth:tx0007"
