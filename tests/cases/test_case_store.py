"""The case store and workflow, the same assertions on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import func, select

from services.cases.errors import CaseConflict, CaseNotFound
from services.cases.models import AuditEntry, LabelOutbox
from services.cases.store import CaseStore, QueueFilter
from services.cases.workflow import Workflow
from streams.events import Label
from tests.cases.conftest import BACKENDS, FakeClock, decision, open_store, review_case


def _outbox(store: CaseStore) -> list[Label]:
    with store.sessions() as session:
        rows = session.scalars(select(LabelOutbox).order_by(LabelOutbox.outbox_id))
        return [msgspec.json.decode(r.payload, type=Label) for r in rows]


def test_replayed_topic_creates_nothing_twice(store: CaseStore) -> None:
    history = [decision(i, amount=20.0 + i) for i in range(5)]
    cases = [review_case(10 + i, amount=500.0) for i in range(3)]
    first = store.ingest(cases, history)
    again = store.ingest(cases, history)
    assert (first.created, first.duplicates) == (3, 0)
    assert (again.created, again.duplicates) == (0, 3)
    queue = store.queue()
    assert [c["case_id"] for c in queue] == ["case0010", "case0011", "case0012"]
    with store.sessions() as session:
        created = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "created")
        )
    assert created == 3
    page = store.case("case0010")
    assert page is not None
    assert page["reasons"][0]["typical"] == 22.0  # median of 20..24
    assert [h["transaction_id"] for h in page["card_history"]] == [
        "tx0004",
        "tx0003",
        "tx0002",
        "tx0001",
        "tx0000",
    ]
    assert {c["case_id"] for c in page["linked_cases"]} == {"case0011", "case0012"}


def test_a_case_stored_before_its_cards_decisions_shows_their_typical_value(
    store: CaseStore,
) -> None:
    # the review and scored topics are read independently: the case can come first
    store.ingest([review_case(10, amount=500.0)])
    before = store.case("case0010")
    assert before is not None
    assert before["reasons"][0]["typical"] is None
    store.ingest([], [decision(i, amount=30.0 + i) for i in range(3)])
    after = store.case("case0010")
    assert after is not None
    assert after["reasons"][0]["typical"] == 31.0  # median of 30, 31, 32
    assert len(after["card_history"]) == 3


def test_queue_sorted_by_priority_then_age_and_filtered(store: CaseStore) -> None:
    store.ingest(
        [
            review_case(1, card="A", amount=100.0, score=0.5),  # 50
            review_case(2, card="B", amount=1000.0, score=0.9),  # 900
            review_case(3, card="C", amount=100.0, score=0.5),  # 50, younger
        ]
    )
    assert [c["case_id"] for c in store.queue()] == ["case0002", "case0001", "case0003"]
    cheap = store.queue(QueueFilter(max_amount=500.0))
    assert [c["case_id"] for c in cheap] == ["case0001", "case0003"]
    assert store.queue_ids(QueueFilter(max_amount=500.0)) == ["case0001", "case0003"]


def test_a_queue_row_is_the_cases_summary(store: CaseStore) -> None:
    case = review_case(1, card="A", amount=120.0)
    usd = msgspec.structs.replace(
        case, transaction=msgspec.structs.replace(case.transaction, currency="USD")
    )
    store.ingest([usd, review_case(2, card="B")])
    Workflow(store).claim("case0002", "ana")
    queued = {c["case_id"]: c for c in store.queue()}
    assert queued["case0001"]["currency"] == "USD"
    assert queued["case0002"]["currency"] == "EUR"
    assert queued["case0002"]["state"] == "claimed" and queued["case0002"]["claimed_by"] == "ana"
    for case_id, row in queued.items():
        page = store.case(case_id)
        assert page is not None
        assert {k: page[k] for k in row} == row


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_concurrent_claims_exactly_one_wins(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    stores = [open_store(backend, tmp_path, request, clock=clock) for _ in range(2)]
    stores[0].ingest([review_case(1)])
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def claim(analyst: str, store: CaseStore) -> None:
        barrier.wait()
        try:
            Workflow(store).claim("case0001", analyst)
            results[analyst] = "won"
        except CaseConflict as exc:
            results[analyst] = f"refused: {exc.holder}"

    threads = [
        threading.Thread(target=claim, args=(name, s))
        for name, s in zip(("ana", "bo"), stores, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert sorted(results.values())[1] == "won"
    winner = next(a for a, r in results.items() if r == "won")
    loser = next(a for a, r in results.items() if r != "won")
    assert results[loser] == f"refused: {winner}"


def test_expired_lease_returns_the_case(store: CaseStore, clock: FakeClock) -> None:
    store.ingest([review_case(1)])
    flow = Workflow(store)
    flow.claim("case0001", "ana")
    with pytest.raises(CaseConflict, match="claimed by ana"):
        flow.claim("case0001", "bo")
    assert store.queue()[0]["state"] == "claimed"
    clock.advance(599)
    assert flow.claim("case0001", "ana").replayed  # renewal: 600 s from now
    clock.advance(599)
    assert store.queue()[0]["claimed_by"] == "ana"
    clock.advance(2)
    assert (store.queue()[0]["state"], store.queue()[0]["claimed_by"]) == ("open", None)
    assert store.stats()["depth"]["open"] == 1
    assert flow.claim("case0001", "bo").state == "claimed"
    with pytest.raises(CaseConflict):
        flow.verdict("case0001", "ana", "fraud")


def test_retried_verdict_emits_exactly_one_label(store: CaseStore, clock: FakeClock) -> None:
    store.ingest([review_case(1)])
    flow = Workflow(store)
    flow.claim("case0001", "ana")
    clock.advance(30)
    first = flow.verdict("case0001", "ana", "legit", note="card 4111 1111 1111 1111 was fine")
    retry = flow.verdict("case0001", "ana", "legit")
    assert (first.state, first.replayed, retry.replayed) == ("resolved", False, True)
    assert retry.label == first.label
    labels = _outbox(store)
    assert len(labels) == 1
    assert (labels[0].transaction_id, labels[0].label, labels[0].analyst) == (
        "tx0001",
        "legit",
        "ana",
    )
    assert labels[0].labelled_at == clock.now
    assert labels[0].note == "card [card number removed] was fine"
    assert store.queue() == []
    with pytest.raises(CaseConflict, match="resolved already"):
        flow.verdict("case0001", "bo", "fraud")
    assert len(_outbox(store)) == 1


def test_a_large_decline_needs_a_second_approver(store: CaseStore) -> None:
    store.ingest([review_case(1, amount=5000.0)])
    flow = Workflow(store)
    flow.claim("case0001", "ana")
    proposed = flow.verdict("case0001", "ana", "fraud")
    assert (proposed.state, proposed.action) == ("escalated", "proposed")
    assert flow.verdict("case0001", "ana", "fraud").replayed
    assert _outbox(store) == []
    flow.claim("case0001", "bo")
    done = flow.verdict("case0001", "bo", "fraud")
    assert done.state == "resolved"
    (label,) = _outbox(store)
    assert (label.analyst, label.note) == ("bo", "proposed by ana, approved by bo")


def test_notes_are_redacted_and_everything_is_audited(store: CaseStore) -> None:
    store.ingest([review_case(1)])
    flow = Workflow(store)
    flow.claim("case0001", "ana")
    flow.note("case0001", "ana", "customer read out 5500-0000-0000-0004 on the phone")
    flow.verdict("case0001", "ana", "needs_info")
    flow.release("case0001", "ana")
    page = store.case("case0001")
    assert page is not None
    assert page["notes"][0]["text"] == "customer read out [card number removed] on the phone"
    assert [a["action"] for a in page["audit"]] == ["created", "claimed", "note", "needs_info"]
    assert page["state"] == "needs_info"
    with pytest.raises(CaseNotFound):
        flow.claim("nope", "ana")


def test_erasure_removes_the_cards_cases_and_decisions(store: CaseStore) -> None:
    from services.cases.erasure import CaseStorePart
    from services.erasure.parts import Subject

    store.ingest(
        [review_case(1, card="C1"), review_case(2, card="C2")],
        [decision(10, card="C1"), decision(11, card="C2")],
    )
    flow = Workflow(store)
    flow.note("case0001", "ana", "called")
    flow.verdict("case0001", "ana", "fraud")
    subject = Subject("cu-C1", {"C1"})
    removed = CaseStorePart(store).erase(subject)
    assert removed == {"cases": 1, "notes": 1, "labels": 1, "card_decisions": 1}
    assert subject.transaction_ids == {"tx0001", "tx0010"}
    assert store.case("case0001") is None
    assert [c["case_id"] for c in store.queue()] == ["case0002"]
    assert CaseStorePart(store).erase(Subject("cu-C1", {"C1"}))["cases"] == 0


def test_the_demo_oracle_works_the_queue_through_the_workflow(
    store: CaseStore, clock: FakeClock
) -> None:
    from services.cases.oracle import CaseOracle

    class Truth:
        def read_batch(self, ids: object) -> dict[str, tuple[int, int]]:
            return {"tx0001": (1, 0), "tx0002": (0, 0), "tx0004": (1, 0)}

    store.ingest(
        [
            review_case(1),
            review_case(2),
            review_case(3),  # no ground truth: stays in the queue
            review_case(4, amount=5000.0),  # needs a second approver
        ]
    )
    Workflow(store).claim("case0002", "ana")  # a human holds it: the oracle keeps off
    oracle = CaseOracle(store, Truth(), delay_s=60.0)
    clock.now = datetime(2026, 3, 1, 11, 0, 30, tzinfo=UTC)
    assert oracle.step() == 0  # not due yet
    clock.advance(3600)
    assert oracle.step() == 2
    labels = {x.transaction_id: (x.label, x.source, x.analyst) for x in _outbox(store)}
    assert labels == {
        "tx0001": ("fraud", "oracle", "oracle"),
        "tx0004": ("fraud", "oracle", "oracle-approver"),
    }
    assert oracle.stats.unknown == 1
    assert {c["case_id"] for c in store.queue()} == {"case0002", "case0003"}
