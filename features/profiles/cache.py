"""Terminal profiles kept in memory between batches, valid while the profiles' generation holds.

Profiles change when they are materialised and when a label reaches a terminal (the
feedback writer), not per transaction; yet every batch used to read one Feast hash per
transaction (about a quarter of Redis's CPU per transaction). The cache keeps each
terminal's stored row (values and row time, or "no row"), raw: the TTL and ``days_since``
ageing are applied per batch at its as-of time (:func:`features.profiles.reader.finalize_profiles`),
so a cached row serves exactly what a fresh read of the same row serves.

Invalidation: every writer of profile rows sets the generation key of the layout to a new
token *after* its rows are written (:func:`publish_profile_change`: the feedback writer,
``fraudctl features materialize``). The reader reads the token first in each batch's round
trip, before the rows it reads; a token unlike the one its cached rows were read under
drops the whole cache, and the batch reads its cached terminals again. A random token, not
a counter, so a Redis that lost its data and was written again cannot repeat an old value.
A writer that does not publish (``feast materialize`` run by hand) is seen once a row is
``max_age_s`` old at the latest.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

import numpy as np

_UNSEEN: Any = object()
"""The generation before any was read: unlike every token, ``None`` (no key) included."""


class ProfileCache:
    """Raw profile rows of up to ``size`` terminals. A full cache is emptied whole: the
    terminals that carry the traffic are back after a batch, and the bookkeeping stays
    in C (a cache far smaller than the terminals a scorer sees hits rarely either way)."""

    def __init__(
        self,
        size: int,
        n_features: int,
        *,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size <= 0:
            raise ValueError(f"profile cache size must be > 0, got {size}")
        self.size = size
        self.max_age_s = max_age_s
        self._clock = clock
        self._values = np.full((size, n_features), np.nan, dtype=np.float32)  # as stored
        self._seconds = np.full(size, -1, dtype=np.int64)
        self._stored_at = np.zeros(size)
        self._slot: dict[str, int] = {}
        self._used = 0
        self._lock = threading.Lock()
        self.generation: object = _UNSEEN
        self.hits = self.lookups = 0

    def __len__(self) -> int:
        return len(self._slot)

    def lookup(self, terminal_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which terminals are cached (and young enough), and their rows' values and
        seconds in that order; copies, so a later store cannot change them."""
        n = len(terminal_ids)
        with self._lock:
            slots = np.fromiter(map(self._slot.get, terminal_ids, repeat(-1, n)), np.int64, n)
            hit = slots >= 0
            if hit.any():
                old = self._clock() - self._stored_at[slots[hit]] > self.max_age_s
                if old.any():
                    hit[np.flatnonzero(hit)[old]] = False
            found = slots[hit]
            self.lookups += n
            self.hits += len(found)
            return hit, self._values[found], self._seconds[found]

    def store(self, terminal_ids: Sequence[str], values: np.ndarray, seconds: np.ndarray) -> None:
        """Keep the rows just read (distinct terminals), in the next free slots; a terminal
        stored again moves to a new slot (its old one stays unused until the cache empties)."""
        now = self._clock()
        with self._lock:
            m = len(terminal_ids)
            if self._used + m > self.size:
                self._slot.clear()
                self._used = 0
                if m > self.size:  # more than it holds: keep the last ones read
                    terminal_ids, values, seconds = (
                        terminal_ids[m - self.size :],
                        values[m - self.size :],
                        seconds[m - self.size :],
                    )
                    m = self.size
            start, self._used = self._used, self._used + m
            self._slot.update(zip(terminal_ids, range(start, start + m), strict=True))
            self._values[start : start + m] = values
            self._seconds[start : start + m] = seconds
            self._stored_at[start : start + m] = now

    def observe(self, generation: object) -> bool:
        """Record the generation read with a batch; True (and the cache emptied) when it is
        not the one the cached rows were read under."""
        with self._lock:
            if generation == self.generation:
                return False
            self.generation = generation
            self._slot.clear()
            self._used = 0
            return True


def publish_profile_change(client: Any, generation_key: bytes) -> None:
    """Tell every reader's cache that profile rows changed (call after they are written)."""
    client.set(generation_key, secrets.token_hex(8))
