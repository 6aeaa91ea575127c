"""The retrainer's event publisher against a fake producer at the client boundary: a broker
that is away, refuses or answers late never loses an event, never blocks the caller, and
an event in flight is not sent twice while librdkafka still retries it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from models.registry import ModelRegistry
from services.retrainer.events import EventPublisher, EventSender
from streams.events import ModelEvent
from streams.outbox import Outbox
from streams.producer import Deliveries
from tests.unit.test_model_registry import bundle

pytestmark = pytest.mark.unit


class FakeBroker:
    """Records produced events; answers them on ``poll`` as told (ack, refuse, silence)."""

    def __init__(self) -> None:
        self.mode = "ack"
        self.sent: list[tuple[str, bytes, str, list[tuple[str, bytes]]]] = []
        self.acked: list[bytes] = []
        self._waiting: list[tuple[bytes, Deliveries]] = []

    def produce(
        self,
        topic: str,
        value: bytes,
        key: str,
        headers: list[tuple[str, bytes]],
        group: Deliveries,
    ) -> None:
        self.sent.append((topic, value, key, headers))
        group.outstanding += 1
        self._waiting.append((value, group))

    def poll(self, timeout_s: float) -> int:
        if self.mode == "silent":
            return 0
        answered, self._waiting = self._waiting, []
        for value, group in answered:
            group.outstanding -= 1
            if self.mode == "refuse":
                group.failures.append(("model.events", "Local: Message timed out"))
            else:
                self.acked.append(value)
        return len(answered)

    def flush(self, timeout_s: float) -> int:
        self.poll(timeout_s)
        return 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def metric(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    return 0.0 if value is None else value


def event(kind: str, version: str) -> ModelEvent:
    return ModelEvent(kind=kind, model_version=version, at=datetime.now(UTC))  # type: ignore[arg-type]


def publisher(
    tmp_path: Path, broker: FakeBroker, clock: Clock, connects: list[int]
) -> tuple[EventPublisher, ModelRegistry]:
    registry = ModelRegistry(tmp_path / "registry")

    def connect() -> EventSender:
        connects.append(1)
        if broker.mode == "down":
            raise ConnectionError("broker at 127.0.0.1:1 unavailable")
        return broker

    return (
        EventPublisher(
            "p.model.events",
            [Outbox(tmp_path / "retrainer" / "outbox.jsonl"), registry.announcements()],
            connect=connect,
            clock=clock,
        ),
        registry,
    )


def test_events_wait_through_an_outage_and_go_out_once_when_the_broker_returns(
    tmp_path: Path,
) -> None:
    broker, clock, connects = FakeBroker(), Clock(), []
    broker.mode = "down"
    events, registry = publisher(tmp_path, broker, clock, connects)
    failures = metric("fraud_retrainer_publish_failures_total")

    events(event("drift_report", "v0001"))  # the caller never waits for the broker
    registry.register(bundle("one"))
    registry.promote("v0001", "gates passed")
    assert events.step() == "backoff"
    assert metric("fraud_retrainer_publish_failures_total") == failures + 1
    assert metric("fraud_retrainer_outbox_events") == 3
    assert events.step() == "backoff"  # backing off: no new attempt yet
    assert len(connects) == 1

    broker.mode = "ack"
    clock.now += 60
    states = [events.step() for _ in range(6)]
    assert states[-1] == "idle"
    kinds = [(v.decode().split('"kind":"')[1].split('"')[0], k) for _, v, k, _ in broker.sent]
    assert kinds == [
        ("drift_report", "v0001"),
        ("registered", "v0001"),
        ("promoted", "v0001"),
    ]
    ids = [dict(h)["event_id"] for _, _, _, h in broker.sent]
    assert len(set(ids)) == 3 and all(ids)
    assert metric("fraud_retrainer_outbox_events") == 0
    assert events.waiting() == []


def test_an_unanswered_batch_is_not_sent_again_and_a_refused_one_is(tmp_path: Path) -> None:
    broker, clock, connects = FakeBroker(), Clock(), []
    events, _ = publisher(tmp_path, broker, clock, connects)
    events(event("quality_report", "v0001"))

    broker.mode = "silent"  # the broker took the connection but does not answer
    assert events.step() == "sent"
    for _ in range(10):
        clock.now += 1
        assert events.step() == "waiting"
    assert len(broker.sent) == 1  # librdkafka retries it; we do not send a copy

    broker.mode = "refuse"  # message.timeout.ms ran out: refused, so we send again
    assert events.step() == "backoff"
    broker.mode = "ack"
    clock.now += 1
    assert [events.step() for _ in range(3)] == ["sent", "sent", "idle"]
    assert len(broker.sent) == 2 and len(broker.acked) == 1
    assert events.delivered == 1
    assert len(connects) == 2  # a refused batch gets a fresh producer (one may turn fatal)


def test_a_restarted_publisher_sends_only_what_was_not_acknowledged(tmp_path: Path) -> None:
    broker, clock, connects = FakeBroker(), Clock(), []
    first, _ = publisher(tmp_path, broker, clock, connects)
    first(event("drift_report", "v0001"))
    assert first.drain(5.0)
    first.close(timeout_s=0.1)
    first(event("drift_report", "v0002"))  # queued, then the process died
    broker.sent.clear()

    restarted, _ = publisher(tmp_path, broker, clock, connects)
    assert [e.model_version for e in restarted.waiting()] == ["v0002"]
    assert restarted.drain(5.0)
    assert [k for _, _, k, _ in broker.sent] == ["v0002"]
