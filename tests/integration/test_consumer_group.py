"""The consumer-group defaults against the real broker: a member joining a second after
another leaves no partition unconsumed.

Under ``cooperative-sticky`` the embedded broker orphans the partitions the first member
gives up (it revokes them and nobody is assigned them again), which lost half the demo's
decisions once. The default strategy (:data:`streams.kafka.DEFAULT_ASSIGNMENT_STRATEGY`)
must not.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from streams.kafka import admin_client, consumer_config, producer_config

pytestmark = pytest.mark.integration

PARTITIONS = 12


class Member(threading.Thread):
    """One static group member that records the partitions it consumed from."""

    def __init__(self, bootstrap: str, topic: str, group: str, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.consumer = Consumer(
            consumer_config(bootstrap, group_id=group, client_id=name, instance_id=name)
        )
        self.topic = topic
        self.partitions: set[int] = set()
        self.running = True

    def run(self) -> None:
        self.consumer.subscribe([self.topic])
        try:
            while self.running:
                for message in self.consumer.consume(100, 0.1):
                    if message.error() is None:
                        self.partitions.add(int(message.partition() or 0))
        finally:
            self.consumer.close()


def test_a_member_joining_a_second_later_leaves_no_partition_unconsumed(
    kafka_bootstrap: str,
) -> None:
    run = uuid.uuid4().hex[:10]
    topic, group = f"t{run}.group", f"t{run}.members"
    admin = admin_client(kafka_bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    first = Member(kafka_bootstrap, topic, group, f"{group}-1")
    second = Member(kafka_bootstrap, topic, group, f"{group}-2")
    first.start()
    time.sleep(1.0)  # the first holds every partition when the second joins
    second.start()
    time.sleep(5.0)  # the group settles
    producer = Producer(producer_config(kafka_bootstrap, client_id="test-group"))
    for partition in range(PARTITIONS):
        producer.produce(topic, b"x", partition=partition)
    assert producer.flush(10) == 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(first.partitions | second.partitions) < PARTITIONS:
        time.sleep(0.1)
    first.running = second.running = False
    first.join(10)
    second.join(10)

    assert first.partitions | second.partitions == set(range(PARTITIONS))
    assert first.partitions and second.partitions  # both members got a share
    assert not first.partitions & second.partitions  # each partition has one owner
