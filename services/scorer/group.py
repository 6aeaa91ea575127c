"""The scorer's consumer and its group membership.

One object owns the ``Consumer``: it subscribes with the rebalance callbacks, hands out
batches (records held back during a paused wait first), keeps the membership alive while
the scorer waits (:class:`streams.membership.Membership`), commits offsets with the state
epoch as metadata, confirms that the scorer still owns its partitions before a stalled
batch is written, and replaces the consumer when the group dropped it.

``generation`` counts the assignment changes that take partitions away (revoked, lost,
rejoined): work begun under an older generation must not be written or committed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from services.scorer import metrics
from services.scorer.settings import ScorerSettings
from streams.consume import next_batch
from streams.errors import MembershipLost
from streams.kafka import consumer_config
from streams.membership import GONE, Membership

log = logging.getLogger("fraud.scorer")

PartitionsCallback = Callable[[list[TopicPartition]], None]


class ScorerGroup:
    def __init__(
        self,
        settings: ScorerSettings,
        topic: str,
        on_assign: PartitionsCallback,
        on_revoke: Callable[[list[TopicPartition], bool], None],
        on_error: Callable[[KafkaError], None] = lambda error: None,
    ) -> None:
        self.settings = settings
        self.on_error = on_error
        self.topic = topic
        self.on_assign = on_assign
        self.on_revoke = on_revoke
        self.consumer = self._new_consumer()
        self.membership = Membership(self.consumer)
        self.generation = 0
        self.committed: dict[tuple[str, int], int] = {}
        """The offsets this member committed, by (topic, partition)."""
        self.metadata = ""
        """Carried by every commit: the state epoch the work was written under."""
        self.in_callback = False

    def _new_consumer(self) -> Consumer:
        member = self.settings.member_id()
        return Consumer(
            consumer_config(
                self.settings.kafka(),
                group_id=self.settings.group_id,
                client_id=member,
                instance_id=member,
                assignment_strategy=self.settings.kafka_assignment_strategy,
                **{
                    "statistics.interval.ms": self.settings.stats_interval_ms,
                    "stats_cb": metrics.record_stats,
                    "session.timeout.ms": self.settings.session_timeout_ms,
                    "max.poll.interval.ms": self.settings.max_poll_interval_ms,
                    "error_cb": self._client_error,
                },
            )
        )

    def _client_error(self, error: KafkaError) -> None:
        """librdkafka's client-level errors (served by poll): a fatal one ends the
        membership; the others go to the scorer (e.g. every broker down)."""
        if error.fatal():
            self.membership.lost = self.membership.lost or f"{error.name()}: {error.str()}"
        self.on_error(error)

    # -- membership ---------------------------------------------------------------------
    def subscribe(self) -> None:
        self.consumer.subscribe(
            [self.topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    @property
    def lost(self) -> str | None:
        """Why the membership is gone (then the scorer must :meth:`rejoin`)."""
        return self.membership.lost

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("stage=assign partitions=%s", partition_list(partitions))
        self.on_assign(partitions)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("stage=revoke partitions=%s", partition_list(partitions))
        self._taken(partitions, lost=False)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning(
            "stage=lost partitions=%s: the group gave them away", partition_list(partitions)
        )
        self._taken(partitions, lost=True)

    def _taken(self, partitions: list[TopicPartition], *, lost: bool) -> None:
        self.generation += 1
        self.membership.forget(partitions)
        self.in_callback = True
        try:
            self.on_revoke(partitions, lost)
        finally:
            self.in_callback = False
        for tp in partitions:
            self.committed.pop((tp.topic, tp.partition), None)

    def rejoin(self) -> None:
        """Replace a consumer the group dropped (fenced, or past the poll interval) by a
        new one with the same static member id, and subscribe again."""
        with contextlib.suppress(Exception):
            self.consumer.close()
        self.generation += 1
        self.committed.clear()
        self.consumer = self._new_consumer()
        self.membership.reset(self.consumer)
        self.subscribe()

    # -- batches and waits ------------------------------------------------------------------
    def next_batch(self) -> list[Message]:
        """Records held back during a wait first, else the next polled batch."""
        self.membership.resume()
        held = self.membership.take_held()
        if held:
            return held
        return next_batch(
            self.consumer, self.settings.batch_max, self.settings.poll_timeout_ms / 1000
        )

    def keep_alive(self) -> None:
        """One step of a wait (nothing inside a rebalance callback: no poll may run there)."""
        if not self.in_callback:
            self.membership.keep_alive()

    def wait(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while True:
            self.keep_alive()
            left = until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def check(self, generation: int) -> None:
        """Raise :class:`MembershipLost` when work begun in ``generation`` lost its
        partitions since."""
        if self.lost:
            raise MembershipLost(f"the group dropped this member: {self.lost}")
        if self.generation != generation:
            raise MembershipLost("partitions were revoked during the wait")

    def rewind(self, messages: Sequence[Message]) -> None:
        """Dropped work: fetch its records again on the partitions still assigned (their
        offsets were never committed, and later commits must not skip them)."""
        first = _first_offsets(messages)
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        for (topic, partition), offset in first.items():
            if (topic, partition) in assigned:
                with contextlib.suppress(KafkaException):
                    self.consumer.seek(TopicPartition(topic, partition, offset))
        self.membership.forget([TopicPartition(t, p) for (t, p) in first])

    # -- offsets ------------------------------------------------------------------------
    def commit(self, messages: Sequence[Message], synchronous: bool = False) -> None:
        """Commit past ``messages`` (with the epoch as metadata)."""
        next_offsets: dict[tuple[str, int], int] = {}
        for m in messages:
            if m.error() is None:
                key = (str(m.topic()), int(m.partition() or 0))
                next_offsets[key] = max(next_offsets.get(key, 0), int(m.offset() or 0) + 1)
        offsets = [
            TopicPartition(t, p, o, metadata=self.metadata) for (t, p), o in next_offsets.items()
        ]
        if not offsets:
            return
        self.committed.update(next_offsets)
        if synchronous:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:  # e.g. a rebalance moved on: the batch is in the
                # ledger, so the new owner's replay of it is not decided twice
                log.warning("stage=commit %s", exc)
        else:
            self.consumer.commit(offsets=offsets, asynchronous=True)

    def confirm(self, pending: Sequence[Message] = ()) -> bool:
        """Whether this member still owns its partitions, asked of the broker: commit again
        what is committed already (for partitions with no commit yet, the first offset of
        ``pending``, which is where their consumption started). A fenced member's commit
        is refused. Transient errors are retried for up to a session timeout."""
        first = _first_offsets(pending)
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        known = {**first, **self.committed}
        offsets = [
            TopicPartition(t, p, o, metadata=self.metadata)
            for (t, p), o in known.items()
            if (t, p) in assigned
        ]
        if self.lost:
            return False
        if not offsets:  # nothing it could commit: it owns none of the pending records
            return not pending
        deadline = time.monotonic() + self.settings.session_timeout_ms / 1000
        while True:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
                return True
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.code() in GONE or error.fatal():
                    self.membership.lost = self.membership.lost or error.str()
                    return False
                if time.monotonic() > deadline:
                    return False
                self.wait(0.5)

    def committed_offsets(self) -> list[TopicPartition]:
        """The group's committed offsets of the topic, with their metadata (before the
        first batch: they tell whether the state should exist, and under which epoch)."""
        while True:
            try:
                metadata = self.consumer.list_topics(self.topic, timeout=10)
                partitions = sorted(metadata.topics[self.topic].partitions)
                wanted = [TopicPartition(self.topic, p) for p in partitions]
                return list(self.consumer.committed(wanted, timeout=10))
            except (KafkaException, KeyError) as exc:
                log.warning("stage=start committed offsets not readable yet: %s", exc)
                time.sleep(1.0)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.consumer.close()


def _first_offsets(messages: Sequence[Message]) -> dict[tuple[str, int], int]:
    first: dict[tuple[str, int], int] = {}
    for m in messages:
        if m.error() is None:
            key = (str(m.topic()), int(m.partition() or 0))
            offset = int(m.offset() or 0)
            first[key] = min(first.get(key, offset), offset)
    return first


def partition_list(partitions: Sequence[TopicPartition]) -> str:
    return ",".join(str(p.partition) for p in sorted(partitions, key=lambda p: p.partition)) or "-"
