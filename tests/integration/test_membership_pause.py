"""A wait's pause and a rebalance, on the real broker: a partition that is taken away
while paused and handed back later must be fetched again.

librdkafka keeps the pause of such a partition. A scorer that waits out a broker restart
with its partitions paused sees the group give them away and hand them back after the
restart; unless they are resumed then, it never fetches from them again (the broker-outage
fault case, tests/faults, caught that as a member that decided nothing after the restart).
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from services.stack.process import wait_until
from streams.kafka import admin_client, consumer_config, producer_config
from streams.membership import Membership

pytestmark = pytest.mark.integration

PARTITIONS = 2


class Waiter:
    """A group member that waits the way the services do (:class:`Membership`)."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.consumer = Consumer(
            consumer_config(bootstrap, group_id=group, client_id=f"{group}-waiter")
        )
        self.membership = Membership(self.consumer)
        self.seen: set[tuple[int, int]] = set()
        self.consumer.subscribe([topic], on_revoke=self._taken, on_lost=self._taken)

    def _taken(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.membership.forget(partitions)

    def assigned(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    def consume(self, seconds: float) -> None:
        """What a service does between waits: resume, then take batches."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.membership.resume()
            batch: list[Message] = self.membership.take_held()
            batch += self.membership.screen(self.consumer.consume(100, 0.1))
            self.seen |= {(int(m.partition() or 0), int(m.offset() or 0)) for m in batch}

    def consume_then_assigned(self) -> set[int]:
        self.consume(0.2)
        return self.assigned()

    def consume_then_seen(self) -> set[int]:
        """The partitions records were taken from so far, after consuming a little more."""
        self.consume(0.2)
        return {p for p, _ in self.seen}

    def wait(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.membership.keep_alive()
            time.sleep(0.05)


def test_a_partition_lost_while_paused_is_fetched_again_once_assigned_back(
    kafka_bootstrap: str,
) -> None:
    run = uuid.uuid4().hex[:10]
    topic, group = f"t{run}.paused", f"t{run}.waiters"
    admin = admin_client(kafka_bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    waiter = Waiter(kafka_bootstrap, topic, group)
    other: Consumer | None = None
    try:
        waiter.consume(0.5)
        assert wait_until(lambda: waiter.consume_then_assigned() == {0, 1}, 60), "assignment"
        waiter.wait(0.5)  # a wait (Redis, the broker): both partitions paused

        # Another member joins mid-wait: the group takes the paused partitions away.
        other = Consumer(consumer_config(kafka_bootstrap, group_id=group, client_id="other"))
        other.subscribe([topic])
        deadline = time.monotonic() + 60
        while waiter.assigned() == {0, 1} and time.monotonic() < deadline:
            waiter.wait(0.2)
            other.poll(0.1)
        assert waiter.assigned() != {0, 1}, "the second member never took a partition"

        # The wait ends; the other member leaves and everything comes back to the waiter.
        other.close()
        other = None
        assert wait_until(lambda: waiter.consume_then_assigned() == {0, 1}, 60), "hand-back"

        producer = Producer(producer_config(kafka_bootstrap, client_id=f"{group}-producer"))
        for partition in range(PARTITIONS):
            producer.produce(topic, b"{}", partition=partition)
        assert producer.flush(30) == 0
        assert wait_until(lambda: waiter.consume_then_seen() == {0, 1}, 30), waiter.seen
    finally:
        if other is not None:
            other.close()
        waiter.consumer.close()
