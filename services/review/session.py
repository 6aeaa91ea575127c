"""The review core: pending cases from ``fraud.review``, verdicts as ``Label`` records.

    next_cases() -> [PendingCase]        poll; undecodable cases go to the DLQ
    verdict(case, "fraud"|"legit"|"skip", note) -> Label | None
                                         produce the label, wait for its ack, then mark the
                                         case done; committed offsets only advance over a
                                         contiguous run of done cases per partition

So a terminal closed at any moment loses no case (undone cases are redelivered to the next
session of the group) and labels none twice (a case is done only after its label was acked;
the commit that follows makes it invisible to the next session). ``skip`` means "no label":
the case is done without one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from confluent_kafka import Consumer, Message, TopicPartition

from services.review.metrics import CASES_CLOSED, LABELS
from streams.dlq import dead_letter_for, encode_dead_letter
from streams.events import Label, ReviewCase
from streams.pan import redact_text
from streams.producer import AckedProducer
from streams.serde import Rejection, encode, review_case_decoder
from streams.topics import Topics

log = logging.getLogger("fraud.review")

Verdict = Literal["fraud", "legit", "skip"]
LabelSource = Literal["analyst", "chargeback", "oracle"]


@dataclass(frozen=True)
class PendingCase:
    case: ReviewCase
    partition: int
    offset: int
    received_at: float

    @property
    def transaction_id(self) -> str:
        return self.case.transaction.transaction_id


@dataclass
class _PartitionProgress:
    """Offsets fetched but not done yet, and done ones waiting for the gap below them."""

    next_commit: int | None = None
    done: set[int] = field(default_factory=set)
    outstanding: set[int] = field(default_factory=set)


class ReviewSession:
    def __init__(
        self,
        consumer: Consumer,
        producer: AckedProducer,
        topics: Topics,
        *,
        analyst: str,
        source: LabelSource = "analyst",
        batch_max: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.consumer = consumer
        self.producer = producer
        self.topics = topics
        self.analyst = analyst
        self.source: LabelSource = source
        self.batch_max = batch_max
        self.clock = clock
        self.monotonic = monotonic or time.monotonic
        self._progress: dict[int, _PartitionProgress] = {}
        self.labelled = 0
        self.skipped = 0
        self.dead_letters = 0
        consumer.subscribe([topics.review])

    def next_cases(self, timeout_s: float = 1.0) -> list[PendingCase]:
        """Cases fetched by one poll (possibly none); undecodable ones are dead-lettered."""
        out: list[PendingCase] = []
        for message in self.consumer.consume(self.batch_max, timeout_s):
            if message.error() is not None:
                continue
            partition, offset = int(message.partition() or 0), int(message.offset() or 0)
            progress = self._progress.setdefault(partition, _PartitionProgress())
            if progress.next_commit is None:
                progress.next_commit = offset
            progress.outstanding.add(offset)
            case = review_case_decoder.decode(message.value())
            if isinstance(case, Rejection):
                self._dead_letter(message, case)
                self._done(partition, offset)
                continue
            out.append(PendingCase(case, partition, offset, self.monotonic()))
        return out

    def verdict(
        self, pending: PendingCase, verdict: Verdict, note: str | None = None
    ) -> Label | None:
        """Record the analyst's verdict; returns the acknowledged label (``None`` on skip)."""
        label = None
        if verdict == "skip":
            self.skipped += 1
        else:
            label = Label(
                transaction_id=pending.transaction_id,
                label=verdict,
                analyst=self.analyst,
                labelled_at=self.clock(),
                source=self.source,
                note=redact_text(note) if note else None,  # free text: no card number kept
            )
            self.producer.produce(self.topics.labels, encode(label), label.transaction_id)
            self.producer.wait_acked()  # raises DeliveryFailed: the case stays pending
            self.labelled += 1
            LABELS.labels(source=self.source).inc()
        self._done(pending.partition, pending.offset)
        CASES_CLOSED.labels(verdict=verdict).inc()
        return label

    def close(self) -> None:
        self.consumer.close()

    def _dead_letter(self, message: Message, rejection: Rejection) -> None:
        value, key = encode_dead_letter(dead_letter_for(message, rejection))
        self.producer.produce(self.topics.dlq, value, key)
        self.producer.wait_acked()
        self.dead_letters += 1
        CASES_CLOSED.labels(verdict="dead_letter").inc()
        log.warning("stage=decode case dead-lettered: %s", rejection.message)

    def _done(self, partition: int, offset: int) -> None:
        progress = self._progress[partition]
        progress.outstanding.discard(offset)
        progress.done.add(offset)
        start = progress.next_commit
        assert start is not None
        commit = start
        while commit in progress.done:
            progress.done.discard(commit)
            commit += 1
        if commit != start:
            progress.next_commit = commit
            self.consumer.commit(
                offsets=[TopicPartition(self.topics.review, partition, commit)],
                asynchronous=False,
            )
