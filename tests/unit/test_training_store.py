"""Training store: idempotent appends, later label wins, audit of every label, day layout."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.training_store import TrainingRow, TrainingStore, TrainingStoreError

pytestmark = pytest.mark.unit

T0 = datetime(2024, 5, 1, 23, 59, 0, tzinfo=UTC)


def row(
    transaction_id: str,
    *,
    is_fraud: bool = True,
    labelled_at: datetime = T0 + timedelta(hours=1),
    source: str = "analyst",
    analyst: str = "ana",
    event_time: datetime = T0,
    seed: float = 0.0,
    card_id: str = "C1",
) -> TrainingRow:
    return TrainingRow(
        transaction_id=transaction_id,
        event_time=event_time,
        card_id=card_id,
        terminal_id="T1",
        amount=12.5,
        is_fraud=is_fraud,
        label_source=source,  # type: ignore[arg-type]
        analyst=analyst,
        labelled_at=labelled_at,
        model_version="v1",
        score=0.75,
        decision="review",
        feature_set=FEATURE_SET_ID,
        features=[seed + j * 0.5 for j in range(len(FEATURE_NAMES))],
    )


def test_rows_round_trip_exactly_with_their_served_vector(tmp_path: Path) -> None:
    store = TrainingStore(tmp_path)
    result = store.append([row("tx1", seed=0.1), row("tx2", is_fraud=False, seed=1 / 3)])
    assert (result.written, result.duplicates, result.audited) == (2, 0, 2)

    frame = store.read()
    assert list(frame["transaction_id"]) == ["tx1", "tx2"]
    assert list(frame["is_fraud"]) == [1, 0]
    assert list(frame.columns[-len(FEATURE_NAMES) :]) == list(FEATURE_NAMES)
    served = frame.loc[1, list(FEATURE_NAMES)].to_numpy(dtype=float).tolist()
    assert served == [1 / 3 + j * 0.5 for j in range(len(FEATURE_NAMES))]
    assert frame.loc[0, "event_time"] == T0
    assert frame.loc[0, "labelled_at"] == T0 + timedelta(hours=1)
    assert frame.loc[0, "model_version"] == "v1"
    assert frame.loc[0, "label_source"] == "analyst"
    assert sorted(p.name for p in (tmp_path / "rows").iterdir()) == ["day=2024-05-01"]


def test_partitioned_by_event_day(tmp_path: Path) -> None:
    store = TrainingStore(tmp_path)
    store.append([row("a"), row("b", event_time=T0 + timedelta(minutes=2))])
    days = sorted(p.name for p in (tmp_path / "rows").iterdir())
    assert days == ["day=2024-05-01", "day=2024-05-02"]
    assert list(store.read(since=T0 + timedelta(minutes=1))["transaction_id"]) == ["b"]
    assert list(store.read(until=T0 + timedelta(minutes=1))["transaction_id"]) == ["a"]


def test_replay_writes_nothing_twice(tmp_path: Path) -> None:
    rows = [row("tx1"), row("tx2"), row("tx1")]  # a duplicate inside the batch too
    first = TrainingStore(tmp_path).append(rows)
    assert (first.written, first.duplicates) == (2, 1)
    reopened = TrainingStore(tmp_path)  # a restarted processor replays the same labels
    again = reopened.append(rows)
    assert (again.written, again.duplicates, again.audited) == (0, 3, 0)
    assert len(reopened.read()) == 2
    assert len(reopened.audit()) == 2
    assert len(list((tmp_path / "rows").rglob("*.parquet"))) == 1


def test_a_later_analyst_label_does_not_overturn_a_chargeback(tmp_path: Path) -> None:
    store = TrainingStore(tmp_path)
    store.append([row("tx1", is_fraud=True, labelled_at=T0, source="chargeback", analyst="cb")])
    store.append([row("tx1", is_fraud=False, labelled_at=T0 + timedelta(days=30))])
    store.append([row("tx2", is_fraud=False, labelled_at=T0)])
    store.append([row("tx2", is_fraud=True, labelled_at=T0 + timedelta(days=1))])
    frame = store.read().set_index("transaction_id")
    assert frame.loc["tx1", "is_fraud"] == 1 and frame.loc["tx1", "label_source"] == "chargeback"
    assert frame.loc["tx2", "is_fraud"] == 1  # same rank: the later one
    assert store.count_since(T0 + timedelta(days=10)) == 0  # the analyst label lost


def test_later_label_wins_and_audit_keeps_the_superseded_one(tmp_path: Path) -> None:
    store = TrainingStore(tmp_path)
    late = T0 + timedelta(days=3)
    store.append([row("tx1", is_fraud=False, labelled_at=T0 + timedelta(hours=1))])
    store.append([row("tx1", is_fraud=True, labelled_at=late, source="chargeback", analyst="cb")])
    # an older label arriving after the newer one does not win
    store.append([row("tx1", is_fraud=False, labelled_at=T0 + timedelta(hours=2))])

    frame = store.read()
    assert len(frame) == 1
    assert frame.loc[0, "is_fraud"] == 1
    assert frame.loc[0, "label_source"] == "chargeback"
    assert frame.loc[0, "labelled_at"] == late

    trail = store.audit()
    assert list(trail["label"]) == ["legit", "fraud", "legit"]
    assert list(trail["superseded"]) == [True, False, True]
    assert store.count_since(late) == 1
    assert store.count_since(late + timedelta(seconds=1)) == 0


def test_same_label_time_ties_go_to_the_one_applied_last(tmp_path: Path) -> None:
    store = TrainingStore(tmp_path)
    store.append([row("tx1", is_fraud=True, analyst="ana")])
    store.append([row("tx1", is_fraud=False, analyst="bob")])
    assert store.read().loc[0, "analyst"] == "bob"


def test_crash_between_parquet_and_audit_heals_on_replay(tmp_path: Path) -> None:
    store = TrainingStore(tmp_path)
    store.append([row("tx1")])
    for path in (tmp_path / "audit").iterdir():
        path.write_text("")  # as if the process died before the audit line was written
    replay = TrainingStore(tmp_path).append([row("tx1")])
    assert (replay.written, replay.audited) == (0, 1)
    assert len(TrainingStore(tmp_path).audit()) == 1


def test_count_since_counts_winning_labels_by_label_time(tmp_path: Path) -> None:
    store = TrainingStore(tmp_path)
    store.append([row(f"tx{i}", labelled_at=T0 + timedelta(hours=i)) for i in range(1, 6)])
    assert store.count_since(T0 + timedelta(hours=3)) == 3
    assert len(store.read(since=T0 + timedelta(hours=4), by="labelled_at")) == 2


def test_empty_store_reads_empty_frames(tmp_path: Path) -> None:
    store = TrainingStore(tmp_path)
    assert store.read().empty
    assert store.count_since(T0) == 0
    assert store.audit().empty


def test_wrong_feature_count_is_refused(tmp_path: Path) -> None:
    bad = replace(row("tx1"), features=[1.0])
    with pytest.raises(TrainingStoreError, match="1 features"):
        TrainingStore(tmp_path).append([bad])


def test_erasing_cards_removes_rows_and_audit_and_keeps_them_out(tmp_path: Path) -> None:
    store = TrainingStore(tmp_path)
    store.append([row("tx1", card_id="K1"), row("tx2", card_id="K2"), row("tx3", card_id="K1")])
    erased = store.erase(["K1"])
    assert (erased.rows, erased.audit_lines) == (2, 2)
    assert erased.transaction_ids == {"tx1", "tx3"}
    assert list(store.read()["transaction_id"]) == ["tx2"]
    assert set(store.audit()["transaction_id"]) == {"tx2"}
    assert "K1" not in (tmp_path / "erased-cards.json").read_text()  # digests, not ids
    replay = store.append([row("tx1", card_id="K1"), row("tx4", card_id="K3")])
    assert replay.written == 1  # the erased card's replayed row is dropped
    assert TrainingStore(tmp_path).erase(["K1"]).rows == 0  # idempotent, in a new process too
    assert TrainingStore(tmp_path).append([row("tx5", card_id="K1")]).written == 0


def _tear(path: Path) -> None:
    """What a power loss does to a part written without fsync: its tail is gone."""
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(data[: len(data) // 2])


def test_a_torn_part_is_quarantined_and_its_labels_listed_as_missing_rows(
    tmp_path: Path,
) -> None:
    store = TrainingStore(tmp_path)
    store.append([row("tx1"), row("tx2", is_fraud=False)])
    store.append([row("tx3")])
    first, second = sorted(store.rows_dir.rglob("part-*.parquet"))
    _tear(first)
    seen: list[tuple[Path, str]] = []

    reopened = TrainingStore(tmp_path, on_quarantine=lambda path, why: seen.append((path, why)))
    assert list(reopened.read()["transaction_id"]) == ["tx3"]  # reading goes on without it
    assert [p.name for p in reopened.quarantine.parts()] == [first.name]
    assert not first.exists() and second.exists()
    assert len(seen) == 1 and seen[0][0].name == first.name and "ArrowInvalid" in seen[0][1]
    lines = (tmp_path / "quarantine" / "quarantine.jsonl").read_text().splitlines()
    assert len(lines) == 1 and first.name in lines[0]

    missing = reopened.missing_rows()
    assert sorted((m["transaction_id"], m["label"]) for m in missing) == [
        ("tx1", "fraud"),
        ("tx2", "legit"),
    ]
    # landing them again writes their rows, not a second audit line
    again = reopened.append([row("tx1"), row("tx2", is_fraud=False), row("tx3")])
    assert (again.written, again.duplicates, again.audited) == (2, 1, 0)
    assert reopened.missing_rows() == []
    assert list(TrainingStore(tmp_path).read()["transaction_id"]) == ["tx1", "tx2", "tx3"]
    assert len(TrainingStore(tmp_path).audit()) == 3


def test_a_part_quarantined_by_another_reader_is_noticed_by_the_writer(tmp_path: Path) -> None:
    writer = TrainingStore(tmp_path)
    writer.append([row("tx1")])
    assert writer.missing_rows() == [] and not writer.refresh()
    (part,) = writer.rows_dir.rglob("part-*.parquet")
    _tear(part)
    assert TrainingStore(tmp_path).count_since(T0) == 0  # the retrainer reads, moves it
    assert writer.refresh()
    assert [m["transaction_id"] for m in writer.missing_rows()] == ["tx1"]


def test_parts_are_written_whole_without_temporary_leftovers(tmp_path: Path) -> None:
    store = TrainingStore(tmp_path)
    store.append([row("tx1")])
    files = [p.name for p in store.rows_dir.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].startswith("part-") and files[0].endswith(".parquet")
