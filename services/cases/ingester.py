"""``fraudctl serve cases``: review cases and the cards' decisions into the case store.

    fraud.review          -> cases (upsert by case id: a replay creates nothing)
    transactions.scored   -> each card's recent decisions (the case page's history and
                             the card's typical feature values)
    undecodable records   -> the DLQ, with the reason and the original bytes

One batch is one database transaction; its offsets are committed after that transaction
(and the DLQ's acknowledgement), so a crash re-reads what was not stored and the upsert
makes the re-read harmless. While the database is unreachable the consumer keeps its group
membership (paused partitions, :class:`streams.membership.Membership`) and retries.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Message, TopicPartition
from sqlalchemy.exc import OperationalError

from services.cases.metrics import CASES_INGESTED
from services.cases.store import CaseStore
from streams.consume import next_batch
from streams.dlq import dead_letter_for, encode_dead_letter
from streams.events import Decision, ReviewCase
from streams.membership import Membership
from streams.producer import AckedProducer
from streams.serde import Rejection, decision_decoder, review_case_decoder
from streams.topics import Topics

log = logging.getLogger("fraud.cases")


@dataclass
class IngestCounts:
    created: int = 0
    duplicates: int = 0
    decisions: int = 0
    dead_letters: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


class CaseIngester:
    def __init__(
        self,
        consumer: Consumer,
        producer: AckedProducer,
        store: CaseStore,
        topics: Topics,
        *,
        batch_max: int = 500,
        retry_s: float = 1.0,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.store = store
        self.topics = topics
        self.batch_max = batch_max
        self.retry_s = retry_s
        self.membership = Membership(consumer)
        self.counts = IngestCounts()
        consumer.subscribe([topics.review, topics.scored])

    def step(self, wait_s: float = 0.5, stop: threading.Event | None = None) -> int:
        """Read one batch, store it, commit its offsets; returns the records handled."""
        messages = self.membership.take_held() or self.membership.screen(
            next_batch(self.consumer, self.batch_max, wait_s)
        )
        if not messages:
            return 0
        cases: list[ReviewCase] = []
        decisions: list[Decision] = []
        for message in messages:
            if message.topic() == self.topics.review:
                case = review_case_decoder.decode(message.value())
                if isinstance(case, Rejection):
                    self._dead_letter(message, case)
                else:
                    cases.append(case)
            else:
                decision = decision_decoder.decode(message.value())
                if isinstance(decision, Rejection):
                    self._dead_letter(message, decision)
                else:
                    decisions.append(decision)
        self.producer.wait_acked()  # the dead letters, before their offsets pass
        self._store(cases, decisions, stop)
        self.consumer.commit(offsets=_next_offsets(messages), asynchronous=False)
        self.counts.batches += 1
        return len(messages)

    def _store(
        self, cases: list[ReviewCase], decisions: list[Decision], stop: threading.Event | None
    ) -> None:
        while True:
            try:
                result = self.store.ingest(cases, decisions)
                break
            except OperationalError as exc:  # the database is away: wait, keep the group
                log.warning("stage=ingest store unavailable, retrying: %s", str(exc)[:200])
                deadline = time.monotonic() + self.retry_s
                while time.monotonic() < deadline:
                    self.membership.keep_alive()
                    time.sleep(0.05)
                if stop is not None and stop.is_set():
                    raise
        self.membership.resume()
        self.counts.created += result.created
        self.counts.duplicates += result.duplicates
        self.counts.decisions += result.decisions
        CASES_INGESTED.labels("created").inc(result.created)
        CASES_INGESTED.labels("duplicate").inc(result.duplicates)

    def _dead_letter(self, message: Message, rejection: Rejection) -> None:
        value, key = encode_dead_letter(dead_letter_for(message, rejection))
        self.producer.produce(self.topics.dlq, value, key)
        self.counts.dead_letters += 1
        CASES_INGESTED.labels("dead_letter").inc()
        log.warning("stage=decode %s record dead-lettered: %s", message.topic(), rejection.reason)

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> IngestCounts:
        idle_since = time.monotonic()
        while not stop.is_set():
            if self.step(stop=stop):
                idle_since = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                break
        return self.counts

    def close(self) -> None:
        self.consumer.close()


def default_instance_id() -> str:
    return f"{socket.gethostname()}-cases"


def _next_offsets(messages: list[Message]) -> list[TopicPartition]:
    top: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (str(m.topic()), int(m.partition() or 0))
        top[key] = max(top.get(key, 0), int(m.offset() or 0) + 1)
    return [TopicPartition(t, p, o) for (t, p), o in top.items()]
