"""Kafka transactions for the scorer's output (``FRAUD_DELIVERY_MODE=transactions``).

Exactly-once v2 (KIP-447): a batch's decisions, review cases, dead letters *and its input
offsets* are one transaction of a transactional producer (``transactional.id`` = the
static member id, so a restarted member fences its predecessor's producer), committed with
``send_offsets_to_transaction`` carrying the consumer's group metadata, so the broker
refuses the commit of a member that is no longer in the group's current generation.
Consumers downstream read ``read_committed`` (librdkafka's default; faust's consumers need
it set) and never see the writes of an aborted or unfinished batch.

What it adds over the ledger path: atomicity between the output and the offsets, at the
broker. No replay is ever visible twice downstream, whatever crashed where, and fencing a
zombie is the broker's job instead of the client's (the ledger path confirms membership
before writing a stalled batch, and lets a dropped batch's writes finish before giving it
up; a zombie write in the moment between the two is still possible there). The scorer
then needs neither the Redis ledger (one ``MGET`` and one script per batch saved) nor the
re-read of ``transactions.scored`` on assignment.

What it costs: a batch is settled before the next one is sent (a producer has one open
transaction), so the acknowledgement round trip no longer overlaps the next batch's work;
each commit adds the transaction markers' round trips (``AddOffsetsToTxn``,
``TxnOffsetCommit``, ``EndTxn``) and writes a marker into every partition the batch
touched; read_committed consumers see a batch only at its commit. A failed or aborted
batch is replayed whole from the committed offsets (its feature updates are idempotent).

Tested: the call sequence and the error handling against a fake producer (unit), and a
stream end to end on the embedded broker, which implements transactions and
``read_committed`` but does not check the group generation in ``TxnOffsetCommit`` (it
accepted a stale one in a probe): the zombie fencing of EOS v2 is untested against a real
Apache Kafka broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from services.scorer.settings import ScorerSettings
from streams.errors import DeliveryRefused, MembershipLost

log = logging.getLogger("fraud.scorer")


class TransactionalProducer(Protocol):
    """The part of ``confluent_kafka.Producer`` a transaction uses."""

    def init_transactions(self, timeout: float = ...) -> None: ...

    def begin_transaction(self) -> None: ...

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: Any, timeout: float = ...
    ) -> None: ...

    def commit_transaction(self, timeout: float = ...) -> None: ...

    def abort_transaction(self, timeout: float = ...) -> None: ...


class TransactionAborted(Exception):
    """The batch's transaction was aborted: nothing of it is visible, its offsets are not
    committed; the caller fetches its records again."""


class TransactionalOutput:
    def __init__(self, producer: TransactionalProducer, timeout_s: float = 30.0) -> None:
        self.producer = producer
        self.timeout_s = timeout_s

    def start(self) -> None:
        """Register the transactional id (fencing an older producer with the same id, and
        aborting what it left open)."""
        try:
            self.producer.init_transactions(self.timeout_s)
        except KafkaException as exc:
            raise DeliveryRefused("*", f"transactions not available: {_text(exc)}") from exc

    def write(
        self,
        messages: Sequence[Message],
        produce: Callable[[], None],
        group_metadata: Callable[[], Any],
    ) -> None:
        """One batch as one transaction: ``produce`` queues its records, then the offsets
        past ``messages`` join the transaction, then it commits.

        Raises :class:`TransactionAborted` (replay the batch), :class:`MembershipLost`
        (the group moved on: this member must rejoin) or :class:`DeliveryRefused` (fenced
        by a newer producer with the same id, or a fatal error: stop)."""
        offsets = _next_offsets(messages)
        try:
            self.producer.begin_transaction()
            produce()
            if offsets:
                self.producer.send_offsets_to_transaction(offsets, group_metadata(), self.timeout_s)
            self._commit()
        except KafkaException as exc:
            self._fail(exc)

    def _commit(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                self.producer.commit_transaction(self.timeout_s)
                return
            except KafkaException as exc:
                error = _error(exc)
                if error is None or not error.retriable() or time.monotonic() > deadline:
                    raise
                log.warning("stage=commit transaction commit retried: %s", error.str())

    def _fail(self, exc: KafkaException) -> None:
        error = _error(exc)
        if error is not None and error.txn_requires_abort():
            try:
                self.producer.abort_transaction(self.timeout_s)
            except KafkaException as abort_exc:
                raise DeliveryRefused("*", f"abort failed: {_text(abort_exc)}") from abort_exc
            if error.code() in _GROUP_MOVED:
                raise MembershipLost(f"transaction aborted: {error.str()}") from exc
            raise TransactionAborted(error.str()) from exc
        raise DeliveryRefused("*", f"transaction failed for good: {_text(exc)}") from exc


_GROUP_MOVED = frozenset(
    {
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.REBALANCE_IN_PROGRESS,
    }
)


def _error(exc: KafkaException) -> KafkaError | None:
    error = exc.args[0] if exc.args else None
    return error if isinstance(error, KafkaError) else None


def _text(exc: KafkaException) -> str:
    error = _error(exc)
    return f"{error.name()}: {error.str()}" if error is not None else str(exc)


def _next_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    next_offsets: dict[tuple[str, int], int] = {}
    for m in messages:
        if m.error() is None:
            key = (str(m.topic()), int(m.partition() or 0))
            next_offsets[key] = max(next_offsets.get(key, 0), int(m.offset() or 0) + 1)
    return [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]


def transactional_config(settings: ScorerSettings) -> dict[str, Any]:
    """Producer properties of the transactions mode (none for the ledger mode): the
    transactional id is the static member id, so a restarted member fences the old one."""
    if settings.delivery_mode != "transactions":
        return {}
    return {
        "transactional.id": f"{settings.group_id}.{settings.member_id()}",
        "transaction.timeout.ms": max(60_000, 2 * settings.delivery_timeout_ms),
    }
