"""A scorer hears promotions on ``model.events`` (real broker) and checks its champion at
once; other model events do not wake it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer

from services.scorer.model_events import ModelEventsListener
from services.stack.process import wait_until
from streams.events import ModelEvent
from streams.kafka import producer_config
from streams.serde import encode
from streams.topics import Topics

pytestmark = pytest.mark.integration


def test_a_promotion_wakes_the_watcher_and_a_drift_report_does_not(
    kafka_bootstrap: str, topics: Topics
) -> None:
    woken: list[float] = []
    lock = threading.Lock()

    def wake() -> None:
        with lock:
            woken.append(time.monotonic())

    listener = ModelEventsListener(kafka_bootstrap, topics.model_events, wake, member="t-scorer")
    listener.start()
    producer = Producer(producer_config(kafka_bootstrap, client_id="t-model-events"))
    sent = 0
    try:
        # the listener starts at the latest offset: send until its assignment caught one
        def announce_and_check() -> bool:
            nonlocal sent
            at = datetime.now(UTC)
            for kind in ("drift_report", "promoted"):
                event = ModelEvent(kind=kind, model_version="v0002", at=at, event_id=f"e{sent}")
                producer.produce(topics.model_events, encode(event), key=b"v0002")
            producer.flush(10)
            sent += 1
            return wait_until(lambda: bool(woken), 1.0)

        assert wait_until(announce_and_check, 60, interval_s=0)
    finally:
        listener.stop()
    with lock:
        # one key, one partition: each promotion was read after its drift report, so a
        # drift report that woke the watcher would make the wake-ups outnumber promotions
        assert len(woken) == listener.heard >= 1
