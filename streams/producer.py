"""A producer that knows whether everything it sent was acknowledged.

Services produce a batch, then call :meth:`AckedProducer.wait_acked` (everything sent so
far) or :meth:`AckedProducer.wait_for` (one :class:`Deliveries` group, while later groups
are on their way); only when it returns may they commit the input offsets (DESIGN: commit
only after both writes are acknowledged).
A full local queue is back-pressure: ``produce`` serves delivery reports until there is
room instead of buffering without bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.errors import DeliveryFailed
from streams.events import Decision, ReviewCase
from streams.kafka import ClientConfig
from streams.serde import encode
from streams.topics import Topics

DeliveryReport = Callable[[KafkaError | None, Message], None]


class Deliveries:
    """The acknowledgements of one group of records (e.g. one scorer batch), so a service
    can wait for that group while later groups are still on their way."""

    def __init__(self) -> None:
        self.outstanding = 0
        """Records sent and not yet answered by the broker."""
        self.failures: list[tuple[str, str]] = []

    def report(self, err: KafkaError | None, msg: Message) -> None:
        self.outstanding -= 1
        if err is not None:
            self.failures.append((str(msg.topic()), str(err)))


class AckedProducer:
    def __init__(self, config: ClientConfig) -> None:
        self._producer = Producer(config)
        self._failures: list[tuple[str, str]] = []
        self.backpressure_waits = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append((str(msg.topic()), str(err)))

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        timestamp_ms: int | None = None,
        headers: Any = None,
        on_delivery: DeliveryReport | None = None,
        group: Deliveries | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue one record (``value`` None: a tombstone). ``on_delivery`` replaces the
        default report (which keeps failures for :meth:`wait_acked`) for callers that track
        their records themselves; ``group`` counts the record in that group
        (:meth:`wait_for`); ``partition`` overrides the key's partitioner."""
        report = group.report if group is not None else on_delivery or self._on_delivery
        kwargs: dict[str, Any] = {"key": key, "on_delivery": report}
        if partition is not None:
            kwargs["partition"] = partition
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        if headers is not None:
            kwargs["headers"] = headers
        while True:
            try:
                self._producer.produce(topic, value, **kwargs)
                if group is not None:
                    group.outstanding += 1
                return
            except BufferError:
                self.backpressure_waits += 1
                self._producer.poll(0.01)

    def poll(self, timeout_s: float = 0.0) -> int:
        return int(self._producer.poll(timeout_s))

    def wait_acked(self, timeout_s: float = 30.0) -> None:
        """Block until every message sent so far is acknowledged; raise if any failed."""
        remaining = self.flush(timeout_s)
        if remaining:
            raise DeliveryFailed("*", f"{remaining} messages not acknowledged in {timeout_s}s")
        if self._failures:
            failed = _delivery_failed(self._failures)
            self._failures.clear()
            raise failed

    def wait_for(self, group: Deliveries, timeout_s: float = 30.0) -> None:
        """Serve delivery reports until every record of ``group`` is answered (records
        sent after it may still be on their way); raise if any failed or time ran out."""
        deadline = time.monotonic() + timeout_s
        while group.outstanding > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeliveryFailed(
                    "*", f"{group.outstanding} messages not acknowledged in {timeout_s}s"
                )
            self._producer.poll(min(left, 0.1))
        if group.failures:
            raise _delivery_failed(group.failures)

    def flush(self, timeout_s: float) -> int:
        """Serve delivery reports until nothing is outstanding or the timeout; the number
        of records still outstanding."""
        return int(self._producer.flush(timeout_s))

    def pending(self) -> int:
        return len(self._producer)


def _delivery_failed(failures: Sequence[tuple[str, str]]) -> DeliveryFailed:
    """The error for records the broker refused: how many, and the first one's reason."""
    topic, detail = failures[0]
    return DeliveryFailed(topic, f"{len(failures)} messages failed, first: {detail}")


def produce_decisions(
    producer: AckedProducer,
    topics: Topics,
    decisions: Sequence[Decision],
    cases: Sequence[ReviewCase],
    on_delivery: DeliveryReport | None = None,
    group: Deliveries | None = None,
) -> None:
    """Queue decisions on ``transactions.scored`` and review cases on ``fraud.review``,
    both keyed by card_id (the stream scorer and the API's audit log write them alike)."""
    for decision in decisions:
        producer.produce(
            topics.scored,
            encode(decision),
            decision.card_id,
            on_delivery=on_delivery,
            group=group,
        )
    for case in cases:
        producer.produce(
            topics.review,
            encode(case),
            case.transaction.card_id,
            on_delivery=on_delivery,
            group=group,
        )
