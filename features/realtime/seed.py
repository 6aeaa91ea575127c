"""A history written straight into the real-time state: what the scorer would have left.

For benchmarks and load tests at millions of cards, where replaying weeks of history
through the batch script would take hours. The values are built by the writer's own code:
each card's by the store's :meth:`.store.BatchFeatureStore.plan` (the planner and C kernel
of every batch: records, sequence numbers, lazy trimming, trailer) as if its history
arrived in one batch, each terminal's by :func:`.layout.terminal_values`; then one ``SET``
per key, with the store's TTLs. The same rows applied through a store give the same bytes
(a test holds them equal).

Seeded records carry the caller's 64-bit ``txh``: they are never replayed, so any unique
value does (the scorer's own are digests of transaction ids).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import redis

from features.realtime.cache import CardEntry
from features.realtime.cards import CARD_OP, MODE_REWRITE
from features.realtime.layout import (
    STATUS_APPLIED,
    EncodedBatch,
    card_keys,
    terminal_key,
    terminal_values,
)
from features.realtime.store import BatchFeatureStore

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]
_WRITE_CHUNK = 1_000


@dataclass(frozen=True)
class CardRows:
    """Transactions of some cards, sorted by (card, time): card ``card[i]`` (an index into
    the caller's card ids) paid ``amount[i]`` at ``t_us[i]`` at a terminal hashed
    ``term_hash[i]``."""

    card: I64
    t_us: I64
    amount: F64
    term_hash: I64
    txh: U64


def card_values(rows: CardRows, cards: Sequence[str], store: BatchFeatureStore) -> list[bytes]:
    """The value of each card in ``cards`` (indices ``0..len(cards)-1`` of ``rows.card``)
    once its rows are applied, as ``store`` would write them (empty: no row)."""
    n = len(rows.card)
    # the planner takes the cards of a batch, each with at least one row
    present, local = np.unique(rows.card, return_inverse=True)
    keys = card_keys(store.prefix, [cards[i] for i in present.tolist()])
    batch = EncodedBatch(
        t_us=rows.t_us,
        amount=rows.amount,
        txh=rows.txh,
        term_hash=rows.term_hash,
        channel=np.zeros(n, dtype=np.int64),
        mcc=np.zeros(n, dtype=np.int64),
        card_index=local.astype(np.int64),
        term_index=np.zeros(n, dtype=np.int64),
        ref_day=np.zeros(0, dtype=np.int64),
        card_keys=keys,
        term_keys=[],
        terminal_ids=[],
    )
    now = time.time()
    entries = [CardEntry.from_value(None, now)] * len(present)
    plan = store.plan(batch, entries, True)
    if n and not (plan.status == STATUS_APPLIED).all():
        raise ValueError("seeded rows must be in time order per card and unique")
    ops = np.frombuffer(plan.ops, dtype=CARD_OP)
    if (ops["mode"] != MODE_REWRITE).any():
        raise ValueError("a seeded card must be new: its value written whole")
    out = [b""] * len(cards)
    starts, lengths = ops["start"].tolist(), ops["length"].tolist()
    for card, a, m in zip(present.tolist(), starts, lengths, strict=True):
        out[card] = plan.payload[a : a + m]
    return out


def write_cards(
    client: redis.Redis, store: BatchFeatureStore, cards: Sequence[str], values: Sequence[bytes]
) -> int:
    """``SET`` each non-empty card value with the store's card TTL; the count written."""
    return _write(client, card_keys(store.prefix, cards), values, store.card_ttl_s)


def write_terminals(
    client: redis.Redis,
    store: BatchFeatureStore,
    terminals: Sequence[str],
    first_day: int,
    day_counts: npt.NDArray[np.integer],
    max_time_us: F64,
) -> int:
    """The terminals' day counters (``day_counts[i, j]``: transactions of terminal ``i`` on
    day ``first_day + j``), with the store's terminal TTL; the count written."""
    used = np.flatnonzero(day_counts.sum(axis=1) > 0)
    values = terminal_values(first_day, day_counts[used], max_time_us[used])
    keys = [terminal_key(store.prefix, terminals[i]) for i in used.tolist()]
    raw, size = values.tobytes(), values.dtype.itemsize
    blobs = [raw[k * size : (k + 1) * size] for k in range(len(values))]
    return _write(client, keys, blobs, store.terminal_ttl_s)


def _write(client: redis.Redis, keys: Sequence[str], values: Sequence[bytes], ttl_s: int) -> int:
    written = 0
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(keys), _WRITE_CHUNK):
        for key, value in zip(
            keys[start : start + _WRITE_CHUNK], values[start : start + _WRITE_CHUNK], strict=True
        ):
            if value:
                pipe.set(key, value, px=ttl_s * 1000)
                written += 1
        pipe.execute()
    return written
