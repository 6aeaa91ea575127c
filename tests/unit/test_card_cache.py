"""The scorer's card cache: LRU order, age horizon, and entries the collector skips."""

from __future__ import annotations

import gc

import pytest

from features.realtime.cache import CardCache, CardEntry

pytestmark = pytest.mark.unit


def _entry(seq: int, seen_at: float = 10.0) -> CardEntry:
    return CardEntry(bytes([seq]) * 24, seq, 100.0 + seq, seen_at)


def test_a_stored_entry_comes_back_with_the_same_fields_and_counts_as_a_hit() -> None:
    cache = CardCache(10, max_age_s=60.0)
    cache.store(["c:1"], [_entry(3)])
    (got, absent) = cache.lookup(["c:1", "c:2"], now=20.0)
    assert absent is None and got is not None
    assert (got.records, got.next_seq, got.max_time, got.seen_at) == (
        bytes([3]) * 24,
        3,
        103.0,
        10.0,
    )
    assert (cache.hits, cache.misses) == (1, 1)


def test_an_entry_older_than_the_horizon_is_a_miss() -> None:
    cache = CardCache(10, max_age_s=60.0)
    cache.store(["c:1"], [_entry(1, seen_at=10.0)])
    assert cache.lookup(["c:1"], now=71.0) == [None]


def test_a_full_cache_evicts_the_least_recently_stored_tenth() -> None:
    cache = CardCache(20, max_age_s=1e9)
    cache.store([f"c:{i}" for i in range(20)], [_entry(i) for i in range(20)])
    cache.store(["c:0"], [_entry(0)])  # touched again: now the most recent
    cache.store(["c:20"], [_entry(20)])
    # one over the bound: that one plus a tenth of the bound go, oldest first
    assert len(cache) == 18
    found = cache.lookup(["c:0", "c:1", "c:2", "c:3", "c:4", "c:20"], now=10.0)
    assert [e is not None for e in found] == [True, False, False, False, True, True]


def test_resting_entries_leave_the_collector_after_one_collection() -> None:
    """A cache of many cards must not add one object per card to every full collection
    (each such pause holds up every transaction arriving meanwhile)."""
    cache = CardCache(50_000, max_age_s=1e9)
    keys = [f"c:{i}" for i in range(20_000)]
    cache.store(keys, [_entry(i % 200) for i in range(len(keys))])
    gc.collect()
    resting = list(cache._entries.values())
    assert len(resting) == len(keys)
    assert not any(gc.is_tracked(entry) for entry in resting)
