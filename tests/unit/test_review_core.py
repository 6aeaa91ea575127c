"""Review: answer parsing, the terminal loop over a fake session, file import, chargebacks,
the bounded card history."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from services.review.history import CardHistory
from services.review.importer import LabelFileError, read_label_file
from services.review.oracle import chargeback_labels
from services.review.session import PendingCase
from services.review.tui import parse_answer, run_terminal
from streams.events import Decision, ReviewCase, Transaction

pytestmark = pytest.mark.unit

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def case(i: int) -> PendingCase:
    tx = Transaction(
        transaction_id=f"tx{i}",
        event_time=T0,
        card_id="C1",
        customer_id="U1",
        terminal_id="T1",
        amount=20.0 + i,
    )
    rc = ReviewCase(
        case_id=f"case{i}", transaction=tx, score=0.7, decision="review", model_version="v1"
    )
    return PendingCase(rc, partition=0, offset=i, received_at=0.0)


def decision(i: int, outcome: str = "approve") -> Decision:
    return Decision(
        transaction_id=f"tx{i}",
        card_id="C1",
        terminal_id="T1",
        event_time=T0,
        amount=10.0,
        score=0.1,
        decision=outcome,  # type: ignore[arg-type]
        model_version="v1",
        feature_set="fs",
        features=[0.0],
    )


class FakeSession:
    def __init__(self, batches: list[list[PendingCase]]) -> None:
        self.batches = batches
        self.verdicts: list[tuple[str, str, str | None]] = []

    def next_cases(self, timeout_s: float = 1.0) -> list[PendingCase]:
        return self.batches.pop(0) if self.batches else []

    def verdict(self, pending: PendingCase, verdict: str, note: str | None = None) -> None:
        self.verdicts.append((pending.transaction_id, verdict, note))


def test_parse_answer() -> None:
    assert parse_answer("f") == ("fraud", None)
    assert parse_answer("L  looks fine ") == ("legit", "looks fine")
    assert parse_answer("s") == ("skip", None)
    assert parse_answer("q") == (None, None)
    with pytest.raises(ValueError, match="unknown key"):
        parse_answer("x")


def test_terminal_loop_records_each_verdict_and_reprompts_on_bad_keys() -> None:
    session = FakeSession([[case(1), case(2)], [case(3)]])
    out = io.StringIO()
    answers = iter(["f stolen card", "?", "l", "s", "q"])
    count = run_terminal(
        session,
        CardHistory(),
        answers,
        Console(file=out, width=120),
        idle_polls=2,
    )
    assert count == 3
    assert session.verdicts == [
        ("tx1", "fraud", "stolen card"),
        ("tx2", "legit", None),
        ("tx3", "skip", None),
    ]
    text = out.getvalue()
    assert "case case1" in text and "unknown key '?'" in text


def test_terminal_stops_at_quit_without_labelling_the_case() -> None:
    session = FakeSession([[case(1), case(2)]])
    count = run_terminal(
        session,
        CardHistory(),
        iter(["f", "q"]),
        Console(file=io.StringIO()),
    )
    assert count == 1
    assert session.verdicts == [("tx1", "fraud", None)]


def test_label_file_import_validates_rows(tmp_path: Path) -> None:
    path = tmp_path / "cb.csv"
    path.write_text(
        "transaction_id,label,labelled_at,analyst\n"
        "tx1,fraud,2024-05-03T10:00:00+00:00,bank\n"
        "tx2,LEGIT,,\n"
        "tx3,maybe,,\n"
    )
    parsed = read_label_file(path, source="chargeback", default_analyst="ops", now=T0)
    assert [(lb.transaction_id, lb.label, lb.analyst, lb.source) for lb in parsed.labels] == [
        ("tx1", "fraud", "bank", "chargeback"),
        ("tx2", "legit", "ops", "chargeback"),
    ]
    assert parsed.labels[0].labelled_at == datetime(2024, 5, 3, 10, tzinfo=UTC)
    assert parsed.labels[1].labelled_at == T0
    assert [n for n, _ in parsed.rejected] == [3]


def test_label_file_needs_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,label\n1,fraud\n")
    with pytest.raises(LabelFileError, match="transaction_id"):
        read_label_file(path, source="chargeback", default_analyst="ops")


class DictTruth:
    def __init__(self, truth: dict[str, tuple[int, int]]) -> None:
        self.truth = truth

    def read_batch(self, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        return {i: self.truth[i] for i in ids if i in self.truth}


def test_chargebacks_label_only_approved_true_fraud() -> None:
    truth = DictTruth({"tx1": (1, 2), "tx2": (0, 0), "tx3": (1, 1)})
    decisions = [decision(1), decision(2), decision(3, "review"), decision(4)]
    labels = chargeback_labels(decisions, truth, T0)
    assert [(lb.transaction_id, lb.label, lb.source) for lb in labels] == [
        ("tx1", "fraud", "chargeback")
    ]


def test_card_history_is_bounded() -> None:
    history = CardHistory(max_cards=2, per_card=2)
    for i in range(3):
        history.add(decision(i))
    assert [h.transaction_id for h in history.recent("C1")] == ["tx1", "tx2"]
    other = Decision(
        **{**{f: getattr(decision(9), f) for f in Decision.__struct_fields__}, "card_id": "C2"}
    )
    third = Decision(
        **{**{f: getattr(decision(8), f) for f in Decision.__struct_fields__}, "card_id": "C3"}
    )
    history.add(other)
    history.add(third)
    assert len(history) == 2
    assert history.recent("C1") == []
