"""``next_batch`` on the real broker: every record exactly once, in offset order per
partition, in batches no larger than asked; an idle topic gives empty batches."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from streams.consume import next_batch
from streams.kafka import FETCH_MAX_BYTES, admin_client, consumer_config, producer_config
from streams.topics import Topics

pytestmark = pytest.mark.integration


def test_every_record_once_in_order_and_batches_bounded(kafka_bootstrap: str) -> None:
    topic = f"t{uuid.uuid4().hex[:10]}.next-batch"
    admin = admin_client(kafka_bootstrap)
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    consumer = Consumer(
        consumer_config(kafka_bootstrap, group_id=f"{topic}-g", client_id="test-next-batch")
    )
    try:
        consumer.subscribe([topic])
        assert all(next_batch(consumer, 50, 0.05) == [] for _ in range(20))  # idle: nothing

        producer = Producer(producer_config(kafka_bootstrap, client_id="test-next-batch"))
        for i in range(3_000):
            producer.produce(topic, str(i).encode(), key=f"k{i % 7}".encode())
        assert producer.flush(30) == 0

        seen: dict[int, list[int]] = defaultdict(list)
        values: list[int] = []
        sizes: list[int] = []
        empty_in_a_row = 0
        while len(values) < 3_000 and empty_in_a_row < 200:
            batch = next_batch(consumer, 50, 0.05)
            empty_in_a_row = 0 if batch else empty_in_a_row + 1
            sizes.append(len(batch))
            for m in batch:
                assert m.error() is None
                seen[int(m.partition() or 0)].append(int(m.offset() or 0))
                values.append(int(m.value() or b"-1"))
        assert sorted(values) == list(range(3_000))  # all, none twice
        assert max(sizes) <= 50
        assert max(sizes) > 1  # records fetched together come in one batch
        for offsets in seen.values():
            assert offsets == list(range(len(offsets)))  # offset order, no gap
        assert next_batch(consumer, 50, 0.05) == []  # drained
    finally:
        consumer.close()
        admin.delete_topics([topic])


def test_a_record_larger_than_the_fetch_bound_still_arrives(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """A dead letter near its topic's 16 MiB limit, between small records: a consumer
    whose fetch is bounded to :data:`FETCH_MAX_BYTES` reads all of them, in order."""
    sizes = [100, FETCH_MAX_BYTES + 4 * 1024 * 1024, 100, FETCH_MAX_BYTES // 2, 100]
    producer = Producer(producer_config(kafka_bootstrap, client_id="test-fetch-bound"))
    for i, size in enumerate(sizes):
        producer.produce(topics.dlq, bytes([i]) * size, key=b"k")
    assert producer.flush(60) == 0
    consumer = Consumer(
        consumer_config(kafka_bootstrap, group_id=f"{topics.prefix}g", client_id="test-fetch")
    )
    try:
        consumer.subscribe([topics.dlq])
        got: list[bytes] = []
        for _ in range(600):
            got.extend(m.value() or b"" for m in next_batch(consumer, 10, 0.1) if not m.error())
            if len(got) >= len(sizes):
                break
    finally:
        consumer.close()
    assert [len(v) for v in got] == sizes
    assert [v[0] for v in got] == list(range(len(sizes)))
