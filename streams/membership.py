"""Keeping a consumer's group membership while the service cannot take records.

A service that waits (for Redis, for acknowledgements, for a state rebuild) without
polling is dropped from its group once ``max.poll.interval.ms`` passes, while it still
holds a batch; its later writes are then a zombie's. So every such wait calls
:meth:`Membership.keep_alive`: the assigned partitions are paused (no record of theirs is
fetched or returned), and ``poll(0)`` serves the group protocol, the poll-interval timer
and the rebalance callbacks. A record ``poll`` returns anyway (a partition assigned during
the wait, not paused yet) is held back, in order, for the service to take first when it
resumes (:meth:`Membership.take_held`); held records of partitions the service loses are
dropped, since the new owner reads them from the committed offsets.

librdkafka keeps a partition's pause across a rebalance: a partition paused during a wait,
lost or revoked, and assigned back to this member later is still paused, and nothing of
it is fetched. So a partition taken away while paused is remembered as *stale*, and the
first :meth:`Membership.resume` after it is assigned again resumes it.

Error events say when the membership is gone all the same (the process was stopped past
its session, the broker fenced a static member): :attr:`Membership.lost` names why, and
the service must give up its unsettled work and rejoin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from confluent_kafka import KafkaError, Message, TopicPartition

GONE = frozenset(
    {
        KafkaError._FATAL,
        KafkaError._MAX_POLL_EXCEEDED,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError._ASSIGNMENT_LOST,
    }
)
"""Error events (and commit errors) that mean this member no longer owns its partitions."""


class GroupConsumer(Protocol):
    """The part of ``confluent_kafka.Consumer`` a membership uses."""

    def assignment(self) -> list[TopicPartition]: ...

    def pause(self, partitions: list[TopicPartition]) -> None: ...

    def resume(self, partitions: list[TopicPartition]) -> None: ...

    def poll(self, timeout: float = -1) -> Message | None: ...


class Membership:
    """The paused-poll keep-alive, the held records, and whether the member was lost."""

    def __init__(self, consumer: GroupConsumer) -> None:
        self.consumer = consumer
        self.paused: list[TopicPartition] = []
        self.stale: set[tuple[str, int]] = set()
        """Partitions taken away while paused: librdkafka still holds them paused."""
        self.held: list[Message] = []
        self.lost: str | None = None
        """Why the membership is gone (an error event's text); ``None`` while it holds."""

    def keep_alive(self) -> None:
        """One step of a wait: partitions paused, the group protocol served."""
        if not self.paused:
            self.paused = self.consumer.assignment()
            if self.paused:
                self.consumer.pause(self.paused)
        message = self.consumer.poll(0)
        if message is not None:
            self.screen([message])

    def screen(self, messages: Sequence[Message]) -> list[Message]:
        """The records of ``messages``, less error events; a fatal one sets :attr:`lost`.
        Records returned while paused are held instead of returned."""
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(message)
            elif error.code() in GONE or error.fatal():
                self.lost = self.lost or f"{error.name()}: {error.str()}"
        if self.paused:
            self.held.extend(records)
            return []
        return records

    def resume(self) -> None:
        """End of a wait: resume what was paused and is still assigned, and what was
        taken away while paused and has been assigned back since."""
        if not self.paused and not self.stale:
            return
        assigned = self.consumer.assignment()
        paused = {(tp.topic, tp.partition) for tp in self.paused}
        still = [tp for tp in assigned if (tp.topic, tp.partition) in paused]
        again = [
            tp
            for tp in assigned
            if (tp.topic, tp.partition) in self.stale and (tp.topic, tp.partition) not in paused
        ]
        self.paused = []
        self.stale -= {(tp.topic, tp.partition) for tp in assigned}
        if still or again:
            self.consumer.resume([*still, *again])

    def take_held(self) -> list[Message]:
        held, self.held = self.held, []
        return held

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """``partitions`` were revoked or lost: drop their held records; the paused ones
        are resumed if and when they are assigned back (see the module doc)."""
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self.held = [m for m in self.held if (m.topic(), m.partition()) not in gone]
        self.stale |= {(tp.topic, tp.partition) for tp in self.paused} & gone
        self.paused = [tp for tp in self.paused if (tp.topic, tp.partition) not in gone]

    def reset(self, consumer: GroupConsumer) -> None:
        """A new consumer replaces a lost one: nothing paused, held or lost."""
        self.consumer = consumer
        self.paused, self.held, self.lost = [], [], None
        self.stale = set()
