"""The garbage collector's pauses reach the process's metrics, by generation."""

from __future__ import annotations

import gc

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
