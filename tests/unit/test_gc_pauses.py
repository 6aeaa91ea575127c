"""The garbage collector's pauses reach the process's metrics, by generation."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from services import gc_pauses

pytestmark = pytest.mark.unit


def _pauses(generation: str) -> float:
    value = REGISTRY.get_sample_value("fraud_gc_pause_seconds_count", {"generation": generation})
    return value or 0.0


def test_watching_twice_installs_one_callback() -> None:
    gc_pauses.watch_gc_pauses()
    gc_pauses.watch_gc_pauses()
    assert gc.callbacks.count(gc_pauses._on_gc) == 1


def test_a_full_collection_is_observed_as_generation_two() -> None:
    """At least once: other threads of a test session may collect meanwhile (and a thread
    that forks re-enables automatic collection), so exact counts are not asserted."""
    gc_pauses.watch_gc_pauses()
    before = _pauses("2")
    gc.collect(2)
    assert _pauses("2") >= before + 1
    total = REGISTRY.get_sample_value("fraud_gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None and total > 0


@pytest.fixture
def collector_restored() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.unfreeze()
    gc.set_threshold(*before)


def test_settling_the_collector_freezes_and_sets_the_young_threshold(
    collector_restored: tuple[int, int, int],
) -> None:
    settled = gc_pauses.settle_collector(123_456)
    assert gc.get_threshold() == (123_456, *collector_restored[1:])
    assert settled == {
        "thresholds": [123_456, *collector_restored[1:]],
        "frozen": gc.get_freeze_count(),
    }
    assert settled["frozen"] > 0
    assert gc.callbacks.count(gc_pauses._on_gc) == 1


def test_a_zero_threshold_keeps_pythons_own(collector_restored: tuple[int, int, int]) -> None:
    assert gc_pauses.settle_collector(0)["thresholds"] == list(collector_restored)
    assert gc.get_threshold() == collector_restored


def test_a_negative_threshold_is_refused(collector_restored: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="threshold"):
        gc_pauses.settle_collector(-1)
    assert gc.get_threshold() == collector_restored
