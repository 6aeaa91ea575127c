"""Wiring of ``fraudctl review``: clients from settings, then one of the loops."""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, Message, TopicPartition
from rich.console import Console

from services.connections import redis_client
from services.review.history import CardHistory, HistoryFeed
from services.review.importer import read_label_file
from services.review.metrics import LABELS
from services.review.oracle import Oracle, chargeback_labels
from services.review.running import service_run
from services.review.session import LabelSource, PendingCase, ReviewSession
from services.review.settings import ReviewSettings
from services.review.tui import run_terminal
from streams.events import Decision
from streams.kafka import consumer_config, producer_config
from streams.producer import AckedProducer
from streams.serde import decision_decoder, encode
from streams.simulator.truth import GroundTruthStore

log = logging.getLogger("fraud.review")


def open_session(settings: ReviewSettings, *, analyst: str, source: LabelSource) -> ReviewSession:
    consumer = Consumer(
        consumer_config(
            settings.kafka(),
            group_id=settings.review_group(),
            client_id=f"review-{analyst}",
            assignment_strategy=settings.kafka_assignment_strategy,
        )
    )
    producer = AckedProducer(producer_config(settings.kafka(), client_id="review"))
    return ReviewSession(
        consumer,
        producer,
        settings.topics(),
        analyst=analyst,
        source=source,
        batch_max=settings.batch_max,
    )


def truth_store(settings: ReviewSettings) -> GroundTruthStore:
    client = redis_client(settings)
    return GroundTruthStore(client, settings.redis_prefix)


def run_interactive(settings: ReviewSettings, console: Console) -> int:
    history = CardHistory(settings.history_cards, settings.history_per_card)
    feed = HistoryFeed(
        settings.kafka(), settings.topics().scored, history, settings.history_lookback_s
    )
    session = open_session(settings, analyst=settings.analyst, source="analyst")
    try:
        return run_terminal(session, history, sys.stdin, console, poll_history=feed.poll)
    finally:
        session.close()
        feed.close()


def run_oracle(
    settings: ReviewSettings, *, delay_s: float, error_rate: float, idle_exit_s: float | None
) -> Oracle:
    """Label every review case from ground truth ``delay_s`` after it was fetched."""
    oracle = Oracle(truth_store(settings), delay_s=delay_s, error_rate=error_rate)
    with service_run(settings) as stop:
        session = open_session(settings, analyst="oracle", source="oracle")
        log.info("stage=start mode=oracle group=%s delay_s=%s", settings.review_group(), delay_s)
        waiting: list[PendingCase] = []
        idle_since = time.monotonic()
        try:
            while not stop.is_set():
                fresh = session.next_cases(timeout_s=0.5)
                waiting += fresh
                due = oracle.due(waiting, time.monotonic())
                if due:
                    oracle.label(session, due)
                    done = {id(c) for c in due}
                    waiting = [c for c in waiting if id(c) not in done]
                if fresh or waiting:
                    idle_since = time.monotonic()
                elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                    break
        finally:
            session.close()
            log.info("stage=stop mode=oracle %s", oracle.stats)
    return oracle


def run_case_oracle(
    settings: ReviewSettings, *, delay_s: float, error_rate: float, idle_exit_s: float | None
) -> object:
    """The oracle as an analyst of the case store (``fraudctl review --auto --case-store``)."""
    from services.cases.oracle import CaseOracle
    from services.cases.service import open_store
    from services.cases.settings import CaseStoreSettings

    store = open_store(CaseStoreSettings())
    oracle = CaseOracle(store, truth_store(settings), delay_s=delay_s, error_rate=error_rate)
    with service_run(settings) as stop:
        log.info("stage=start mode=oracle store=%s delay_s=%s", store.dialect, delay_s)
        idle_since = time.monotonic()
        try:
            while not stop.is_set():
                if oracle.step():
                    idle_since = time.monotonic()
                elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                    break
                stop.wait(0.5)
        finally:
            store.close()
            log.info("stage=stop mode=oracle %s", oracle.stats)
    return oracle.stats


def run_file(settings: ReviewSettings, path: Path, source: LabelSource) -> tuple[int, int]:
    parsed = read_label_file(path, source=source, default_analyst=settings.analyst)
    producer = AckedProducer(producer_config(settings.kafka(), client_id="review-file"))
    topic = settings.topics().labels
    for label in parsed.labels:
        producer.produce(topic, encode(label), label.transaction_id)
    producer.wait_acked()
    LABELS.labels(source=source).inc(len(parsed.labels))
    for number, reason in parsed.rejected:
        log.warning("stage=import row=%d rejected: %s", number, reason)
    return len(parsed.labels), len(parsed.rejected)


MAX_PENDING_CHARGEBACKS = 100_000  # decisions held back waiting for their delay


def run_chargebacks(settings: ReviewSettings, *, delay_s: float, idle_exit_s: float | None) -> int:
    """Label missed fraud from ``transactions.scored`` ``delay_s`` after it was decided.

    Each decision waits until its record timestamp + ``delay_s``; decisions become due in
    arrival order (offset order within a partition), so the offsets committed after the
    labels' acks never pass a decision that was not looked at.
    """
    truth = truth_store(settings)
    topics = settings.topics()
    sent = 0
    with service_run(settings) as stop:
        consumer = Consumer(
            consumer_config(
                settings.kafka(),
                group_id=settings.chargeback_group(),
                client_id="chargebacks",
                assignment_strategy=settings.kafka_assignment_strategy,
            )
        )
        consumer.subscribe([topics.scored])
        producer = AckedProducer(producer_config(settings.kafka(), client_id="chargebacks"))
        log.info(
            "stage=start mode=chargebacks group=%s delay_s=%s",
            settings.chargeback_group(),
            delay_s,
        )
        pending: deque[Message] = deque()
        idle_since = time.monotonic()
        try:
            while not stop.is_set():
                wait_s = _seconds_until_due(pending[0], delay_s) if pending else 0.5
                if len(pending) >= MAX_PENDING_CHARGEBACKS:
                    stop.wait(wait_s)  # back-pressure: read on once the oldest is due
                else:
                    fresh = consumer.consume(500, min(0.5, max(0.01, wait_s)))
                    pending.extend(m for m in fresh if m.error() is None)
                if not pending:
                    if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                        break
                    continue
                idle_since = time.monotonic()
                due = []
                while pending and _seconds_until_due(pending[0], delay_s) <= 0:
                    due.append(pending.popleft())
                if not due:
                    continue
                decisions = [
                    d
                    for d in map(decision_decoder.decode, (m.value() for m in due))
                    if isinstance(d, Decision)
                ]
                labels = chargeback_labels(decisions, truth, datetime.now(UTC))
                for label in labels:
                    producer.produce(topics.labels, encode(label), label.transaction_id)
                producer.wait_acked()  # only then: the due decisions' offsets
                LABELS.labels(source="chargeback").inc(len(labels))
                sent += len(labels)
                consumer.commit(offsets=_next_offsets(due), asynchronous=False)
        finally:
            consumer.close()
            log.info("stage=stop mode=chargebacks sent=%d", sent)
    return sent


def _seconds_until_due(message: Message, delay_s: float) -> float:
    return message.timestamp()[1] / 1000 + delay_s - time.time()


def _next_offsets(messages: list[Message]) -> list[TopicPartition]:
    top: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (str(m.topic()), int(m.partition() or 0))
        top[key] = max(top.get(key, 0), int(m.offset() or 0) + 1)
    return [TopicPartition(t, p, o) for (t, p), o in top.items()]
