"""The scorer probe reports the garbage collector as the scorer's main() leaves it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from loadtest.procstats import collector_text
from loadtest.scorer_probe import gc_collections
from services.gc_pauses import settle_collector

pytestmark = pytest.mark.unit


@pytest.fixture
def settled() -> Iterator[dict[str, object]]:
    before = gc.get_threshold()
    yield settle_collector(50_000)
    gc.unfreeze()
    gc.set_threshold(*before)


def test_collections_count_what_the_pause_histogram_saw(settled: dict[str, object]) -> None:
    """Counts only grow: other threads of a test session may collect meanwhile."""
    before = gc_collections()
    gc.collect(2)
    after = gc_collections()
    assert after["collections"]["2"] >= before["collections"]["2"] + 1
    assert after["pause_s"] >= before["pause_s"]
    assert settled["thresholds"] == [50_000, *gc.get_threshold()[1:]]


def test_the_line_names_collections_and_their_time() -> None:
    stats = {"collector": {"collections": {"0": 5, "1": 2, "2": 1}, "pause_s": 0.0126}}
    assert collector_text(stats) == "8 collections, 13 ms in them"
    assert collector_text({"collector": {"thresholds": [700, 10, 10]}}) == (
        "collections not counted"
    )
    assert collector_text({}) == "collections not counted"
