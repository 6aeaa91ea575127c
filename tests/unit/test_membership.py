"""Membership at the client boundary (a fake consumer): a wait pauses what is assigned and
keeps polling, holds records a poll returns anyway, learns when the group dropped the
member, and resumes only what is still assigned."""

from __future__ import annotations

from collections import deque

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition

from streams.membership import Membership

pytestmark = pytest.mark.unit


class FakeRecord:
    def __init__(self, partition: int, offset: int, error: KafkaError | None = None) -> None:
        self._partition, self._offset, self._error = partition, offset, error

    def topic(self) -> str:
        return "tx"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def error(self) -> KafkaError | None:
        return self._error


class FakeConsumer:
    def __init__(self, assigned: list[int]) -> None:
        self.assigned = [TopicPartition("tx", p) for p in assigned]
        self.paused: set[int] = set()
        self.polls = 0
        self.next: deque[FakeRecord] = deque()

    def assignment(self) -> list[TopicPartition]:
        return list(self.assigned)

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {tp.partition for tp in partitions}

    def poll(self, timeout: float = -1) -> Message | None:
        self.polls += 1
        return self.next.popleft() if self.next else None  # type: ignore[return-value]


def test_a_wait_pauses_polls_and_holds_what_a_poll_returns() -> None:
    consumer = FakeConsumer([0, 1])
    membership = Membership(consumer)
    consumer.next.extend([FakeRecord(2, 40), FakeRecord(2, 41)])  # assigned during the wait
    for _ in range(5):
        membership.keep_alive()
    assert consumer.paused == {0, 1} and consumer.polls == 5
    assert [m.offset() for m in membership.held] == [40, 41]
    membership.resume()
    assert consumer.paused == set()
    assert [m.offset() for m in membership.take_held()] == [40, 41]
    assert membership.take_held() == []


def test_a_fatal_event_or_a_poll_interval_overrun_ends_the_membership() -> None:
    membership = Membership(FakeConsumer([0]))
    assert membership.screen([FakeRecord(0, 1), FakeRecord(0, 2)]) != []  # records pass
    assert membership.lost is None
    membership.screen([FakeRecord(0, 0, KafkaError(KafkaError._TRANSPORT))])
    assert membership.lost is None  # a dropped connection is not the end of the membership
    membership.screen([FakeRecord(0, 0, KafkaError(KafkaError._MAX_POLL_EXCEEDED))])
    assert membership.lost is not None and "_MAX_POLL_EXCEEDED" in membership.lost


def test_revoked_partitions_drop_their_held_records_and_are_not_resumed() -> None:
    consumer = FakeConsumer([0, 1])
    membership = Membership(consumer)
    consumer.next.extend([FakeRecord(0, 5), FakeRecord(1, 9)])
    membership.keep_alive()
    membership.keep_alive()
    consumer.assigned = [TopicPartition("tx", 1)]
    membership.forget([TopicPartition("tx", 0)])
    membership.resume()
    assert consumer.paused == {0}  # never resumed: no longer assigned
    assert [(m.partition(), m.offset()) for m in membership.take_held()] == [(1, 9)]


def test_a_partition_lost_while_paused_is_resumed_when_assigned_back() -> None:
    """librdkafka keeps the pause of a partition that leaves and comes back (the broker
    restarted, the group gave the partitions away, then handed them back): without a
    resume nothing of it would ever be fetched again."""
    consumer = FakeConsumer([0, 2, 4])
    membership = Membership(consumer)
    membership.keep_alive()  # the broker is down: a wait pauses what is assigned
    consumer.assigned = []
    membership.forget([TopicPartition("tx", p) for p in (0, 2, 4)])  # lost
    membership.resume()
    assert consumer.paused == {0, 2, 4}  # not assigned: nothing to resume yet
    consumer.assigned = [TopicPartition("tx", p) for p in (0, 2)]  # assigned back
    membership.resume()
    assert consumer.paused == {4}
    assert membership.stale == {("tx", 4)}
    consumer.assigned = [TopicPartition("tx", p) for p in (0, 2, 4)]
    membership.keep_alive()  # a later wait pauses all three again, then ends
    membership.resume()
    assert consumer.paused == set() and membership.stale == set()
