"""Publishing ``ModelEvent``s to ``model.events`` (acknowledged before returning)."""

from __future__ import annotations

import logging

from services.settings import CommonSettings
from streams.events import ModelEvent
from streams.kafka import ensure_topics, producer_config
from streams.producer import AckedProducer
from streams.serde import encode

log = logging.getLogger("fraud.retrainer")


class EventPublisher:
    def __init__(self, settings: CommonSettings, client_id: str = "retrainer") -> None:
        self.topic = settings.topics().model_events
        ensure_topics(settings.kafka(), settings.topics(), only=["model.events"])
        self._producer = AckedProducer(producer_config(settings.kafka(), client_id=client_id))

    def __call__(self, event: ModelEvent) -> None:
        self._producer.produce(self.topic, encode(event), key=event.model_version)
        self._producer.wait_acked(timeout_s=10)
        log.info("stage=event %s %s %s", event.kind, event.model_version, event.reasons[:3])

    def close(self) -> None:
        self._producer.wait_acked(timeout_s=10)
