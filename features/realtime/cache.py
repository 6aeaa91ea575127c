"""The scorer's cache of card state: exactly the bytes Redis holds for each card key.

A card has a single writer (the scorer owning its partition), so its state is kept here
between batches instead of being read back from Redis each time. The cache is never
trusted blindly: every batch's script checks each card's trailer (its version) against
the cached one and applies nothing if one differs (see :mod:`.cards`).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence
from itertools import islice

from features.realtime.layout import NEG, TRAILER

_TRAILER = struct.Struct("<Id")


class CardEntry:
    """What this process knows of one card key: exactly the bytes Redis holds."""

    __slots__ = ("max_time", "next_seq", "records", "seen_at")

    def __init__(self, records: bytes, next_seq: int, max_time: float, seen_at: float) -> None:
        self.records = records
        """The stored records (the value without its trailer)."""
        self.next_seq = next_seq
        self.max_time = max_time
        self.seen_at = seen_at

    @property
    def exists(self) -> bool:
        return self.next_seq > 0

    def trailer(self) -> bytes:
        return _TRAILER.pack(self.next_seq, self.max_time) if self.next_seq else b""

    @classmethod
    def from_value(cls, value: bytes | None, now: float) -> CardEntry:
        if not value:
            return cls(b"", 0, NEG, now)
        next_seq, max_time = _TRAILER.unpack_from(value, len(value) - TRAILER)
        return cls(value[:-TRAILER], next_seq, max_time, now)


Held = tuple[bytes, int, float, float]
"""A cached entry at rest: (records, next_seq, max_time, seen_at)."""


class CardCache:
    """LRU of card entries by card key; entries older than ``max_age_s`` are re-read.

    A plain dict in recency order (a touched key is re-inserted at the end); when full,
    the oldest tenth is evicted at once.

    Entries rest as plain tuples of bytes and numbers, which the garbage collector stops
    tracking after their first collection, and are handed out as :class:`CardEntry`
    objects that die young. Kept as objects, a full cache adds one tracked object per
    card to every full collection: with 100,000 cards each such pause took about 60 ms
    on a 2-core VM, long enough to hold up every transaction arriving meanwhile.
    """

    def __init__(self, max_cards: int, max_age_s: float) -> None:
        self.max_cards = max_cards
        self.max_age_s = max_age_s
        self._entries: dict[str, Held] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, keys: Sequence[str], now: float) -> list[CardEntry | None]:
        """The cached entries (``None``: absent or too old), counted as hits and misses."""
        horizon = now - self.max_age_s
        out = [
            CardEntry(*h) if h is not None and h[3] >= horizon else None
            for h in map(self._entries.get, keys)
        ]
        misses = out.count(None)
        self.misses += misses
        self.hits += len(out) - misses
        return out

    def store(self, keys: Sequence[str], entries: Sequence[CardEntry]) -> None:
        if self.max_cards <= 0:
            return
        cache = self._entries
        pop = cache.pop
        for k, e in zip(keys, entries, strict=True):
            pop(k, None)
            cache[k] = (e.records, e.next_seq, e.max_time, e.seen_at)
        if len(cache) > self.max_cards:
            excess = len(cache) - self.max_cards + self.max_cards // 10
            for k in list(islice(cache, excess)):
                del cache[k]

    def bytes_per_card(self) -> float:
        """Approximate process memory per cached card (entry, bytes, key, dict slot)."""
        if not self._entries:
            return 0.0
        sample = list(islice(self._entries.items(), 1_000))
        total = sum(
            sys.getsizeof(k) + sys.getsizeof(h) + sys.getsizeof(h[0]) + 2 * 8 + 8 for k, h in sample
        )
        return total / len(sample)

    def discard(self, keys: Sequence[str]) -> None:
        for k in keys:
            self._entries.pop(k, None)

    def clear(self) -> None:
        self._entries.clear()
