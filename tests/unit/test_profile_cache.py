"""The terminal-profile cache: what it keeps, for how long, and when it lets go of it."""

from __future__ import annotations

import numpy as np
import pytest

from features.profiles.cache import ProfileCache

pytestmark = pytest.mark.unit

K = 3


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _rows(*ids: int) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([[i, i + 0.5, np.nan] for i in ids], dtype=np.float64)
    return values, np.array([100 + i if i % 2 else -1 for i in ids], dtype=np.int64)


def test_a_stored_row_is_served_as_stored_and_other_terminals_miss() -> None:
    cache = ProfileCache(10, K, max_age_s=60)
    cache.observe(b"g1")
    cache.store(["T1", "T2"], *_rows(1, 2))
    hit, values, seconds = cache.lookup(["T2", "T9", "T1", "T2"])
    assert hit.tolist() == [True, False, True, True]
    expected_values, expected_seconds = _rows(2, 1, 2)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(seconds, expected_seconds)
    assert (cache.lookups, cache.hits) == (4, 3)


def test_a_full_cache_empties_whole_and_keeps_what_it_reads_next() -> None:
    cache = ProfileCache(4, K, max_age_s=60)
    cache.store(["T1", "T2", "T3"], *_rows(1, 2, 3))
    cache.store(["T2"], *_rows(22))  # stored again: the new row is served
    assert cache.lookup(["T2"])[1][:, 0].tolist() == [22.0] and len(cache) == 3
    cache.store(["T4", "T5"], *_rows(4, 5))  # five slots needed, four held: emptied first
    hit, values, _ = cache.lookup(["T1", "T2", "T3", "T4", "T5"])
    assert hit.tolist() == [False, False, False, True, True] and len(cache) == 2
    assert values[:, 0].tolist() == [4.0, 5.0]


def test_a_batch_larger_than_the_cache_keeps_its_last_rows() -> None:
    cache = ProfileCache(2, K, max_age_s=60)
    cache.store(["T1", "T2", "T3"], *_rows(1, 2, 3))
    hit, values, _ = cache.lookup(["T1", "T2", "T3"])
    assert hit.tolist() == [False, True, True] and values[:, 0].tolist() == [2.0, 3.0]


def test_a_row_older_than_the_max_age_is_read_again() -> None:
    clock = Clock()
    cache = ProfileCache(10, K, max_age_s=30, clock=clock)
    cache.store(["T1"], *_rows(1))
    clock.now += 20
    cache.store(["T2"], *_rows(2))
    clock.now += 15  # T1 is 35 s old, T2 15 s
    assert cache.lookup(["T1", "T2"])[0].tolist() == [False, True]


def test_a_new_generation_empties_the_cache_and_the_same_one_keeps_it() -> None:
    cache = ProfileCache(10, K, max_age_s=60)
    assert cache.observe(None)  # the first generation read, even "no key", is news
    cache.store(["T1"], *_rows(1))
    assert not cache.observe(None)
    assert cache.lookup(["T1"])[0].tolist() == [True]
    assert cache.observe(b"a1")
    assert cache.lookup(["T1"])[0].tolist() == [False] and len(cache) == 0
    cache.store(["T1"], *_rows(5))
    assert cache.observe(None)  # the key is gone (Redis lost its data): not the same state
    assert len(cache) == 0


def test_rows_looked_up_do_not_change_when_their_slots_are_reused() -> None:
    cache = ProfileCache(1, K, max_age_s=60)
    cache.store(["T1"], *_rows(1))
    _, values, seconds = cache.lookup(["T1"])
    cache.store(["T2"], *_rows(2))  # the only slot goes to T2
    assert values[0, 0] == 1.0 and seconds[0] == 101


def test_a_size_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="size"):
        ProfileCache(0, K, max_age_s=60)
