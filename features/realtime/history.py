"""Each transaction's card history as the kernels take it: padded ``[n, W]`` matrices.

A row's candidates are the records of its card with ``seq`` in ``[seq - K, seq)``
(``K = CARD_MAX_EVENTS``): the stored ones (before the batch) and the batch's own applied
rows. Both parts are in seq order and the stored part comes first, so every row stays in
arrival order, left-aligned, whatever the padding width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from features.definitions import CARD_MAX_EVENTS, CARD_WINDOW_S
from features.kernels import US
from features.realtime.cards import CardPlan
from features.realtime.layout import STATUS_APPLIED, STATUS_TOO_LATE, EncodedBatch

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CardHistory:
    ev_t: I64
    ev_amount: F64
    ev_term: I64
    valid: Bool
    lower_us: I64


def card_history(batch: EncodedBatch, plan: CardPlan, retention_s: int) -> CardHistory:
    status, seq = plan.status, plan.seq
    nc = len(plan.stored_counts)
    stored = plan.stored
    own = batch.card_index << 32
    stored_seq = np.asarray(stored["seq"], dtype=np.int64)
    stored_key: I64 = (
        np.repeat(np.arange(nc, dtype=np.int64) << 32, plan.stored_counts) + stored_seq
    )
    low = own + np.maximum(seq - CARD_MAX_EVENTS, 0)
    high = own + seq
    applied = np.flatnonzero((status & 3) == STATUS_APPLIED)
    new_key = own[applied] + seq[applied]
    order = np.argsort(new_key, kind="stable")
    new_rows = applied[order]
    s_lo, s_hi = _bounds(stored_key, low, high)
    n_lo, n_hi = _bounds(new_key[order], low, high)
    width = int(((s_hi - s_lo) + (n_hi - n_lo)).max(initial=0))
    # one table of candidate values: the stored records, then the batch's applied rows
    t = np.concatenate([stored["t"].astype(np.int64), batch.t_us[new_rows]])
    amount = np.concatenate([stored["amount"], batch.amount[new_rows]])
    term = np.concatenate([stored["term"].astype(np.int64), batch.term_hash[new_rows]])
    col = np.arange(width, dtype=np.int64)[None, :]
    n_stored = (s_hi - s_lo)[:, None]
    # column c of a row: its c-th stored candidate, then its candidates among the new rows
    # (one [n, width] select of per-row offsets: fewer temporaries than two index tables)
    idx = col + np.where(col < n_stored, s_lo[:, None], len(stored) + n_lo[:, None] - n_stored)
    valid = col < n_stored + (n_hi - n_lo)[:, None]
    idx[~valid] = 0
    if len(t) == 0:
        z = np.zeros(idx.shape, dtype=np.int64)
        ev_t, ev_amount, ev_term = z, z.astype(np.float64), z
    else:
        ev_t, ev_amount, ev_term = t[idx], amount[idx], term[idx]
    lower = batch.t_us - CARD_WINDOW_S * US
    too_late = (status & 3) == STATUS_TOO_LATE
    if too_late.any():
        trimmed = np.maximum(plan.arrival_max, -4e18).astype(np.int64) - retention_s * US
        lower = np.where(too_late, np.maximum(lower, trimmed), lower)
    return CardHistory(ev_t, ev_amount, ev_term, valid, lower)


def _bounds(key: I64, low: I64, high: I64) -> tuple[I64, I64]:
    return np.searchsorted(key, low, side="left"), np.searchsorted(key, high, side="left")
