"""``next_batch`` on the real broker: every record exactly once, in offset order per
partition, in batches no larger than asked; an idle topic gives empty batches."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from streams.consume import next_batch
from streams.kafka import admin_client, consumer_config, producer_config

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
