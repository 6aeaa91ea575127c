"""Announcing ``ModelEvent``s on ``model.events`` from durable outboxes, off the caller's path.

Two outboxes are drained: the model registry's audit log (registrations, promotions,
rollbacks, rejections: written under the registry's lock, the change itself) and the
retrainer's own ``outbox.jsonl`` (drift and quality reports, failed trainings). A caller
only appends to an outbox (fsynced, local); one thread sends what is waiting, moves an
outbox's cursor only after the broker acknowledged, and retries with a capped backoff
while the broker is away. A crash or an outage therefore delays an event and never loses
it; delivery is at least once (a crash after the ack and before the cursor sends it again)
and consumers drop an ``event_id`` they have seen.

While events wait, ``fraud_retrainer_outbox_events`` and
``fraud_retrainer_outbox_oldest_seconds`` say how many and how long, each failed attempt
counts in ``fraud_retrainer_publish_failures_total`` and logs a warning (every
``warn_every_s``), and the first delivery after an outage logs how long it waited.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka import KafkaException

from models.registry_open import Registry
from services.retrainer import metrics
from services.settings import CommonSettings
from streams.errors import FraudError
from streams.events import ModelEvent
from streams.kafka import Endpoint, ensure_topics, producer_config, wait_for_broker
from streams.object_outbox import ObjectOutbox
from streams.outbox import Outbox, Pending
from streams.producer import AckedProducer, Deliveries
from streams.serde import encode
from streams.topics import Topics

log = logging.getLogger("fraud.retrainer")

Headers = list[tuple[str, bytes]]
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)


class EventSender(Protocol):
    """What the publisher needs from a Kafka producer (a fake one in unit tests)."""

    def produce(
        self, topic: str, value: bytes, key: str, headers: Headers, group: Deliveries
    ) -> None: ...

    def poll(self, timeout_s: float) -> int: ...

    def flush(self, timeout_s: float) -> int: ...


class _KafkaSender:
    def __init__(self, producer: AckedProducer) -> None:
        self._producer = producer

    def produce(
        self, topic: str, value: bytes, key: str, headers: Headers, group: Deliveries
    ) -> None:
        self._producer.produce(topic, value, key=key, headers=headers, group=group)

    def poll(self, timeout_s: float) -> int:
        return self._producer.poll(timeout_s)

    def flush(self, timeout_s: float) -> int:
        return self._producer.flush(timeout_s)


@dataclass
class _InFlight:
    outbox: Outbox | ObjectOutbox
    batch: list[Pending]
    deliveries: Deliveries
    sent_at: float


class EventPublisher:
    """Drains ``outboxes`` to ``topic``; a call appends the caller's event to the first.

    ``connect`` makes the sender (and creates the topic) on first use, on the drain thread,
    so a broker that is down at start delays the announcements, not the service. An outbox
    another process drains (:meth:`Outbox.claim`) is left to it.
    """

    def __init__(
        self,
        topic: str,
        outboxes: Sequence[Outbox | ObjectOutbox],
        *,
        connect: Callable[[], EventSender],
        ack_wait_s: float = 1.0,
        warn_every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self.outboxes = list(outboxes)
        self._connect = connect
        self._sender: EventSender | None = None
        self.ack_wait_s = ack_wait_s
        self.warn_every_s = warn_every_s
        self.clock = clock
        self._inflight: _InFlight | None = None
        self._failures = 0
        self._failing_since: float | None = None
        self._last_warning = float("-inf")
        self._retry_at = float("-inf")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0

    # -- the caller's side ------------------------------------------------------------
    def __call__(self, event: ModelEvent) -> None:
        """Queue ``event`` durably; the drain thread sends it. Never waits for the broker."""
        own = self.outboxes[0]
        if not isinstance(own, Outbox):
            raise TypeError("the first outbox takes the caller's events: a local Outbox")
        (stored,) = own.append([event])
        log.info(
            "stage=event queued %s %s event_id=%s %s",
            stored.kind,
            stored.model_version,
            stored.event_id,
            stored.reasons[:3],
        )
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def waiting(self) -> list[ModelEvent]:
        """Events not yet acknowledged by the broker, oldest first."""
        return [e for outbox in self.outboxes for e in outbox.backlog()]

    # -- the drain thread -----------------------------------------------------------------
    def start(self) -> EventPublisher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="event-publisher", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout_s: float = 10.0) -> None:
        """Try to send what is waiting for up to ``timeout_s``, then stop; what is left
        stays in the outboxes for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s + 5.0)
            self._thread = None
        self.drain(timeout_s)
        for outbox in self.outboxes:
            outbox.release()
        self._sender = None  # its librdkafka handle goes with it (no reconnects after close)
        self._inflight = None
        left = self.waiting()
        if left:
            log.warning(
                "stage=event stopping with %d events not announced (kept in the outbox): %s",
                len(left),
                ", ".join(f"{e.kind} {e.model_version}" for e in left[:5]),
            )

    def drain(self, timeout_s: float) -> bool:
        """Send until nothing waits (True) or ``timeout_s`` passed (False); the caller's
        thread (a one-shot command), or after :meth:`close` stopped the drain thread."""
        deadline = self.clock() + timeout_s
        while self.clock() < deadline:
            if self.step() == "idle":
                return True
            if self._inflight is None:
                time.sleep(min(0.2, max(0.0, deadline - self.clock())))
        return not self.waiting()

    def _run(self) -> None:
        while not self._stop.is_set():
            state = self.step()
            if state == "idle":
                self._wake.wait(1.0)
                self._wake.clear()
            elif state == "backoff":
                self._wake.wait(max(0.05, min(1.0, self._retry_at - self.clock())))
                self._wake.clear()

    def step(self) -> str:
        """One move: send a batch, or wait ``ack_wait_s`` for the one in flight. Returns
        ``idle`` (nothing waits), ``sent``, ``waiting`` (in flight) or ``backoff``."""
        try:
            return self._step()
        except Exception as exc:  # the drain thread must outlive any broker trouble
            self._failed(f"{type(exc).__name__}: {exc}")
            return "backoff"
        finally:
            self._update_gauges()

    def _step(self) -> str:
        if self._inflight is None:
            if self.clock() < self._retry_at:
                return "backoff"
            return self._send_next()
        flight = self._inflight
        assert self._sender is not None
        self._sender.poll(self.ack_wait_s)
        if flight.deliveries.outstanding > 0:
            if self.clock() - flight.sent_at > self.ack_wait_s * 5:
                self._unanswered(flight)
            return "waiting"
        self._inflight = None
        if flight.deliveries.failures:
            topic, detail = flight.deliveries.failures[0]
            self._failed(f"{len(flight.deliveries.failures)} refused by {topic}: {detail}")
            return "backoff"
        flight.outbox.delivered(flight.batch[-1].end)
        self._acknowledged(flight)
        return "sent"

    def _send_next(self) -> str:
        for outbox in self.outboxes:
            batch = []
            if outbox.claim():
                outbox.pass_unreadable()
                batch = outbox.pending(limit=100)
            if batch:
                break
        else:
            return "idle"
        if self._sender is None:
            self._sender = self._connect()
        deliveries = Deliveries()
        for item in batch:
            event = item.event
            self._sender.produce(
                self.topic,
                encode(event),
                key=event.model_version,
                headers=[("event_id", (event.event_id or "").encode())],
                group=deliveries,
            )
        self._inflight = _InFlight(outbox, batch, deliveries, self.clock())
        return "sent"

    # -- bookkeeping ------------------------------------------------------------------------
    def _acknowledged(self, flight: _InFlight) -> None:
        now = datetime.now(UTC)
        for item in flight.batch:
            event = item.event
            log.info(
                "stage=event announced %s %s event_id=%s after %.1fs",
                event.kind,
                event.model_version,
                event.event_id,
                (now - event.at).total_seconds(),
            )
        self.delivered += len(flight.batch)
        metrics.EVENTS_ANNOUNCED.inc(len(flight.batch))
        if self._failing_since is not None:
            log.warning(
                "stage=event broker back: announcing again after %.1fs and %d failed attempts",
                self.clock() - self._failing_since,
                self._failures,
            )
        self._failures = 0
        self._failing_since = None
        self._retry_at = float("-inf")

    def _unanswered(self, flight: _InFlight) -> None:
        """Still no ack: librdkafka keeps retrying until ``message.timeout.ms``, so the batch
        is not sent twice; the outage is made visible meanwhile."""
        if self._failing_since is None:
            self._failing_since = flight.sent_at
        self._warn(
            f"no acknowledgement for {self.clock() - flight.sent_at:.0f}s "
            f"({flight.deliveries.outstanding} in flight)"
        )

    def _failed(self, reason: str) -> None:
        self._inflight = None
        # a fresh producer next time: an idempotent one can be left fatal by a broker that
        # lost its producer state (a restart), and would refuse everything after
        self._sender = None
        self._failures += 1
        metrics.PUBLISH_FAILURES.inc()
        if self._failing_since is None:
            self._failing_since = self.clock()
        delay = BACKOFF_S[min(self._failures - 1, len(BACKOFF_S) - 1)]
        self._retry_at = self.clock() + delay
        log.info("stage=event attempt %d failed (%s); retry in %gs", self._failures, reason, delay)
        self._warn(f"attempt {self._failures} failed ({reason}); retry in {delay:g}s")

    def _warn(self, text: str) -> None:
        if self.clock() - self._last_warning < self.warn_every_s:
            return
        self._last_warning = self.clock()
        waiting = self.waiting()
        log.warning(
            "stage=event broker unavailable: %s; %d events waiting in the outbox (%s)",
            text,
            len(waiting),
            ", ".join(f"{e.kind} {e.model_version}" for e in waiting[:5]),
        )

    def _update_gauges(self) -> None:
        waiting = self.waiting()
        metrics.OUTBOX_EVENTS.set(len(waiting))
        oldest = min((e.at for e in waiting), default=None)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        metrics.OUTBOX_OLDEST_SECONDS.set(max(0.0, age))


def kafka_sender(bootstrap: Endpoint, topics: Topics, client_id: str) -> Callable[[], EventSender]:
    """The real sender: creates ``model.events`` if missing, then an acknowledged producer."""

    def connect() -> EventSender:
        wait_for_broker(bootstrap, timeout_s=2.0)  # BrokerUnavailable says why, quickly
        try:
            ensure_topics(bootstrap, topics, only=["model.events"], timeout_s=10)
        except (KafkaException, TimeoutError) as exc:
            raise FraudError(f"cannot create model.events: {exc!r}") from exc
        return _KafkaSender(AckedProducer(producer_config(bootstrap, client_id=client_id)))

    return connect


def retrainer_outbox(settings: CommonSettings) -> Outbox:
    """The retrainer's own events (reports, failed trainings) wait here."""
    return Outbox(settings.state_dir / "retrainer" / "outbox.jsonl", name="retrainer")


def event_publisher(
    settings: CommonSettings, registry: Registry, *, client_id: str = "retrainer"
) -> EventPublisher:
    """The retrainer's publisher (not started): its outbox first, then the registry's."""
    return EventPublisher(
        settings.topics().model_events,
        [retrainer_outbox(settings), registry.announcements()],
        connect=kafka_sender(settings.kafka(), settings.topics(), client_id),
    )


def announce_registry(
    settings: CommonSettings,
    registry: Registry,
    *,
    client_id: str,
    timeout_s: float = 15.0,
) -> tuple[int, int]:
    """Drain the registry's outbox from the caller's thread (a one-shot command): returns
    (announced, still waiting). What waits is announced later by the retrainer or the next
    command, so a command never fails because the broker is away."""
    publisher = EventPublisher(
        settings.topics().model_events,
        [registry.announcements()],
        connect=kafka_sender(settings.kafka(), settings.topics(), client_id),
    )
    try:
        publisher.drain(timeout_s)
        return publisher.delivered, len(publisher.waiting())
    finally:
        publisher.close(timeout_s=0.0)
