"""Promotions learnt from ``model.events``: the champion watcher is woken at once.

The registry's pointer stays the truth and the watcher's poll its fallback (a broker
outage, an event lost before it was announced); the event only makes the check happen
now instead of at the next poll. Every scorer must see every event, so each process reads
the topic in a consumer group of its own from the latest offset and commits nothing: an
event missed while a scorer was down is covered by the check it makes at start.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer

from streams.events import ModelEvent
from streams.kafka import Endpoint, consumer_config
from streams.serde import model_event_decoder

log = logging.getLogger("fraud.scorer.champion")
CHAMPION_KINDS = frozenset({"promoted", "rolled_back"})


class ModelEventsListener:
    """Reads ``model.events`` in a thread; calls ``wake`` for each champion change."""

    def __init__(
        self, kafka: Endpoint, topic: str, wake: Callable[[], None], *, member: str
    ) -> None:
        group = f"model-events.{member}.{uuid.uuid4().hex[:8]}"
        config = consumer_config(kafka, group_id=group, client_id=f"{member}-model-events")
        config["auto.offset.reset"] = "latest"
        self._consumer = Consumer(config)
        self._topic = topic
        self._wake = wake
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.heard = 0

    def start(self) -> None:
        self._consumer.subscribe([self._topic])
        self._thread = threading.Thread(target=self._run, name="model-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                # poll returns at the first record; consume(n, t) would wait t for n of them
                first = self._consumer.poll(0.5)
                messages = [] if first is None else [first, *self._consumer.consume(100, 0)]
            except Exception:  # the poll of the pointer still covers a broken listener
                log.exception("stage=reload model.events read failed")
                self._stop.wait(1.0)
                continue
            for message in messages:
                value = message.value()
                if message.error() is not None or value is None:
                    continue
                event = model_event_decoder.decode(value)
                if isinstance(event, ModelEvent) and event.kind in CHAMPION_KINDS:
                    self.heard += 1
                    log.info(
                        "stage=reload model.events: %s %s, checking the champion now",
                        event.kind,
                        event.model_version,
                    )
                    self._wake()
