"""The Kafka side of a load-test process: one producer, one decision reader, one tracker.

Locust runs users as gevent greenlets; confluent-kafka's C client blocks the calling
thread, so:

* the producer is only ever polled with timeout 0 (``produce`` itself never blocks: a full
  queue raises ``BufferError`` and the sender yields and retries);
* the reader consumes ``transactions.scored`` in a native OS thread (gevent's thread
  pool) and hands ``(transaction_id, read_at)`` pairs over a deque; the read time is taken
  in that thread, the moment the decision is readable, so the greenlet that drains the
  deque every few milliseconds adds nothing to the measured latency;
* Locust request events are fired only from greenlets (Locust's stats are not
  thread-safe).

The reader is assigned to the current end of every partition before the first send, so
no decision of this run can be missed, and it belongs to no consumer group (no
rebalance, no committed offsets).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import gevent
import msgspec
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from gevent.threadpool import ThreadPool

from loadtest.feed import TransactionFeed
from loadtest.tracker import DecisionTracker, Report
from streams.errors import BrokerUnavailable, ConfigError
from streams.kafka import consumer_config, producer_config, warm_up_producer
from streams.serde import encode

READ_BATCH = 500
DRAIN_EVERY_S = 0.005
PRODUCER_POLL_EVERY_S = 0.002
EXPIRE_EVERY_S = 0.1
SWITCH_INTERVAL_S = 0.0005


class _DecisionRef(msgspec.Struct):
    """The one field of a Decision the load test needs (the rest is skipped, not parsed)."""

    transaction_id: str


class DecisionReader:
    """Reads every decision written after :meth:`start`, in a native thread."""

    def __init__(self, bootstrap: str, topic: str, client_id: str) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._consumer = Consumer(
            consumer_config(bootstrap, group_id=f"{client_id}-unused", client_id=client_id)
        )
        self._decoder = msgspec.json.Decoder(_DecisionRef)
        self._inbox: deque[tuple[list[str], float]] = deque()
        self._running = False
        self._pool: ThreadPool | None = None
        self.undecodable = 0

    def start(self, timeout_s: float = 10.0) -> None:
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=timeout_s)
        except KafkaException as exc:
            raise BrokerUnavailable(self._bootstrap, str(exc)) from exc
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise ConfigError(
                f"topic {self.topic} not found: is the stack up (fraudctl stack up) and "
                "FRAUD_TOPIC_PREFIX the scorer's?"
            )
        partitions = sorted(topic.partitions)
        ends = []
        for p in partitions:
            _, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=timeout_s
            )
            ends.append(TopicPartition(self.topic, p, high))
        self._consumer.assign(ends)
        self._running = True
        self._pool = ThreadPool(1)
        self._pool.spawn(self._run)

    def _run(self) -> None:  # native thread: no gevent calls, no Locust events
        consumer, decode, inbox = self._consumer, self._decoder.decode, self._inbox
        while self._running:
            first = consumer.poll(0.1)
            if first is None:
                continue
            read_at = time.monotonic()
            ids: list[str] = []
            for message in [first, *consumer.consume(READ_BATCH - 1, 0)]:
                value = message.value()
                if message.error() is not None or value is None:
                    continue
                try:
                    ids.append(decode(value).transaction_id)
                except msgspec.DecodeError:
                    self.undecodable += 1
            inbox.append((ids, read_at))

    def take(self) -> list[tuple[list[str], float]]:
        """Everything read since the last call (greenlet side)."""
        out = []
        inbox = self._inbox
        while inbox:
            out.append(inbox.popleft())
        return out

    def close(self) -> None:
        self._running = False
        if self._pool is not None:
            self._pool.join()
            self._pool.kill()
        self._consumer.close()


class KafkaLoad:
    """Sends transactions, matches their decisions and reports both to Locust."""

    def __init__(
        self,
        *,
        bootstrap: str,
        transactions_topic: str,
        scored_topic: str,
        feed: TransactionFeed,
        report: Report,
        decision_timeout_s: float,
    ) -> None:
        client_id = f"locust-{feed.run_id}"
        self.topic = transactions_topic
        self._bootstrap = bootstrap
        self.feed = feed
        self.tracker = DecisionTracker(report, decision_timeout_s)
        self.producer = Producer(producer_config(bootstrap, client_id=client_id))
        self.reader = DecisionReader(bootstrap, scored_topic, client_id)
        self._greenlets: list[gevent.Greenlet[Any, Any]] = []
        self._last_send = 0.0

    def start(self) -> None:
        # The reader thread stamps read times, but needs the GIL to do so: a shorter switch
        # interval (default 5 ms) bounds how long a busy greenlet can delay that stamp.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        warm_up_producer(self.producer, self._bootstrap, self.topic)
        self.reader.start()
        self._greenlets = [
            gevent.spawn(self._every, PRODUCER_POLL_EVERY_S, self._serve_acks),
            gevent.spawn(self._every, DRAIN_EVERY_S, self._match_decisions),
            gevent.spawn(self._every, EXPIRE_EVERY_S, self._expire),
        ]

    def send(self) -> None:
        """Produce the next simulated transaction (key card_id) and start its clock."""
        tx = self.feed.next()
        value = encode(tx)
        tracker = self.tracker
        while True:
            sent_at = time.monotonic()
            try:
                self.producer.produce(
                    self.topic,
                    value,
                    tx.card_id,
                    on_delivery=partial(self._on_delivery, tx.transaction_id, sent_at),
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain
                self.producer.poll(0)
                gevent.sleep(0.001)
        tracker.sent(tx.transaction_id, sent_at)
        self._last_send = sent_at

    def finish(self, max_wait_s: float | None = None) -> None:
        """End of a run: wait for acks and decisions (up to the timeout), then settle."""
        deadline = self._last_send + (max_wait_s or self.tracker.timeout_s)
        while (self.tracker.outstanding or len(self.producer)) and time.monotonic() < deadline:
            self._serve_acks()
            self._match_decisions()
            gevent.sleep(0.01)
        self._serve_acks()
        self._match_decisions()
        self.tracker.expire_all(time.monotonic())

    def close(self) -> None:
        gevent.killall(self._greenlets)
        self.producer.flush(10)
        self.reader.close()

    # -- greenlets ----------------------------------------------------------------------
    @staticmethod
    def _every(period_s: float, step: Callable[[], object]) -> None:
        while True:
            step()
            gevent.sleep(period_s)

    def _serve_acks(self) -> None:
        self.producer.poll(0)

    def _match_decisions(self) -> None:
        decided = self.tracker.decided
        for ids, read_at in self.reader.take():
            for transaction_id in ids:
                decided(transaction_id, read_at)

    def _expire(self) -> None:
        self.tracker.expire(time.monotonic())

    def _on_delivery(
        self, transaction_id: str, sent_at: float, err: KafkaError | None, _: Message
    ) -> None:
        now = time.monotonic()
        self.tracker.acked(transaction_id, sent_at, now, None if err is None else str(err))
