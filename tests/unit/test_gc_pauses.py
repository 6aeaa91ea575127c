"""The garbage collector's pauses reach the process's metrics, by generation."""

from __future__ import annotations

import gc

import pytest
from prometheus_client import REGISTRY

from services.gc_pauses import watch_gc_pauses

pytestmark = pytest.mark.unit


def _pauses(generation: str) -> float:
    value = REGISTRY.get_sample_value("fraud_gc_pause_seconds_count", {"generation": generation})
    return value or 0.0


def test_a_full_collection_is_observed_once_and_watching_twice_counts_it_once() -> None:
    watch_gc_pauses()
    watch_gc_pauses()
    gc.disable()  # no automatic collection between the two readings
    try:
        before_full, before_young = _pauses("2"), _pauses("0")
        gc.collect(2)
        gc.collect(0)
    finally:
        gc.enable()
    assert _pauses("2") == before_full + 1
    assert _pauses("0") == before_young + 1
