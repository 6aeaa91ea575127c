"""Binary layout of the real-time state and of one batch's script call and reply.

The same bytes are produced by the Lua script (Redis) and by its Python port (in-memory
store), and decoded here into the padded arrays the shared kernels take. Layout:

- card value: ``next_seq u32 | max_time f64`` then 32-byte records in arrival order
  ``txid_hash 8 | time_us f64 | amount f64 | terminal_hash u32 | seq u32``;
- terminal value: ``max_time f64`` then ``TERMINAL_DAY_SLOTS`` x ``day i32 | count i32``;
- one packed transaction argument: ``card_index u16 | terminal_index u16 | day i32`` then the
  first 28 bytes of its card record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from features.definitions import CARD_MAX_EVENTS, CARD_WINDOW_S, TERMINAL_DAY_SLOTS
from features.kernels import (
    DAY_US,
    TERMINAL_MAX_DAYS,
    US,
    channel_code,
    merchant_category_code,
    reference_day,
    terminal_hash,
    time_us,
    transaction_hash,
)
from streams.events import Transaction

CARD_HEADER = np.dtype([("next_seq", "<u4"), ("max_time", "<f8")])
CARD_RECORD = np.dtype(
    [("txh", "V8"), ("t", "<f8"), ("amount", "<f8"), ("term", "<u4"), ("seq", "<u4")]
)
TX_ARG = np.dtype(
    [
        ("card", "<u2"),
        ("term_index", "<u2"),
        ("day", "<i4"),
        ("txh", "V8"),
        ("t", "<f8"),
        ("amount", "<f8"),
        ("term", "<u4"),
    ]
)
INFO = np.dtype([("seq", "<u4"), ("status", "<u4"), ("max_time", "<f8")])
TERM_SLOT = np.dtype([("day", "<i4"), ("count", "<i4")])
TERM_VALUE_BYTES = 8 + TERMINAL_DAY_SLOTS * TERM_SLOT.itemsize
assert CARD_HEADER.itemsize == 12 and CARD_RECORD.itemsize == 32 and TX_ARG.itemsize == 36
assert INFO.itemsize == 16

STATUS_APPLIED, STATUS_DUPLICATE, STATUS_TOO_LATE, STATUS_TERMINAL_LATE = 0, 1, 2, 4
MAX_KEYS_PER_KIND = 65_535

_MCC: dict[str, int] = {}


def card_key(prefix: str, card_id: str) -> str:
    """All keys of one card share the Redis Cluster hash tag ``{card_id}``."""
    return f"{prefix}:card:{{{card_id}}}"


def terminal_key(prefix: str, terminal_id: str) -> str:
    return f"{prefix}:term:{{{terminal_id}}}"


@dataclass(frozen=True)
class EncodedBatch:
    """One batch turned into arrays, distinct keys and the packed script argument."""

    t_us: npt.NDArray[np.int64]
    amount: npt.NDArray[np.float64]
    term_hash: npt.NDArray[np.int64]
    channel: npt.NDArray[np.int64]
    mcc: npt.NDArray[np.int64]
    card_index: npt.NDArray[np.int64]
    term_index: npt.NDArray[np.int64]
    ref_day: npt.NDArray[np.int64]
    card_keys: list[str]
    term_keys: list[str]
    terminal_ids: list[str]
    packed: bytes

    @property
    def n(self) -> int:
        return len(self.t_us)


def encode_batch(transactions: Sequence[Transaction], prefix: str, lateness_s: int) -> EncodedBatch:
    n = len(transactions)
    arg = np.zeros(n, dtype=TX_ARG)
    cards: dict[str, int] = {}
    terms: dict[str, int] = {}
    t = np.empty(n, dtype=np.int64)
    th = np.empty(n, dtype=np.int64)
    ch = np.empty(n, dtype=np.int64)
    mcc = np.empty(n, dtype=np.int64)
    ci = np.empty(n, dtype=np.int64)
    ti = np.empty(n, dtype=np.int64)
    amount = np.empty(n, dtype=np.float64)
    txh = np.empty(n, dtype="V8")
    terminal_ids: list[str] = []
    for i, tx in enumerate(transactions):
        t[i] = time_us(tx.event_time)
        amount[i] = tx.amount
        txh[i] = transaction_hash(tx.transaction_id)
        term = tx.terminal_id
        th[i] = terminal_hash(term)
        code = _MCC.get(tx.merchant_category)
        if code is None:
            code = _MCC.setdefault(
                tx.merchant_category, merchant_category_code(tx.merchant_category)
            )
        mcc[i] = code
        ch[i] = channel_code(tx.channel)
        ci[i] = cards.setdefault(tx.card_id, len(cards))
        ti[i] = terms.setdefault(term, len(terms))
        terminal_ids.append(term)
    if len(cards) > MAX_KEYS_PER_KIND or len(terms) > MAX_KEYS_PER_KIND:
        raise ValueError(f"batch of {n} has too many distinct keys")
    arg["card"] = ci + 1
    arg["term_index"] = ti + 1
    arg["day"] = t // DAY_US
    arg["txh"] = txh
    arg["t"] = t
    arg["amount"] = amount
    arg["term"] = th
    return EncodedBatch(
        t_us=t,
        amount=amount,
        term_hash=th,
        channel=ch,
        mcc=mcc,
        card_index=ci,
        term_index=ti,
        ref_day=reference_day(t, lateness_s),
        card_keys=[card_key(prefix, c) for c in cards],
        term_keys=[terminal_key(prefix, k) for k in terms],
        terminal_ids=terminal_ids,
        packed=arg.tobytes(),
    )


@dataclass(frozen=True)
class DecodedBatch:
    """What the kernels need, as of each transaction's arrival."""

    status: npt.NDArray[np.int64]
    ev_t: npt.NDArray[np.int64]
    ev_amount: npt.NDArray[np.float64]
    ev_term: npt.NDArray[np.int64]
    valid: npt.NDArray[np.bool_]
    lower_us: npt.NDArray[np.int64]
    day_counts: npt.NDArray[np.int64]


def decode_reply(reply: Sequence[bytes], batch: EncodedBatch, retention_s: int) -> DecodedBatch:
    info = np.frombuffer(reply[0], dtype=INFO)
    nc, nt = len(batch.card_keys), len(batch.term_keys)
    status = info["status"].astype(np.int64)
    seq = info["seq"].astype(np.int64)
    too_late = (status & 3) == STATUS_TOO_LATE

    # card candidates: records with seq in [seq - K, seq) of the transaction's card, from
    # the stored records (before the batch) and the batch's own applied rows; both parts
    # are in seq order and the stored part comes first, so each row stays in seq order.
    hdr = CARD_HEADER.itemsize
    blobs = reply[1 : 1 + nc]
    counts = np.fromiter(
        ((len(b) - hdr) // CARD_RECORD.itemsize if b else 0 for b in blobs), np.int64, nc
    )
    stored = np.frombuffer(b"".join([b[hdr:] for b in blobs]), dtype=CARD_RECORD)
    stored_key = np.repeat(np.arange(nc, dtype=np.int64) << 32, counts) + stored["seq"].astype(
        np.int64
    )
    stored_seq: npt.NDArray[np.int64] = np.asarray(stored_key, dtype=np.int64)
    own = batch.card_index << 32
    low = own + np.maximum(seq - CARD_MAX_EVENTS, 0)
    applied = np.flatnonzero((status & 3) == STATUS_APPLIED)
    new_key = own[applied] + seq[applied]  # ascending within a card (batch order)
    order = np.argsort(new_key, kind="stable")
    new_rows = applied[order]
    parts = [
        _gather(
            stored_seq,
            low,
            own + seq,
            stored["t"].astype(np.int64),
            stored["amount"],
            stored["term"].astype(np.int64),
        ),
        _gather(
            new_key[order],
            low,
            own + seq,
            batch.t_us[new_rows],
            batch.amount[new_rows],
            batch.term_hash[new_rows],
        ),
    ]
    ev_t = np.hstack([p[0] for p in parts])
    ev_amount = np.hstack([p[1] for p in parts])
    ev_term = np.hstack([p[2] for p in parts])
    valid = np.hstack([p[3] for p in parts])
    lower = batch.t_us - CARD_WINDOW_S * US
    if too_late.any():
        trimmed = np.maximum(info["max_time"], -4e18).astype(np.int64) - retention_s * US
        lower = np.where(too_late, np.maximum(lower, trimmed), lower)
    day_counts = _terminal_day_counts(reply[1 + nc : 1 + nc + nt], batch, status)
    return DecodedBatch(status, ev_t, ev_amount, ev_term, valid, lower, day_counts)


def _gather(
    key: npt.NDArray[np.int64],
    low: npt.NDArray[np.int64],
    high: npt.NDArray[np.int64],
    t: npt.NDArray[np.int64],
    amount: npt.NDArray[np.float64],
    term: npt.NDArray[np.int64],
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.bool_]
]:
    """Left-aligned ``[n, W]`` matrices of the records with ``low <= key < high`` per row."""
    lo = np.searchsorted(key, low, side="left")
    hi = np.searchsorted(key, high, side="left")
    width = int((hi - lo).max(initial=0))
    idx = lo[:, None] + np.arange(width, dtype=np.int64)[None, :]
    valid = idx < hi[:, None]
    idx = np.minimum(idx, max(len(key) - 1, 0))
    if not len(key):
        z = np.zeros(idx.shape, dtype=np.int64)
        return z, z.astype(np.float64), z, valid
    return t[idx], amount[idx], term[idx], valid


def _terminal_day_counts(
    pre: Sequence[bytes], batch: EncodedBatch, status: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Counts of days ``D-1 .. D-30``: the stored buckets plus this batch's own increments.

    An applied row adds to its terminal's day; every row sees all of the batch's increments
    to days before its reference day (those are final, see definitions), except a too-late
    row, which sees the state at its arrival: only increments of earlier rows.
    """
    empty = bytes(TERM_VALUE_BYTES)
    raw = b"".join([v if v else empty for v in pre])
    body = np.frombuffer(raw, dtype=np.uint8).reshape(-1, TERM_VALUE_BYTES)[:, 8:]
    slots = np.ascontiguousarray(body).view(TERM_SLOT).reshape(-1, TERMINAL_DAY_SLOTS)
    wanted = batch.ref_day[:, None] - 1 - np.arange(TERMINAL_MAX_DAYS, dtype=np.int64)[None, :]
    cell = slots[batch.term_index[:, None], wanted % TERMINAL_DAY_SLOTS]
    counts = np.where(cell["day"] == wanted, cell["count"], 0).astype(np.int64)
    applied = np.flatnonzero(status == STATUS_APPLIED)
    if len(applied):
        day = batch.t_us // DAY_US
        keys = batch.term_index[applied] * _SHIFT + day[applied]
        order = np.sort(keys)
        q = batch.term_index[:, None] * _SHIFT + wanted
        counts += np.searchsorted(order, q, side="right") - np.searchsorted(order, q, side="left")
        for i in np.flatnonzero((status & 3) == STATUS_TOO_LATE):
            later = applied[applied > i]
            later = later[batch.term_index[later] == batch.term_index[i]]
            for d in day[later]:
                counts[i] -= wanted[i] == d
    return counts


_SHIFT = np.int64(1 << 24)
