"""The scorer's resend loop (services/scorer/delivery.py) against scripted fakes: after a
failure it waits for the broker, checks the batch is still its own, sends again only the
failed records not already in the log, and stops - without resending - when the batch is
no longer its own or the failure is permanent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from confluent_kafka import KafkaError

import services.scorer.delivery as delivery
from services.scorer.faults import FaultState
from streams.errors import DeliveryRefused, MembershipLost
from streams.producer import Deliveries, FailedRecord, _delivery_failed

pytestmark = pytest.mark.unit


def record(value: bytes, code: int = KafkaError._MSG_TIMED_OUT) -> FailedRecord:
    return FailedRecord("scored", 1, b"card", value, None, 1_000, code, KafkaError(code).str())


class ScriptedProducer:
    """Each wait answers with the next scripted failures (none: all acknowledged)."""

    def __init__(self, rounds: list[list[FailedRecord]]) -> None:
        self.rounds = rounds
        self.resent: list[list[bytes]] = []
        self.waits = 0

    def wait_for(self, group: Deliveries, timeout_s: float, idle: Any = None) -> None:
        self.waits += 1
        if idle is not None:
            idle()
        failures = self.rounds.pop(0) if self.rounds else []
        if failures:
            group.failed = list(failures)
            raise _delivery_failed(failures)

    def resend(self, group: Deliveries, records: Sequence[FailedRecord]) -> None:
        group.failed = []
        self.resent.append([r.value for r in records])


def _deliver(producer: ScriptedProducer, *, still_ours: bool = True) -> FaultState:
    faults = FaultState()
    delivery.deliver(
        producer,  # type: ignore[arg-type]
        Deliveries(),
        bootstrap="broker:9092",
        faults=faults,
        keep_alive=lambda: None,
        still_ours=lambda: still_ours,
        running=lambda: True,
        answer_timeout_s=1.0,
    )
    return faults


@pytest.fixture(autouse=True)
def broker_back(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The broker answers; the records in ``in_log`` landed before their ack was lost."""
    in_log: list[bytes] = []
    monkeypatch.setattr(delivery, "broker_reachable", lambda *a, **k: True)
    monkeypatch.setattr(delivery, "landed", lambda b, records: [r.value in in_log for r in records])
    return in_log


def test_only_failed_records_missing_from_the_log_are_sent_again(broker_back: list[bytes]) -> None:
    broker_back.append(b"d2")  # written, its acknowledgement lost
    producer = ScriptedProducer([[record(b"d1"), record(b"d2"), record(b"d3")], [record(b"d3")]])
    faults = _deliver(producer)
    assert producer.resent == [[b"d1", b"d3"], [b"d3"]]
    assert producer.waits == 3
    assert not faults.active("broker")  # began at the failure, ended at the last ack


def test_a_batch_no_longer_its_own_is_not_resent() -> None:
    producer = ScriptedProducer([[record(b"d1")]])
    with pytest.raises(MembershipLost):
        _deliver(producer, still_ours=False)
    assert producer.resent == []


def test_a_permanent_failure_stops_at_once() -> None:
    producer = ScriptedProducer([[record(b"d1", KafkaError.TOPIC_AUTHORIZATION_FAILED)]])
    with pytest.raises(DeliveryRefused):
        _deliver(producer)
    assert producer.resent == [] and producer.waits == 1


def test_a_topic_the_broker_confirms_gone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Admin:
        def list_topics(self, timeout: float) -> Any:
            return type("Metadata", (), {"topics": {"review": None}})()

    monkeypatch.setattr(delivery, "admin_client", lambda *a, **k: Admin())
    producer = ScriptedProducer([[record(b"d1", KafkaError.UNKNOWN_TOPIC_OR_PART)]])
    with pytest.raises(DeliveryRefused, match="scored does not exist"):
        _deliver(producer)
    assert producer.resent == []


def test_a_batch_given_up_during_the_wait_stops_the_wait_without_resending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rebalance callback that runs inside the wait's poll may give the batch up; the
    wait then ends (the caller sees the batch closed) and nothing is sent again."""
    from streams.errors import DeliveryFailed

    closed = [False]
    monkeypatch.setattr(delivery, "broker_reachable", lambda *a, **k: closed[0])

    def keep_alive() -> None:
        closed[0] = True  # the callback ran: the batch is someone else's now

    producer = ScriptedProducer([[record(b"d1")]])
    with pytest.raises(DeliveryFailed):
        delivery.deliver(
            producer,  # type: ignore[arg-type]
            Deliveries(),
            bootstrap="broker:9092",
            faults=FaultState(),
            keep_alive=keep_alive,
            still_ours=lambda: not closed[0],
            running=lambda: not closed[0],
            answer_timeout_s=1.0,
        )
    assert producer.resent == []
