"""The feedback sink and its thread: a failing store or Redis holds the batch (retried, made
visible) instead of losing it; labels not usable yet come back to be kept; rows lost to a
quarantined part are listed for landing again; the event loop never runs a write."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.profiles.writer import TerminalLabel
from features.training_store import AppendResult, TrainingRow, TrainingStore
from services.feedback.sink import FeedbackSink
from streams.events import Label
from streams.feedback.app import SinkStopped
from streams.feedback.offload import EXIT_UNWRITTEN, Offload
from streams.feedback.records import Labelled, ServedRow

pytestmark = pytest.mark.unit

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def pair(i: int, label: str = "fraud", labelled_at: datetime = T0) -> Labelled:
    served = ServedRow(
        transaction_id=f"tx{i}",
        card_id="C1",
        terminal_id=f"T{i % 2}",
        event_time=T0 - timedelta(hours=1),
        amount=10.0,
        score=0.9,
        decision="review",
        model_version="v1",
        feature_set=FEATURE_SET_ID,
        features=[float(i)] * len(FEATURE_NAMES),
        stored_at=0.0,
    )
    return Labelled(
        served,
        Label(transaction_id=f"tx{i}", label=label, analyst="ana", labelled_at=labelled_at),  # type: ignore[arg-type]
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class FlakyStore(TrainingStore):
    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures

    def append(self, rows: Iterable[TrainingRow]) -> AppendResult:
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        return super().append(rows)


@dataclass(frozen=True)
class Outcome:
    deferred: tuple[TerminalLabel, ...]


class Risk:
    """Applies labels whose ``labelled_at`` is not after ``now``, defers the others."""

    def __init__(self) -> None:
        self.now = T0
        self.applied: list[str] = []
        self.down = 0

    def apply_labels(self, labels: Iterable[TerminalLabel]) -> Outcome:
        if self.down:
            self.down -= 1
            raise ConnectionError("redis down")
        batch = list(labels)
        self.applied += [x.transaction_id for x in batch if x.labelled_at <= self.now]
        return Outcome(tuple(x for x in batch if x.labelled_at > self.now))


def test_a_failing_store_is_retried_until_written_and_shows_while_it_fails(
    tmp_path: Path,
) -> None:
    delays: list[float] = []
    failing_seen: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        failing_seen.append(metric("fraud_feedback_sink_failing", target="training_store"))

    retries = metric("fraud_feedback_sink_retries_total", target="training_store")
    sink = FeedbackSink(FlakyStore(tmp_path, failures=3), Risk(), sleep=sleep)
    assert sink.write([pair(1), pair(2, "legit")]) == []
    assert delays == [0.1, 0.3, 1.0]
    assert failing_seen == [1.0, 1.0, 1.0]
    assert metric("fraud_feedback_sink_failing", target="training_store") == 0.0
    assert metric("fraud_feedback_sink_retries_total", target="training_store") == retries + 3
    assert list(TrainingStore(tmp_path).read()["transaction_id"]) == ["tx1", "tx2"]


def test_redis_down_holds_the_batch_and_stop_gives_up_loudly(tmp_path: Path) -> None:
    risk = Risk()
    risk.down = 2
    sink = FeedbackSink(TrainingStore(tmp_path), risk, sleep=lambda s: None)
    sink.write([pair(1)])
    assert risk.applied == ["tx1"]

    risk.down = 10**6
    sink.stop()  # shutdown while Redis is still away: the call raises instead of spinning
    with pytest.raises(SinkStopped, match="terminal_risk still failing"):
        sink.write([pair(2)])


def test_labels_not_usable_yet_come_back_until_they_are(tmp_path: Path) -> None:
    risk = Risk()
    sink = FeedbackSink(TrainingStore(tmp_path), risk)
    later = T0 + timedelta(minutes=5)
    waiting = sink.write([pair(1), pair(2, labelled_at=later), pair(3, "legit", later)])
    assert [p.served.transaction_id for p in waiting] == ["tx2"]
    assert risk.applied == ["tx1"]
    assert sink.retry(waiting) == waiting
    assert metric("fraud_feedback_deferred_labels") == 1
    risk.now = later
    assert sink.retry(waiting) == []
    assert risk.applied == ["tx1", "tx2"]
    assert metric("fraud_feedback_deferred_labels") == 0


def test_rows_lost_to_a_quarantined_part_are_listed_then_landed_again(tmp_path: Path) -> None:
    sink = FeedbackSink(TrainingStore(tmp_path), None)
    sink.write([pair(1), pair(2, "legit")])
    assert sink.missing_rows() == {}
    (part,) = (tmp_path / "rows").rglob("part-*.parquet")
    part.chmod(0o644)
    part.write_bytes(part.read_bytes()[:100])
    TrainingStore(tmp_path).read()  # another reader finds it torn and moves it aside

    missing = sink.missing_rows()
    assert {k: [(x.label, x.labelled_at) for x in v] for k, v in missing.items()} == {
        "tx1": [("fraud", T0)],
        "tx2": [("legit", T0)],
    }
    assert metric("fraud_feedback_missing_rows") == 2
    relanded = [Labelled(pair(int(k[2:])).served, label) for k, v in missing.items() for label in v]
    sink.write(relanded)
    assert sink.missing_rows() == {} and sink.counters.rows_relanded == 2
    assert metric("fraud_feedback_missing_rows") == 0
    assert len(TrainingStore(tmp_path).read()) == 2 and len(TrainingStore(tmp_path).audit()) == 2


def test_the_offload_runs_calls_off_the_event_loop_and_in_order() -> None:
    threads: list[str] = []
    exits: list[int] = []
    offload = Offload(lambda: None, exit=exits.append)

    def call(n: int) -> int:
        threads.append(threading.current_thread().name)
        return n * 2

    async def main() -> list[int]:
        return [await offload.run("write", call, n) for n in range(3)]

    assert asyncio.run(main()) == [0, 2, 4]
    assert all(name.startswith("sink") for name in threads) and exits == []
    offload.close()


def test_a_cancelled_agent_waits_for_its_write_and_an_unwritten_batch_exits() -> None:
    """The stream acks a cancelled agent's batch: its write must be done by then, or the
    process must be gone before faust commits."""
    exits: list[int] = []
    stopped = threading.Event()
    release = threading.Event()
    offload = Offload(stopped.set, exit=exits.append)
    done: list[str] = []

    kept: list[list[str]] = []

    def slow_write() -> list[str]:
        release.wait(5)
        done.append("written")
        return ["tx-waiting"]  # a pair whose risk update waits: kept even when cancelled

    def gives_up() -> None:
        stopped.wait(5)
        raise SinkStopped("terminal_risk still failing at shutdown")

    async def cancel_during(call: object) -> None:
        task = asyncio.ensure_future(offload.run("write", call, then=kept.append))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        threading.Timer(0.1, release.set).start()  # the loop blocks while it waits
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_during(slow_write))
    assert done == ["written"] and stopped.is_set() and exits == []
    assert kept == [["tx-waiting"]]

    stopped.clear()
    asyncio.run(cancel_during(gives_up))
    assert exits == [EXIT_UNWRITTEN] and kept == [["tx-waiting"]]
    offload.close()
