"""The durable outbox: ids, order, a cursor that survives a restart, torn lines, compaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from streams.events import ModelEvent
from streams.outbox import Outbox

pytestmark = pytest.mark.unit


def event(version: str, kind: str = "drift_report") -> ModelEvent:
    return ModelEvent(kind=kind, model_version=version, at=datetime(2026, 1, 1, tzinfo=UTC))  # type: ignore[arg-type]


def test_events_get_ids_and_wait_in_order_until_delivered(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.jsonl")
    stored = outbox.append([event("v1"), event("v2")])
    assert all(e.event_id and len(e.event_id) == 32 for e in stored)
    assert len({e.event_id for e in stored}) == 2
    kept = outbox.append([msgspec.structs.replace(event("v3"), event_id="given")])
    assert kept[0].event_id == "given"

    pending = outbox.pending()
    assert [p.event.model_version for p in pending] == ["v1", "v2", "v3"]
    assert [p.event.event_id for p in pending[:2]] == [e.event_id for e in stored]
    outbox.delivered(pending[1].end)

    restarted = Outbox(tmp_path / "outbox.jsonl")  # a new process reads the same cursor
    assert [p.event.model_version for p in restarted.pending()] == ["v3"]
    assert [e.model_version for e in restarted.backlog()] == ["v3"]
    assert restarted.pending(limit=1)[0].end == (tmp_path / "outbox.jsonl").stat().st_size


def test_a_torn_line_is_passed_over_and_the_next_append_starts_a_new_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path)
    outbox.append([event("v1")])
    with path.open("a") as handle:
        handle.write('{"kind": "promo')  # the crash cut this append short
    assert [p.event.model_version for p in outbox.pending()] == ["v1"]
    outbox.delivered(outbox.pending()[0].end)
    outbox.append([event("v2")])  # must not be glued to the torn bytes
    assert outbox.pass_unreadable() == 1
    assert [p.event.model_version for p in outbox.pending()] == ["v2"]
    assert outbox.cursor() < path.stat().st_size


def test_the_file_is_emptied_once_everything_was_delivered(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path, compact_bytes=1)
    outbox.append([event("v1"), event("v2")])
    outbox.delivered(outbox.pending()[-1].end)
    assert path.stat().st_size == 0 and outbox.cursor() == 0
    outbox.append([event("v3")])
    assert [p.event.model_version for p in outbox.pending()] == ["v3"]


def test_a_cursor_past_the_end_sends_everything_again(tmp_path: Path) -> None:
    """A file replaced under its cursor (restored from a backup): at least once wins."""
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path, compact_bytes=None)
    outbox.append([event("v1")])
    outbox.delivered(10_000)
    assert [p.event.model_version for p in outbox.pending()] == ["v1"]


def test_only_one_drainer_claims_an_outbox(tmp_path: Path) -> None:
    first, second = Outbox(tmp_path / "o.jsonl"), Outbox(tmp_path / "o.jsonl")
    assert first.claim() and first.claim()
    assert not second.claim()
    first.release()
    assert second.claim()
    second.release()
