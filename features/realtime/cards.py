"""Card state computed in the client: a cache of card rings and the plan of one batch.

A card has a single writer - the scorer owning its partition - so the scorer keeps the
card's stored bytes in a :class:`CardCache` and decides in numpy, with the per-card loops in
C (:mod:`features.card_kernel`), what Lua used to decide (duplicate, too late, sequence
numbers, trimming). Redis stays the authority: the script
applies a batch only if every card's trailer (its version, see :mod:`.layout`) still equals
the cached one, otherwise it applies nothing and names the stale cards, which the store
re-reads before planning again. A cold cache (restart), a moved partition or a second
writer therefore cost a re-read, never a wrong feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from features.card_kernel import arrival_max as stored_arrival_max
from features.card_kernel import card_writes, stored_replays
from features.realtime.cache import CardEntry
from features.realtime.layout import (
    CARD_RECORD,
    CARD_TRAILER,
    REC,
    STATUS_DUPLICATE,
    STATUS_TOO_LATE,
    EncodedBatch,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
CARD_OP = np.dtype(
    [
        ("mode", "u1"),
        ("refresh_ttl", "u1"),
        ("exists", "u1"),
        ("pad", "u1"),
        ("offset", "<u4"),
        ("start", "<u4"),
        ("length", "<u4"),
        ("expect", "V12"),
    ]
)
"""One card's part of the script argument: what to check and what to write."""
assert CARD_OP.itemsize == 28
MODE_NONE, MODE_APPEND, MODE_REWRITE = 0, 1, 2


@dataclass(frozen=True)
class CardPlan:
    """The card side of one batch, decided in the client from the cached entries."""

    status: I64
    seq: I64
    arrival_max: F64
    stored: npt.NDArray[np.void]
    """The cards' stored records, concatenated in card order (before the batch)."""
    stored_counts: I64
    ops: bytes
    payload: bytes
    writes: CardWrites | None


@dataclass(frozen=True)
class CardWrites:
    """What the cache must do once the batch is applied: per written card, its new
    records (a slice of ``added``), how many old records it drops, its new trailer."""

    cards: list[int]
    starts: list[int]
    lengths: list[int]
    drops: list[int]
    next_seq: list[int]
    max_time: list[float]
    added: bytes

    def applied(self, entries: Sequence[CardEntry], now: float) -> list[CardEntry]:
        """The entries as Redis holds them once the batch is applied. New objects: the
        given entries stay untouched, so a batch the script refuses can be planned again
        from them."""
        out = list(entries)
        added = self.added
        for c, a, m, d, nseq, nmax in zip(
            self.cards,
            self.starts,
            self.lengths,
            self.drops,
            self.next_seq,
            self.max_time,
            strict=True,
        ):
            records = entries[c].records + added[a : a + m]
            out[c] = CardEntry(records[d * REC :] if d else records, nseq, nmax, now)
        return out


def plan_cards(
    batch: EncodedBatch,
    entries: Sequence[CardEntry],
    *,
    lateness_us: float,
    retention_us: float,
    capacity: int,
    trim_chunk: int,
    commit: bool,
    refresh_us: float,
) -> CardPlan:
    """Statuses, sequence numbers and the writes of one batch (see :mod:`.layout`)."""
    n, nc = batch.n, len(entries)
    ci, t, txh = batch.card_index, batch.t_us.astype(np.float64), batch.txh
    meta = np.array(
        [(len(e.records), e.next_seq, e.max_time) for e in entries], dtype=np.float64
    ).reshape(nc, 3)
    counts = meta[:, 0].astype(np.int64) // REC
    next_seq = meta[:, 1].astype(np.int64)
    card_max = meta[:, 2]
    stored = np.frombuffer(b"".join([e.records for e in entries]), dtype=CARD_RECORD)
    seg = np.concatenate([[0], np.cumsum(counts)])
    status = np.zeros(n, dtype=np.int64)
    seq = np.full(n, -1, dtype=np.int64)

    # 1. replays of stored records (anywhere in the card's ring): the record's own seq
    if len(stored):
        found = stored_replays(ci, txh, seg, counts, stored)
        rows = np.flatnonzero(found >= 0)
        status[rows] = STATUS_DUPLICATE
        seq[rows] = found[rows]
    order = np.argsort(ci, kind="stable")
    if len(np.unique(txh)) < n:
        arrival_max = _sequential(ci, t, txh, status, seq, next_seq, card_max, lateness_us)
    else:
        arrival_max = stored_arrival_max(ci, t, status == 0, card_max)
        status[(status == 0) & (t < arrival_max - lateness_us)] = STATUS_TOO_LATE

    # 2. sequence numbers: an applied row's own, a too-late row's next one at its arrival
    applied = status == 0
    g = ci[order]
    a_sorted = applied[order].astype(np.int64)
    before = np.cumsum(a_sorted) - a_sorted
    group_first = np.searchsorted(g, np.arange(nc), side="left")
    at_arrival = np.empty(n, dtype=np.int64)
    at_arrival[order] = next_seq[g] + before - before[group_first][g]
    not_dup = status != STATUS_DUPLICATE
    seq[not_dup] = at_arrival[not_dup]

    ops = np.zeros(nc, dtype=CARD_OP)
    exists = next_seq > 0
    ops["exists"] = exists
    expect = np.zeros(nc, dtype=CARD_TRAILER)
    expect["next_seq"] = next_seq
    expect["max_time"] = np.where(exists, card_max, 0.0)
    ops["expect"] = expect.view("V12")
    plan = dict(
        status=status, seq=seq, arrival_max=arrival_max, stored=stored, stored_counts=counts
    )
    if not commit or not applied.any():
        return CardPlan(**plan, ops=ops.tobytes(), payload=b"", writes=None)  # type: ignore[arg-type]

    app_sorted = order[applied[order]]
    gs = ci[app_sorted]
    records = np.zeros(len(gs), dtype=CARD_RECORD)
    records["txh"] = txh[app_sorted]
    records["t"] = t[app_sorted]
    records["amount"] = batch.amount[app_sorted]
    records["term"] = batch.term_hash[app_sorted]
    records["seq"] = seq[app_sorted]
    payload, writes = _writes(
        ops,
        stored,
        counts,
        seg,
        records,
        gs,
        exists,
        retention_us=retention_us,
        capacity=capacity,
        trim_chunk=trim_chunk,
        refresh_us=refresh_us,
    )
    return CardPlan(**plan, ops=ops.tobytes(), payload=payload, writes=writes)  # type: ignore[arg-type]


def _sequential(
    ci: I64,
    t: F64,
    txh: npt.NDArray[np.uint64],
    status: I64,
    seq: I64,
    next_seq: I64,
    card_max: F64,
    lateness_us: float,
) -> F64:
    """The row-by-row rule (as the script applied it), for batches that repeat a
    transaction: a repeat of a row applied earlier in the batch is a duplicate of it."""
    nseq, maxt = next_seq.tolist(), card_max.tolist()
    arrival = np.empty(len(ci), dtype=np.float64)
    tail: dict[tuple[int, int], int] = {}
    for i, (c, ti, h) in enumerate(zip(ci.tolist(), t.tolist(), txh.tolist(), strict=True)):
        arrival[i] = maxt[c]
        if status[i]:
            continue
        own = tail.get((c, h))
        if own is not None:
            status[i], seq[i] = STATUS_DUPLICATE, own
        elif ti < maxt[c] - lateness_us:
            status[i] = STATUS_TOO_LATE
        else:
            tail[(c, h)] = seq[i] = nseq[c]
            nseq[c] += 1
            maxt[c] = max(maxt[c], ti)
    return arrival


def _writes(
    ops: npt.NDArray[np.void],
    stored: npt.NDArray[np.void],
    counts: I64,
    seg: I64,
    records: npt.NDArray[np.void],
    gs: I64,
    exists: npt.NDArray[np.bool_],
    *,
    retention_us: float,
    capacity: int,
    trim_chunk: int,
    refresh_us: float,
) -> tuple[bytes, CardWrites]:
    """Fill the written cards' ops; return the payload and the cache's part.

    Trimming is lazy: records beyond the capacity, or older than the retention counted
    from the oldest, are dropped only once at least ``trim_chunk`` of them can go (then
    the value is rewritten, ``SET``); otherwise the new records and the new trailer
    overwrite the old trailer in place (``SETRANGE``). Features never depend on trimming.
    A rewrite sets the key's TTL; an append sets it again only when the card's newest
    event time moves into a later period of ``refresh_us`` (every time if it is 0), so
    the TTL follows the card's own event times, whichever process wrote it last.
    The per-card loop runs in C (``card_writes`` in ``features/card_kernel.c``).
    """
    expect_max = np.frombuffer(ops["expect"].tobytes(), dtype=CARD_TRAILER)["max_time"]
    w, payload = card_writes(
        gs,
        records,
        stored,
        seg,
        counts,
        expect_max,
        exists,
        retention_us=retention_us,
        capacity=capacity,
        trim_chunk=trim_chunk,
        refresh_us=refresh_us,
    )
    dirty = w["card"]
    append = w["append"].astype(bool)
    ops["mode"][dirty] = np.where(append, MODE_APPEND, MODE_REWRITE)
    ops["refresh_ttl"][dirty] = append & (w["refreshed"] != 0)
    ops["offset"][dirty] = w["offset"]
    ops["start"][dirty] = w["start"]
    ops["length"][dirty] = w["length"]
    writes = CardWrites(
        cards=dirty.tolist(),
        starts=(w["first"] * REC).tolist(),
        lengths=(w["added"] * REC).tolist(),
        drops=w["drop"].tolist(),
        next_seq=w["next_seq"].tolist(),
        max_time=w["max_time"].tolist(),
        added=records.tobytes(),
    )
    return payload, writes
