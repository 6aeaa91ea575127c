"""``Deliveries`` groups on the real broker: waiting for one group while a later one is on
its way, and a group whose records the broker refuses raises without touching the other.
(The broker checks ``max.message.bytes`` per record batch, as Kafka does, so the refused
record goes to a topic of its own.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import NewTopic

from streams.errors import DeliveryFailed
from streams.kafka import admin_client, producer_config
from streams.producer import AckedProducer, Deliveries

pytestmark = pytest.mark.integration


def _topic(kafka_bootstrap: str, max_bytes: int) -> Iterator[str]:
    topic = f"t{uuid.uuid4().hex[:10]}.deliveries"
    admin = admin_client(kafka_bootstrap)
    config = {"max.message.bytes": str(max_bytes)}
    admin.create_topics([NewTopic(topic, 2, 1, config=config)])[topic].result(30)
    yield topic
    admin.delete_topics([topic])


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    yield from _topic(kafka_bootstrap, 1024 * 1024)


@pytest.fixture
def small_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A topic that refuses record batches over 1,000 bytes."""
    yield from _topic(kafka_bootstrap, 1000)


def test_each_group_is_waited_for_on_its_own(kafka_bootstrap: str, topic: str) -> None:
    producer = AckedProducer(producer_config(kafka_bootstrap, client_id="test-deliveries"))
    first, second = Deliveries(), Deliveries()
    for i in range(200):
        producer.produce(topic, f"a{i}".encode(), f"k{i % 5}", group=first)
    for i in range(100):
        producer.produce(topic, f"b{i}".encode(), f"k{i % 5}", group=second)
    assert (first.outstanding, second.outstanding) == (200, 100)

    producer.wait_for(first)
    assert first.outstanding == 0 and first.failures == []
    producer.wait_for(second)
    assert second.outstanding == 0 and second.failures == []
    assert producer.pending() == 0


def test_a_refused_group_raises_and_the_other_is_acknowledged(
    kafka_bootstrap: str, topic: str, small_topic: str
) -> None:
    producer = AckedProducer(producer_config(kafka_bootstrap, client_id="test-deliveries"))
    refused, fine = Deliveries(), Deliveries()
    producer.produce(small_topic, b"x" * 5_000, "k", group=refused)  # over max.message.bytes
    for i in range(50):
        producer.produce(topic, f"ok{i}".encode(), f"k{i % 3}", group=fine)

    with pytest.raises(DeliveryFailed):
        producer.wait_for(refused)
    assert refused.outstanding == 0 and len(refused.failures) == 1
    producer.wait_for(fine)
    assert fine.outstanding == 0 and fine.failures == []


def test_queued_records_leave_before_a_long_linger(kafka_bootstrap: str, topic: str) -> None:
    """A producer that lingers 25 s still has its records acknowledged at once when
    it asks for them to be sent (``send_queued``) or waits for them (``wait_for``): the
    linger only bounds a trigger the broker thread misses."""
    config = producer_config(
        kafka_bootstrap, client_id="test-send-now", defaults={"linger.ms": 25_000}
    )
    producer = AckedProducer(config)
    warm = Deliveries()  # the first request also waits for the topic's metadata
    producer.produce(topic, b"warm", "k", group=warm)
    producer.wait_for(warm, timeout_s=20)

    sent = Deliveries()
    for i in range(50):
        producer.produce(topic, f"s{i}".encode(), f"k{i % 5}", group=sent)
    producer.send_queued(wait_s=0.5)  # held long enough for a broker thread on a busy host
    for _ in range(100):  # without the trigger they would stay queued for the 25 s
        producer.poll(0.05)
        if sent.outstanding == 0:
            break
    assert sent.outstanding == 0 and sent.failures == []

    waited = Deliveries()
    for i in range(50):
        producer.produce(topic, f"w{i}".encode(), f"k{i % 5}", group=waited)
    producer.wait_for(waited, timeout_s=20)  # raises DeliveryFailed if still lingering
    assert waited.outstanding == 0 and waited.failures == []
