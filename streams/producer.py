"""A producer that knows whether everything it sent was acknowledged, and what was not.

Services produce a batch, then call :meth:`AckedProducer.wait_acked` (everything sent so
far) or :meth:`AckedProducer.wait_for` (one :class:`Deliveries` group, while later groups
are on their way); only when it returns may they commit the input offsets (DESIGN: commit
only after both writes are acknowledged).

A group keeps the records the broker did not take (:class:`FailedRecord`: topic, key,
value, headers, timestamp and the error), so a caller resends those and only those
(:meth:`AckedProducer.resend`) - never the records the broker already acknowledged. Each
failure is classified: *transient* (the broker is down or restarting, a leader moved: the
records can be sent again) or *permanent* (the topic does not exist, writing is not
authorised, the record is refused as it is, or the producer hit a fatal error): sending
again cannot help, and :class:`streams.errors.DeliveryRefused` says so.

A full local queue is back-pressure: ``produce`` serves delivery reports until there is
room instead of buffering without bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams.errors import DeliveryFailed, DeliveryRefused
from streams.events import Decision, ReviewCase
from streams.kafka import ClientConfig
from streams.serde import encode
from streams.topics import Topics

DeliveryReport = Callable[[KafkaError | None, Message], None]

PERMANENT_ERRORS = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError.INVALID_REQUIRED_ACKS,
        KafkaError.UNSUPPORTED_VERSION,
        KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        KafkaError._INVALID_ARG,
        KafkaError._FATAL,
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
    }
)
"""Delivery errors that sending the same record again cannot fix. The idempotent
producer's sequence errors are among them: librdkafka raises them as fatal (a topic
deleted under it, measured on the embedded broker), and the producer is then unusable."""

MISSING_TOPIC_ERRORS = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION}
)
"""Permanent once the broker confirms the topic is gone; transient while it restarts."""

SEND_NOW_WAIT_S = 0.001
"""How long :meth:`AckedProducer.send_queued` holds its flush open: long enough for a
broker thread to wake and see it (a 0.5 ms hold missed now and then on a loaded 2-core
host, 1 ms did not in 40 trials), short enough to cost little when acks take longer."""


@dataclass(frozen=True)
class FailedRecord:
    """A record the broker did not acknowledge: enough to send it again, and why."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: Any
    timestamp_ms: int | None
    code: int
    reason: str

    @property
    def permanent(self) -> bool:
        return self.code in PERMANENT_ERRORS

    @property
    def topic_missing(self) -> bool:
        return self.code in MISSING_TOPIC_ERRORS

    @classmethod
    def of(cls, err: KafkaError, msg: Message) -> FailedRecord:
        kind, ts = msg.timestamp()
        partition = msg.partition()
        key, value = msg.key(), msg.value()
        return cls(
            topic=str(msg.topic()),
            partition=int(partition) if partition is not None else -1,
            key=key.encode() if isinstance(key, str) else key,
            value=value.encode() if isinstance(value, str) else value,
            headers=msg.headers(),
            timestamp_ms=ts if kind != 0 else None,
            code=int(err.code()),
            reason=f"{err.name()}: {err.str()}",
        )


class Deliveries:
    """The acknowledgements of one group of records (e.g. one scorer batch), so a service
    can wait for that group while later groups are still on their way."""

    def __init__(self) -> None:
        self.outstanding = 0
        """Records sent and not yet answered by the broker."""
        self.failed: list[FailedRecord] = []
        """Records the broker did not take since the group was last resent."""
        self.failures: list[tuple[str, str]] = []
        """(topic, reason) of each of them, for callers that only report."""
        self.sent = 0
        self.resent = 0

    def report(self, err: KafkaError | None, msg: Message) -> None:
        self.outstanding -= 1
        if err is not None:
            record = FailedRecord.of(err, msg)
            self.failed.append(record)
            self.failures.append((record.topic, record.reason))


class AckedProducer:
    def __init__(self, config: ClientConfig) -> None:
        self._producer = Producer(config)
        self._default = Deliveries()
        """The group of records sent without one: what :meth:`wait_acked` waits for."""
        self.backpressure_waits = 0

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
        default report (which counts the record for :meth:`wait_acked`) for callers that
        track their records themselves; ``group`` counts the record in that group
        (:meth:`wait_for`); ``partition`` overrides the key's partitioner."""
        if group is None and on_delivery is None:
            group = self._default
        report = group.report if group is not None else on_delivery
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
            except BufferError:
                self.backpressure_waits += 1
                self._serve(0.01)
                continue
            except KafkaException as exc:  # a fatal producer error: nothing is queued
                raise _refused(topic, exc) from exc
            if group is not None:
                group.outstanding += 1
                group.sent += 1
            return

    def resend(self, group: Deliveries, records: Sequence[FailedRecord]) -> None:
        """Queue ``records`` (failed records of ``group``) again, in their first order, and
        forget the group's failures: what fails this time is reported anew."""
        group.failed, group.failures = [], []
        for r in records:
            where = r.partition if r.partition >= 0 else None  # as first placed
            self.produce(
                r.topic, r.value, r.key, r.timestamp_ms, r.headers, group=group, partition=where
            )
            group.sent -= 1
            group.resent += 1

    def poll(self, timeout_s: float = 0.0) -> int:
        return self._serve(timeout_s)

    def wait_acked(self, timeout_s: float = 30.0) -> None:
        """Block until every record sent so far without a group is answered; raise if any
        failed or time ran out. Records still unanswered then belong to this call: if they
        fail later, the next call does not report them."""
        group, self._default = self._default, Deliveries()
        self.wait_for(group, timeout_s)

    def wait_for(
        self,
        group: Deliveries,
        timeout_s: float = 30.0,
        idle: Callable[[], None] | None = None,
        idle_after_s: float = 1.0,
    ) -> None:
        """Serve delivery reports until every record of ``group`` is answered (records
        sent after it may still be on their way); raise if any failed or time ran out.

        Once the wait has lasted ``idle_after_s``, ``idle`` is called between polls of at
        most 100 ms (e.g. to keep a consumer's group membership alive while the broker is
        away; an acknowledgement that takes milliseconds never pauses the consumer). A
        group with a permanent failure
        raises :class:`DeliveryRefused`; otherwise :class:`DeliveryFailed`, whose
        ``records`` the caller may :meth:`resend` once they are all answered."""
        started = time.monotonic()
        deadline = started + timeout_s
        if group.outstanding > 0:
            self.send_queued()  # what waits for its linger would delay the acks
        while group.outstanding > 0:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                raise DeliveryFailed(
                    "*", f"{group.outstanding} messages not acknowledged in {timeout_s}s"
                )
            if not self._serve(min(left, 0.1)) and group.outstanding > 0:
                self.send_queued()  # nothing came: a missed trigger costs this, no more
            if idle is not None and now - started >= idle_after_s:
                idle()
        if group.failed:
            raise _delivery_failed(group.failed)

    def send_queued(self, wait_s: float = SEND_NOW_WAIT_S) -> None:
        """Have the queued records sent now instead of at the end of ``linger.ms``:
        librdkafka's broker threads ignore the linger while a flush call lasts, once they
        see it. Returns when every record is acknowledged or after ``wait_s`` (serving
        delivery reports meanwhile); a broker thread that wakes later sends at the linger.
        """
        self.flush(wait_s)

    def flush(self, timeout_s: float) -> int:
        """Serve delivery reports until nothing is outstanding or the timeout; the number
        of records still outstanding."""
        try:
            return int(self._producer.flush(timeout_s))
        except KafkaException as exc:
            raise _refused("*", exc) from exc

    def pending(self) -> int:
        return len(self._producer)

    @property
    def client(self) -> Producer:
        """The librdkafka producer (its transaction calls, for the transactions mode)."""
        return self._producer

    def _serve(self, timeout_s: float) -> int:
        try:
            return int(self._producer.poll(timeout_s))
        except KafkaException as exc:  # raised for a fatal error, after its reports
            raise _refused("*", exc) from exc


def _refused(topic: str, exc: KafkaException) -> DeliveryRefused:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    detail = f"{error.name()}: {error.str()}" if error is not None else str(exc)
    return DeliveryRefused(topic, f"the producer refuses to send ({detail})")


def _delivery_failed(failed: Sequence[FailedRecord]) -> DeliveryFailed:
    """The error for records the broker did not take: how many, the first one's reason,
    and whether sending them again can help."""
    permanent = [r for r in failed if r.permanent]
    first = permanent[0] if permanent else failed[0]
    detail = f"{len(failed)} messages failed, first: {first.reason}"
    if permanent:
        return DeliveryRefused(first.topic, detail, records=list(failed))
    return DeliveryFailed(first.topic, detail, records=list(failed))


def produce_decisions(
    producer: AckedProducer,
    topics: Topics,
    decisions: Sequence[Decision],
    cases: Sequence[ReviewCase],
    on_delivery: DeliveryReport | None = None,
    group: Deliveries | None = None,
    partition_of: Mapping[str, int] | None = None,
) -> None:
    """Queue decisions on ``transactions.scored`` and review cases on ``fraud.review``,
    both keyed by card_id (the stream scorer and the API's audit log write them alike).

    ``partition_of`` (transaction_id -> partition of the transaction) puts each decision
    in the partition number of its transaction, so a scorer's recovery reads only the
    partitions it was assigned; without it the key chooses."""
    where = partition_of or {}
    for decision in decisions:
        producer.produce(
            topics.scored,
            encode(decision),
            decision.card_id,
            on_delivery=on_delivery,
            group=group,
            partition=where.get(decision.transaction_id),
        )
    for case in cases:
        producer.produce(
            topics.review,
            encode(case),
            case.transaction.card_id,
            on_delivery=on_delivery,
            group=group,
        )
