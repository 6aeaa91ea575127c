"""AckedProducer at the client boundary (a fake librdkafka producer whose broker acks or
fails the records a test chooses): a group keeps what failed, only that is resent,
permanent failures say so, and ``wait_acked`` never reports an earlier call's failures."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

import streams.producer as producer_module
from streams.errors import DeliveryFailed, DeliveryRefused
from streams.producer import AckedProducer, Deliveries, FailedRecord

pytestmark = pytest.mark.unit


class FakeMessage:
    def __init__(self, topic: str, value: bytes, key: Any, timestamp: int | None) -> None:
        self._topic, self._value, self._key = topic, value, key
        self._timestamp = timestamp or 1_700_000_000_000

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def key(self) -> Any:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp)


class FakeProducer:
    """Queues records; each poll answers them, failing those ``fail`` picks."""

    fail: Callable[[bytes], int | None] = staticmethod(lambda value: None)
    hold: Callable[[bytes], bool] = staticmethod(lambda value: False)
    produced: list[bytes]

    def __init__(self, config: dict[str, Any]) -> None:
        self.queue: deque[tuple[FakeMessage, Callable[..., None]]] = deque()
        FakeProducer.produced = []
        self.fatal: KafkaError | None = None

    def produce(self, topic: str, value: bytes, **kwargs: Any) -> None:
        if self.fatal is not None:
            raise KafkaException(self.fatal)
        FakeProducer.produced.append(value)
        message = FakeMessage(topic, value, kwargs.get("key"), kwargs.get("timestamp"))
        self.queue.append((message, kwargs["on_delivery"]))

    def poll(self, timeout: float = 0) -> int:
        served = 0
        held = deque()
        while self.queue:
            message, report = self.queue.popleft()
            if FakeProducer.hold(message.value()):
                held.append((message, report))
                continue
            code = FakeProducer.fail(message.value())
            report(KafkaError(code) if code is not None else None, message)
            served += 1
        self.queue = held
        return served

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return len(self.queue)

    def __len__(self) -> int:
        return len(self.queue)


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> AckedProducer:
    monkeypatch.setattr(producer_module, "Producer", FakeProducer)
    FakeProducer.fail = staticmethod(lambda value: None)
    FakeProducer.hold = staticmethod(lambda value: False)
    return AckedProducer({})


def test_only_the_failed_records_are_kept_and_resent(producer: AckedProducer) -> None:
    group = Deliveries()
    for i in range(10):
        producer.produce("scored", f"d{i}".encode(), f"c{i}", timestamp_ms=1000 + i, group=group)
    FakeProducer.fail = staticmethod(
        lambda v: KafkaError._MSG_TIMED_OUT if v in (b"d3", b"d7") else None
    )
    with pytest.raises(DeliveryFailed) as failed:
        producer.wait_for(group, timeout_s=1)
    assert not isinstance(failed.value, DeliveryRefused)
    assert [r.value for r in failed.value.records] == [b"d3", b"d7"]
    assert [r.timestamp_ms for r in failed.value.records] == [1003, 1007]
    assert [r.key for r in failed.value.records] == [b"c3", b"c7"]

    FakeProducer.fail = staticmethod(lambda v: None)
    FakeProducer.produced = []
    producer.resend(group, failed.value.records)
    producer.wait_for(group, timeout_s=1)
    assert FakeProducer.produced == [b"d3", b"d7"]  # the eight acknowledged ones: not again
    assert group.failed == [] and group.outstanding == 0
    assert (group.sent, group.resent) == (10, 2)


def test_a_permanent_error_is_refused_and_a_timeout_is_not(producer: AckedProducer) -> None:
    group = Deliveries()
    producer.produce("review", b"case", "c", group=group)
    FakeProducer.fail = staticmethod(lambda v: KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(DeliveryRefused, match="TOPIC_AUTHORIZATION_FAILED"):
        producer.wait_for(group, timeout_s=1)

    record = group.failed[0]
    assert record.permanent and not record.topic_missing
    timed_out = FailedRecord("t", 0, None, b"", None, None, KafkaError._MSG_TIMED_OUT, "")
    unknown = FailedRecord("t", -1, None, b"", None, None, KafkaError.UNKNOWN_TOPIC_OR_PART, "")
    assert not timed_out.permanent and not unknown.permanent and unknown.topic_missing


def test_a_fatal_producer_error_is_a_refusal(producer: AckedProducer) -> None:
    client: Any = producer.client
    client.fatal = KafkaError(KafkaError._FATAL, "sequence desynchronised", fatal=True)
    with pytest.raises(DeliveryRefused, match="refuses to send"):
        producer.produce("scored", b"d", "c", group=Deliveries())


def test_wait_acked_does_not_report_an_earlier_calls_failures(producer: AckedProducer) -> None:
    """A record still unanswered when one call times out, and failing later, belongs to
    that call: the next one, whose records are all acknowledged, passes."""
    FakeProducer.hold = staticmethod(lambda v: v == b"slow")
    producer.produce("t", b"slow")
    with pytest.raises(DeliveryFailed, match="not acknowledged"):
        producer.wait_acked(0.05)
    FakeProducer.hold = staticmethod(lambda v: False)
    FakeProducer.fail = staticmethod(lambda v: KafkaError._MSG_TIMED_OUT if v == b"slow" else None)
    producer.produce("t", b"new")
    producer.wait_acked(1)
    assert FakeProducer.produced == [b"slow", b"new"]


def test_a_quick_acknowledgement_never_calls_idle_a_long_wait_does(
    producer: AckedProducer,
) -> None:
    """The scorer keeps its group alive in ``idle`` by pausing its partitions; a wait of
    milliseconds must not pause them (a pause drops the consumer's prefetched records)."""
    calls: list[int] = []
    quick = Deliveries()
    producer.produce("t", b"quick", group=quick)
    producer.wait_for(quick, 1.0, idle=lambda: calls.append(1), idle_after_s=0.2)
    assert calls == []
    FakeProducer.hold = staticmethod(lambda v: v == b"slow")
    slow = Deliveries()
    producer.produce("t", b"slow", group=slow)
    with pytest.raises(DeliveryFailed, match="not acknowledged"):
        producer.wait_for(slow, 0.5, idle=lambda: calls.append(1), idle_after_s=0.2)
    assert len(calls) >= 1
