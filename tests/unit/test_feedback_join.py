"""The label/decision join over plain dicts: out-of-order arrival, replays, expiry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.events import Label
from streams.feedback.join import FeedbackJoin
from streams.feedback.records import RoutedLabel, ServedRow

pytestmark = pytest.mark.unit

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def served(tid: str, stored_at: float = 100.0) -> ServedRow:
    return ServedRow(
        transaction_id=tid,
        card_id="C1",
        terminal_id="T1",
        event_time=T0,
        amount=5.0,
        score=0.8,
        decision="review",
        model_version="v1",
        feature_set="fs",
        features=[1.5, 2.5],
        stored_at=stored_at,
    )


def routed(tid: str, offset: int, value: str = "fraud", arrived_at: float = 100.0) -> RoutedLabel:
    label = Label(transaction_id=tid, label=value, analyst="ana", labelled_at=T0)  # type: ignore[arg-type]
    return RoutedLabel(
        label=label,
        source_topic="fraud.labels",
        partition=0,
        offset=offset,
        original=b"{}",
        key=tid.encode(),
        arrived_at=arrived_at,
    )


def make(now: list[float]) -> FeedbackJoin:
    return FeedbackJoin({}, {}, retention_s=1000, label_wait_s=60, clock=lambda: now[0])


def test_label_after_decision_joins_at_once() -> None:
    join = make([100.0])
    assert join.on_decision(served("tx1")) == []
    pairs = join.on_label(routed("tx1", 0))
    assert [(p.served.transaction_id, p.label.label) for p in pairs] == [("tx1", "fraud")]
    assert pairs[0].served.features == [1.5, 2.5]


def test_label_before_decision_waits_and_is_released_once() -> None:
    join = make([100.0])
    assert join.on_label(routed("tx1", 0)) == []
    assert join.on_label(routed("tx1", 0)) == []  # a replayed label parks once
    assert join.on_label(routed("tx1", 1, "legit")) == []
    pairs = join.on_decision(served("tx1"))
    assert [p.label.label for p in pairs] == ["fraud", "legit"]
    assert join.pending == {}
    assert join.on_decision(served("tx1")) == []  # a replayed decision releases nothing


def test_replayed_decision_keeps_its_first_retention_clock() -> None:
    join = make([100.0])
    join.on_decision(served("tx1", stored_at=100.0))
    join.on_decision(served("tx1", stored_at=500.0))
    assert join.expire(now=1100.0).served_rows == 1
    assert join.served == {}


def test_labels_waiting_too_long_are_returned_for_the_dlq() -> None:
    now = [100.0]
    join = make(now)
    join.on_label(routed("tx-old", 0, arrived_at=100.0))
    join.on_label(routed("tx-new", 1, arrived_at=150.0))
    expired = join.expire(now=170.0)
    assert [r.label.transaction_id for r in expired.labels] == ["tx-old"]
    assert list(join.pending) == [b"tx-new"]


def test_served_rows_expire_after_retention_and_late_labels_then_wait() -> None:
    join = make([100.0])
    join.on_decision(served("tx1", stored_at=100.0))
    join.on_decision(served("tx2", stored_at=900.0))
    assert join.expire(now=1100.0).served_rows == 1
    assert join.on_label(routed("tx1", 0)) == []  # expired: parks, later dead-lettered
    assert len(join.on_label(routed("tx2", 1))) == 1


def test_order_is_rebuilt_from_the_table_after_recovery() -> None:
    join = make([100.0])
    join.on_decision(served("tx1", stored_at=100.0))
    recovered = FeedbackJoin(dict(join.served), {}, retention_s=1000, label_wait_s=60)
    assert recovered.expire(now=1100.0).served_rows == 1
