"""``next_batch``'s protocol with a scripted consumer: records already fetched are taken
without waiting, the wait happens only when nothing is queued, and never for more records
than asked (the real-broker behaviour is in tests/integration/test_next_batch.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from streams.consume import next_batch

pytestmark = pytest.mark.unit


@dataclass
class ScriptedConsumer:
    """A queue of records that arrive in order; records each call and its timeout."""

    queued: list[str] = field(default_factory=list)
    arriving: list[str] = field(default_factory=list)
    calls: list[tuple[str, int, float]] = field(default_factory=list)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[str]:
        self.calls.append(("consume", num_messages, timeout))
        taken, self.queued = self.queued[:num_messages], self.queued[num_messages:]
        return taken

    def poll(self, timeout: float = -1) -> str | None:
        self.calls.append(("poll", 1, timeout))
        self.queued += self.arriving  # what arrives while the poll waits
        self.arriving = []
        return self.queued.pop(0) if self.queued else None


def test_queued_records_are_taken_without_waiting() -> None:
    consumer = ScriptedConsumer(queued=["a", "b", "c"], arriving=["d"])
    assert next_batch(consumer, 500, 0.005) == ["a", "b", "c"]  # type: ignore[arg-type]
    assert consumer.calls == [("consume", 500, 0)]
    assert consumer.arriving == ["d"]  # not waited for


def test_an_idle_consumer_waits_for_the_first_record_and_takes_what_came_with_it() -> None:
    consumer = ScriptedConsumer(arriving=["a", "b", "c"])
    assert next_batch(consumer, 500, 0.005) == ["a", "b", "c"]  # type: ignore[arg-type]
    assert consumer.calls == [("consume", 500, 0), ("poll", 1, 0.005), ("consume", 499, 0)]


def test_nothing_within_the_wait_is_an_empty_batch() -> None:
    consumer = ScriptedConsumer()
    assert next_batch(consumer, 500, 0.2) == []  # type: ignore[arg-type]
    assert consumer.calls == [("consume", 500, 0), ("poll", 1, 0.2)]


def test_never_more_than_asked() -> None:
    full = ScriptedConsumer(queued=[str(i) for i in range(10)])
    assert next_batch(full, 4, 0.005) == ["0", "1", "2", "3"]  # type: ignore[arg-type]
    idle = ScriptedConsumer(arriving=[str(i) for i in range(10)])
    assert next_batch(idle, 4, 0.005) == ["0", "1", "2", "3"]  # type: ignore[arg-type]
    single = ScriptedConsumer(arriving=["a", "b"])
    assert next_batch(single, 1, 0.005) == ["a"]  # type: ignore[arg-type]
    assert single.calls == [("consume", 1, 0), ("poll", 1, 0.005)]
    with pytest.raises(ValueError, match="at least 1"):
        next_batch(ScriptedConsumer(), 0, 0.005)  # type: ignore[arg-type]
