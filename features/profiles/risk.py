"""The one definition of terminal risk, vectorised (offline builder, Feast source, tests).

For an as-of time ``t`` and a terminal, with ``D`` the UTC day of ``t`` and ``delay`` the
label delay in days:

* a fraud label is *usable* at ``t`` when ``max(labelled_at, event_time) <= t`` (never from
  the future; a label cannot precede its transaction);
* ``terminal_fraud_count_{w}d``: usable fraud transactions at the terminal whose event day
  is in ``[D - delay - w, D - delay)``;
* ``terminal_fraud_share_{w}d``: that count / all transactions at the terminal with event
  day in the same window (0 when there are none);
* ``terminal_days_since_fraud``: ``(t - e) / 1 day`` where ``e`` is the latest event time of
  a usable fraud at the terminal, capped at 365; 365 when there is none.

Times are handled as integer microseconds since the epoch, so the Lua writer (which only
has doubles) computes bit-identical values. Counts and shares come out as float32 exactly
as Feast stores them; ``days_since`` is float32 of the float64 quotient.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.profiles.errors import ProfileInputError
from features.profiles.names import (
    DAYS_SINCE_FEATURE,
    DAYS_SINCE_NONE,
    DEFAULT_DELAY_DAYS,
    FRAUD_COUNT_FEATURES,
    FRAUD_SHARE_FEATURES,
    RISK_WINDOWS_DAYS,
    TERMINAL_JOIN_KEY,
    TERMINAL_RISK_FEATURES,
)
from features.profiles.times import DAY_US, TimesLike, to_utc_us


def fraud_events(transactions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Known frauds joined to their transactions: terminal_id, transaction_id, event_us,
    usable_us (``max(labelled_at, event_time)``), one row per transaction (earliest label)."""
    _require(transactions, ("transaction_id", "terminal_id", "event_time"), "transactions")
    _require(labels, ("transaction_id", "is_fraud", "labelled_at"), "labels")
    frauds = labels.loc[labels["is_fraud"].astype(np.int64) == 1, ["transaction_id", "labelled_at"]]
    joined = frauds.merge(
        transactions[["transaction_id", "terminal_id", "event_time"]], on="transaction_id"
    )
    event_us = to_utc_us(joined["event_time"])
    usable_us = np.maximum(to_utc_us(joined["labelled_at"]), event_us)
    out = pd.DataFrame(
        {
            "transaction_id": joined["transaction_id"].to_numpy(),
            "terminal_id": joined["terminal_id"].to_numpy(),
            "event_us": event_us,
            "usable_us": usable_us,
        }
    )
    out = out.sort_values(["transaction_id", "usable_us"], kind="stable")
    return out.drop_duplicates("transaction_id", keep="first").reset_index(drop=True)


def terminal_risk(
    transactions: pd.DataFrame,
    labels: pd.DataFrame,
    as_of: TimesLike,
    *,
    terminal_ids: TimesLike | None = None,
    delay_days: int = DEFAULT_DELAY_DAYS,
) -> pd.DataFrame:
    """Terminal-risk features (15 float32 columns, :data:`TERMINAL_RISK_FEATURES` order),
    one row per ``as_of`` row, for ``terminal_ids`` (default: ``transactions.terminal_id``,
    so ``as_of=transactions.event_time`` gives every transaction its features)."""
    _require(transactions, ("transaction_id", "terminal_id", "event_time"), "transactions")
    t_us = to_utc_us(as_of)
    q_terms = np.asarray(
        transactions[TERMINAL_JOIN_KEY].to_numpy() if terminal_ids is None else terminal_ids,
        dtype=object,
    )
    if len(q_terms) != len(t_us):
        raise ProfileInputError(f"{len(q_terms)} terminal ids for {len(t_us)} as-of times")
    if delay_days < 0:
        raise ProfileInputError(f"delay_days must be >= 0, got {delay_days}")
    tx_terms = transactions[TERMINAL_JOIN_KEY].to_numpy(dtype=object)
    frauds = fraud_events(transactions, labels)

    codes, _ = pd.factorize(np.concatenate([q_terms, tx_terms, frauds["terminal_id"].to_numpy()]))
    codes = codes.astype(np.int64)
    n_q, n_tx = len(q_terms), len(tx_terms)
    q_code, tx_code, f_code = codes[:n_q], codes[n_q : n_q + n_tx], codes[n_q + n_tx :]

    counts = _window_counts_tx(
        q_code, t_us, tx_code, to_utc_us(transactions["event_time"]), delay_days
    )
    fraud_counts = _window_counts_fraud(q_code, t_us, f_code, frauds, delay_days)
    days_since = _days_since_fraud(q_code, t_us, f_code, frauds)

    out: dict[str, np.ndarray] = {}
    for j, _w in enumerate(RISK_WINDOWS_DAYS):
        out[FRAUD_COUNT_FEATURES[j]] = fraud_counts[:, j].astype(np.float32)
    for j, _w in enumerate(RISK_WINDOWS_DAYS):
        n_tx_w = counts[:, j].astype(np.float64)
        share = np.divide(
            fraud_counts[:, j].astype(np.float64),
            n_tx_w,
            out=np.zeros(n_q, dtype=np.float64),
            where=n_tx_w > 0,
        )
        out[FRAUD_SHARE_FEATURES[j]] = share.astype(np.float32)
    out[DAYS_SINCE_FEATURE] = days_since.astype(np.float32)
    return pd.DataFrame(out, columns=list(TERMINAL_RISK_FEATURES))


def _window_counts_tx(
    q_code: np.ndarray, t_us: np.ndarray, tx_code: np.ndarray, tx_us: np.ndarray, delay: int
) -> np.ndarray:
    """(n_q, n_windows) int64: transactions at the terminal with day in each window."""
    n_q = len(q_code)
    result = np.zeros((n_q, len(RISK_WINDOWS_DAYS)), dtype=np.int64)
    if n_q == 0 or len(tx_code) == 0:
        return result
    q_day = np.floor_divide(t_us, DAY_US)
    tx_day = np.floor_divide(tx_us, DAY_US)
    day0 = min(int(tx_day.min()), int(q_day.min()) - delay - max(RISK_WINDOWS_DAYS))
    span = max(int(tx_day.max()), int(q_day.max())) - day0 + 2
    tx_keys = np.sort(tx_code * span + (tx_day - day0))
    hi = q_code * span + (q_day - delay - day0)
    order = np.argsort(hi, kind="stable")  # sorted needles: searchsorted stays in cache
    hi_sorted = hi[order]
    hi_pos = np.searchsorted(tx_keys, hi_sorted, side="left")
    for j, w in enumerate(RISK_WINDOWS_DAYS):
        result[order, j] = hi_pos - np.searchsorted(tx_keys, hi_sorted - w, side="left")
    return result


def _window_counts_fraud(
    q_code: np.ndarray, t_us: np.ndarray, f_code: np.ndarray, frauds: pd.DataFrame, delay: int
) -> np.ndarray:
    """(n_q, n_windows) int64 usable frauds per window.

    A fraud with event day ``d`` counts at ``t`` for window ``w`` iff it is usable
    (``usable <= t``) and ``d + delay < D(t) <= d + delay + w``: i.e. iff ``t`` lies in
    ``[a, b)`` with ``a = max(usable, start of day d+delay+1)`` and ``b = start of day
    d+delay+w+1``. Counting ``#(a <= t) - #(b <= t)`` per terminal is two sorted searches.
    """
    n_q = len(q_code)
    result = np.zeros((n_q, len(RISK_WINDOWS_DAYS)), dtype=np.int64)
    if n_q == 0 or len(frauds) == 0:
        return result
    event_day = np.floor_divide(frauds["event_us"].to_numpy(), DAY_US)
    usable = frauds["usable_us"].to_numpy()
    opens = np.maximum(usable, (event_day + delay + 1) * DAY_US)
    closes = [(event_day + delay + w + 1) * DAY_US for w in RISK_WINDOWS_DAYS]
    starts = [np.minimum(opens, close) for close in closes]
    ranks, rank_count = _ranks([t_us, *starts, *closes])
    q_key = q_code * rank_count + ranks[0]
    order = np.argsort(q_key, kind="stable")
    q_sorted = q_key[order]
    n_w = len(RISK_WINDOWS_DAYS)
    for j in range(n_w):
        start_keys = np.sort(f_code * rank_count + ranks[1 + j])
        close_keys = np.sort(f_code * rank_count + ranks[1 + n_w + j])
        result[order, j] = np.searchsorted(start_keys, q_sorted, side="right") - np.searchsorted(
            close_keys, q_sorted, side="right"
        )
    return result


def _days_since_fraud(
    q_code: np.ndarray, t_us: np.ndarray, f_code: np.ndarray, frauds: pd.DataFrame
) -> np.ndarray:
    """float64 days from ``t`` to the latest usable fraud event at the terminal (cap 365)."""
    n_q = len(q_code)
    days = np.full(n_q, DAYS_SINCE_NONE, dtype=np.float64)
    if n_q == 0 or len(frauds) == 0:
        return days
    ranks, rank_count = _ranks([t_us, frauds["usable_us"].to_numpy()])
    f_key = f_code * rank_count + ranks[1]
    order = np.argsort(f_key, kind="stable")
    f_key_sorted = f_key[order]
    f_code_sorted = f_code[order]
    event_sorted = frauds["event_us"].to_numpy()[order]
    # running max of the event time within each terminal (frauds sorted by terminal, usable)
    latest = pd.Series(event_sorted).groupby(f_code_sorted).cummax().to_numpy()
    pos = np.searchsorted(f_key_sorted, q_code * rank_count + ranks[0], side="right") - 1
    found = pos >= 0
    found[found] = f_code_sorted[pos[found]] == q_code[found]
    elapsed = (t_us[found] - latest[pos[found]]).astype(np.float64) / DAY_US
    days[found] = np.minimum(elapsed, DAYS_SINCE_NONE)
    return days


def _ranks(arrays: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Dense ranks of int64 times over the union of ``arrays`` (exact order, small keys)."""
    sizes = [len(a) for a in arrays]
    uniq, inverse = np.unique(np.concatenate(arrays), return_inverse=True)
    parts = np.split(inverse.astype(np.int64), np.cumsum(sizes)[:-1])
    return parts, len(uniq) + 1


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ProfileInputError(f"{what} frame lacks columns {missing}")
