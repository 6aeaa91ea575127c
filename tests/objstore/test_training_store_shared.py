"""The training store on s3:// (moto) and, the same tests, on a local folder: what the
feedback processor writes, a retrainer on another host reads back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from features.definitions import FEATURE_NAMES
from features.training_store import TrainingStore
from streams.object_store import ObjectStore
from tests.objstore.conftest import Location
from tests.unit.test_training_store import T0, row

pytestmark = pytest.mark.objstore


def store_at(where: Location) -> TrainingStore:
    return TrainingStore(where.url, endpoint_url=where.endpoint_url)


def test_written_parts_read_back_on_another_reader(location: Location) -> None:
    writer = store_at(location)
    first = writer.append([row("tx1", seed=0.1), row("tx2", is_fraud=False, seed=1 / 3)])
    next_day = T0 + timedelta(days=1)
    second = writer.append(
        [row("tx3", event_time=next_day, labelled_at=next_day + timedelta(hours=1))]
    )
    replay = writer.append([row("tx1", seed=0.1)])
    assert [(r.written, r.duplicates, r.audited) for r in (first, second, replay)] == [
        (2, 0, 2),
        (1, 0, 1),
        (0, 1, 0),
    ]

    retrainer = store_at(location)  # a fresh process's view: its indexes built from the store
    frame = retrainer.read()
    assert list(frame["transaction_id"]) == ["tx1", "tx2", "tx3"]
    assert list(frame["is_fraud"]) == [1, 0, 1]
    served = frame.loc[1, list(FEATURE_NAMES)].to_numpy(dtype=float).tolist()
    assert served == [1 / 3 + j * 0.5 for j in range(len(FEATURE_NAMES))]
    assert frame.loc[0, "event_time"] == T0
    assert list(retrainer.read(since=next_day)["transaction_id"]) == ["tx3"]
    assert retrainer.count_since(next_day) == 1
    assert list(retrainer.audit()["transaction_id"]) == ["tx1", "tx2", "tx3"]
    assert retrainer.append([row("tx2", is_fraud=False, seed=1 / 3)]).written == 0
    if location.on_s3:
        names = ObjectStore(location.url, endpoint_url=location.endpoint_url).names()
        assert [n.split("/")[1] for n in names if n.startswith("rows/")] == [
            "day=2024-05-01",
            "day=2024-05-02",
        ]
        assert len([n for n in names if n.startswith("audit/")]) == 2  # one per append


def test_a_later_label_wins_across_writers(location: Location) -> None:
    store_at(location).append([row("tx1", is_fraud=True)])
    later = T0 + timedelta(hours=5)
    store_at(location).append([row("tx1", is_fraud=False, labelled_at=later, analyst="bo")])
    frame = store_at(location).read()
    assert list(frame["is_fraud"]) == [0]
    assert list(frame["analyst"]) == ["bo"]
    assert list(store_at(location).audit()["superseded"]) == [True, False]


def test_concurrent_writers_lose_no_row_or_audit_line(location: Location) -> None:
    start = threading.Barrier(4)

    def write(worker: int) -> None:
        store = store_at(location)
        start.wait()
        for batch in range(3):
            store.append([row(f"w{worker}-b{batch}-{i}", seed=worker) for i in range(5)])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    reader = store_at(location)
    expected = sorted(f"w{w}-b{b}-{i}" for w in range(4) for b in range(3) for i in range(5))
    assert sorted(reader.read()["transaction_id"]) == expected
    assert sorted(reader.audit()["transaction_id"]) == expected


def test_a_corrupt_part_on_s3_is_quarantined_and_its_labels_listed(
    s3_endpoint: str, bucket_url: str, tmp_path: Path
) -> None:
    """(The folder store's quarantine is covered by tests/unit/test_training_store.py.)"""
    location = Location(bucket_url, s3_endpoint, tmp_path / "cache")
    store = store_at(location)
    store.append([row("tx1")])
    store.append([row("tx2", labelled_at=T0 + timedelta(hours=2))])
    objects = ObjectStore(location.url, endpoint_url=location.endpoint_url)
    first = next(n for n in objects.names("rows/") if n.endswith(".parquet"))
    objects.write(first, b"not parquet")
    reader = store_at(location)
    assert list(reader.read()["transaction_id"]) == ["tx2"]
    assert [n.split("/")[-1] for n in objects.names("quarantine/day=")] == [first.split("/")[-1]]
    assert [r["transaction_id"] for r in reader.missing_rows()] == ["tx1"]


def test_times_stay_utc_through_the_store(location: Location) -> None:
    store_at(location).append([row("tx1", event_time=datetime(2024, 5, 2, 1, tzinfo=UTC))])
    frame = store_at(location).read()
    assert str(frame["event_time"].dt.tz) == "UTC"
    assert frame.loc[0, "event_time"] == datetime(2024, 5, 2, 1, tzinfo=UTC)


def test_an_erased_card_is_gone_and_stays_out_on_every_host(location: Location) -> None:
    writer = store_at(location)
    writer.append([row("tx1", card_id="C1"), row("tx2", card_id="C2")])
    writer.append([row("tx3", card_id="C1", event_time=T0 + timedelta(days=1))])
    erased = store_at(location).erase(["C1"])
    assert (erased.rows, erased.audit_lines, erased.parts_rewritten) == (2, 2, 2)
    assert erased.transaction_ids == frozenset({"tx1", "tx3"})
    assert store_at(location).erase(["C1"]).rows == 0  # idempotent
    # the writer built its indexes before the erasure; a replay of C1 still writes nothing
    replay = writer.append([row("tx1", card_id="C1"), row("tx4", card_id="C2")])
    assert (replay.written, replay.duplicates) == (1, 1)
    other_host = store_at(location)
    assert list(other_host.read()["transaction_id"]) == ["tx2", "tx4"]
    assert sorted(other_host.audit()["transaction_id"]) == ["tx2", "tx4"]
