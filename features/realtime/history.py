"""Each transaction's card history as the kernel takes it: two segments of one table.

A row's candidates are the records of its card with ``seq`` in ``[seq - K, seq)``
(``K = CARD_MAX_EVENTS``): the stored ones (before the batch) and the batch's own applied
rows. The table holds the stored records, then the batch's applied rows ordered by
(card, seq); a row's first segment is its stored candidates, its second its candidates
among the new rows, both in seq order, so the row's events are in arrival order.
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


@dataclass(frozen=True)
class CardHistory:
    """Arguments of :func:`features.kernels.card_features_of_segments`."""

    table_t: I64
    table_amount: F64
    table_term: I64
    starts: I64
    lengths: I64
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
    starts = np.stack([s_lo, n_lo + len(stored)], axis=1)
    lengths = np.stack([s_hi - s_lo, n_hi - n_lo], axis=1)
    lower = batch.t_us - CARD_WINDOW_S * US
    too_late = (status & 3) == STATUS_TOO_LATE
    if too_late.any():
        trimmed = np.maximum(plan.arrival_max, -4e18).astype(np.int64) - retention_s * US
        lower = np.where(too_late, np.maximum(lower, trimmed), lower)
    return CardHistory(
        np.concatenate([stored["t"].astype(np.int64), batch.t_us[new_rows]]),
        np.concatenate([stored["amount"], batch.amount[new_rows]]),
        np.concatenate([stored["term"].astype(np.int64), batch.term_hash[new_rows]]),
        starts,
        lengths,
        lower,
    )


def _bounds(key: I64, low: I64, high: I64) -> tuple[I64, I64]:
    return np.searchsorted(key, low, side="left"), np.searchsorted(key, high, side="left")
