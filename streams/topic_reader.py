"""Reading a topic as an operator does: every partition, no consumer group, no commits.

``fraudctl decisions tail`` and ``fraudctl dlq`` look at a topic without joining the
services' groups, so looking never moves a service's offsets or triggers a rebalance.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from streams.errors import BrokerUnavailable
from streams.kafka import Endpoint, consumer_config


@dataclass(frozen=True)
class ReadPlan:
    """Where to start and when to stop.

    ``from_beginning``: read what the topic holds (else only what arrives from now on);
    ``follow``: keep reading new records (else stop at the end the topic had when reading
    began); ``idle_s``: with ``follow``, stop after this many seconds without a record.
    """

    from_beginning: bool = True
    follow: bool = False
    idle_s: float | None = None


def read_topic(
    endpoint: Endpoint, topic: str, plan: ReadPlan, *, client_id: str = "fraudctl"
) -> Iterator[Message]:
    """The topic's records, partition by partition as they come (each partition in order)."""
    consumer = Consumer(
        consumer_config(
            endpoint,
            group_id=f"{client_id}-{uuid.uuid4().hex[:8]}",  # assign() below: never joined
            client_id=client_id,
        )
    )
    try:
        yield from _read(consumer, topic, plan)
    finally:
        consumer.close()


def _read(consumer: Consumer, topic: str, plan: ReadPlan) -> Iterator[Message]:
    metadata = consumer.list_topics(topic, timeout=10)
    entry = metadata.topics.get(topic)
    if entry is None or entry.error is not None or not entry.partitions:
        detail = entry.error if entry is not None and entry.error else "no such topic"
        raise BrokerUnavailable(str(topic), f"cannot read {topic}: {detail}")
    ends: dict[int, int] = {}
    assignment = []
    for partition in sorted(entry.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        ends[partition] = high
        start = OFFSET_BEGINNING if plan.from_beginning else high
        assignment.append(TopicPartition(topic, partition, start))
        if plan.from_beginning and high <= low:
            ends[partition] = -1  # empty: nothing to wait for
    consumer.assign(assignment)
    pending = {p for p, end in ends.items() if end > 0} if plan.from_beginning else set()
    if not plan.follow and not pending:
        return
    last = time.monotonic()
    while True:
        message = consumer.poll(0.2)
        if message is None:
            if plan.follow and plan.idle_s is not None and time.monotonic() - last > plan.idle_s:
                return
            continue
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                continue
            raise BrokerUnavailable(topic, str(error))
        last = time.monotonic()
        yield message
        partition = int(message.partition() or 0)
        at_end = int(message.offset() or 0) + 1 >= ends.get(partition, 0)
        if not plan.follow and partition in pending and at_end:
            pending.discard(partition)
            if not pending:
                return
