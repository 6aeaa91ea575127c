"""Offline point-in-time builder: the training table from history + labels.

Vectorised re-statement of the real-time state semantics (see :mod:`features.definitions`)
over a whole history, feeding the *same* kernels as the online store
(:mod:`features.kernels`), so a row here equals what the scorer served for the same
transaction in the same arrival order (the parity test proves it). The rows of
``transactions_df`` are taken in arrival order - the order a scorer would have seen them;
a simulator history sorted by event time is such an order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.definitions import (
    ALLOWED_LATENESS_S,
    CARD_MAX_EVENTS,
    CARD_WINDOW_S,
    CHANNELS,
    DAY_S,
    FEATURE_INDEX,
    FEATURE_NAMES,
    LABEL_DELAY_DAYS,
    PROFILE_FEATURE_NAMES,
    PROFILE_FEATURES,
    TERMINAL_FEATURES,
)
from features.errors import TrainingDataError
from features.kernels import (
    DAY_US,
    US,
    card_features_of_segments,
    clip_features,
    codes,
    merchant_category_code,
    reference_day,
    terminal_hash,
    transaction_features,
)

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
KEY_COLUMNS = ("transaction_id", "event_time", "card_id", "customer_id", "terminal_id", "amount")
REQUIRED = KEY_COLUMNS
ProfileFn = Callable[..., pd.DataFrame]
_NEG = np.iinfo(np.int64).min // 4


def event_time_us(values: pd.Series) -> I64:
    """Integer microseconds since the epoch (exactly what the online path computes)."""
    ts = pd.to_datetime(values, utc=True)
    return np.asarray(ts.astype("datetime64[ns, UTC]").astype("int64"), dtype=np.int64) // 1000


def _group_prev_max(group: I64, t: I64) -> I64:
    """For rows sorted by group, the max of ``t`` over the earlier rows of the group."""
    cm = pd.Series(t).groupby(group).cummax().to_numpy(dtype=np.int64)
    prev = np.empty_like(cm)
    prev[1:] = cm[:-1]
    first = np.ones(len(t), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    prev[first] = _NEG
    return prev


def _exclusive_cumsum(group: I64, x: I64) -> I64:
    return pd.Series(x).groupby(group).cumsum().to_numpy(dtype=np.int64) - x


def _first_in_window(acc_card: I64, acc_t: I64, card_sorted: I64, start: I64) -> I64:
    """Per row, the first accepted event of its card from which any may be in the window.

    Events before it (by arrival) all have times before ``start``: skipping them changes no
    feature (they are masked anyway) but keeps the candidate matrices narrow.
    """
    out = np.zeros(len(card_sorted), dtype=np.int64)
    a_bounds = np.flatnonzero(np.diff(acc_card)) + 1
    a_starts = np.concatenate([[0], a_bounds]) if len(acc_card) else np.zeros(0, np.int64)
    a_ends = np.concatenate([a_bounds, [len(acc_card)]]) if len(acc_card) else a_starts
    r_starts = np.searchsorted(card_sorted, acc_card[a_starts], side="left")
    r_ends = np.searchsorted(card_sorted, acc_card[a_starts], side="right")
    for a0, a1, r0, r1 in zip(a_starts, a_ends, r_starts, r_ends, strict=True):
        running_max = np.maximum.accumulate(acc_t[a0:a1])
        out[r0:r1] = a0 + np.searchsorted(running_max, start[r0:r1], side="left")
    return out


def card_columns(
    card: I64, t: I64, amount: F64, term: I64, lateness_s: int
) -> tuple[dict[str, F64], npt.NDArray[np.bool_]]:
    """Card features of every row (rows in arrival order) and whether each was accepted."""
    n = len(t)
    order = np.lexsort((np.arange(n), card))
    c, ts = card[order], t[order]
    prev_max = _group_prev_max(c, ts)
    accepted_s = (prev_max == _NEG) | (ts >= prev_max - lateness_s * US)
    seq = _exclusive_cumsum(c, accepted_s.astype(np.int64))
    acc = order[accepted_s]  # accepted rows by (card, arrival): the rings' contents
    acc_card = card[acc]
    first_acc = np.searchsorted(acc_card, c, side="left")
    hi = first_acc + seq
    lo = first_acc + np.maximum(seq - CARD_MAX_EVENTS, 0)
    lo = np.maximum(lo, _first_in_window(acc_card, t[acc], c, ts - CARD_WINDOW_S * US))
    lower = ts - CARD_WINDOW_S * US
    retention = (CARD_WINDOW_S + lateness_s) * US
    lower = np.where(accepted_s, lower, np.maximum(lower, prev_max - retention))

    lengths = np.zeros((n, 2), dtype=np.int64)
    lengths[:, 0] = np.maximum(hi - lo, 0)
    starts = np.zeros((n, 2), dtype=np.int64)
    starts[:, 0] = lo
    sorted_cols = card_features_of_segments(
        ts, amount[order], term[order], t[acc], amount[acc], term[acc], starts, lengths, lower
    )
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    out = {k: v[inverse] for k, v in sorted_cols.items()}
    accepted = np.empty(n, dtype=bool)
    accepted[order] = accepted_s
    return out, accepted


def terminal_columns(
    terminal: I64, t: I64, accepted: npt.NDArray[np.bool_], lateness_s: int
) -> dict[str, F64]:
    """Terminal day counts of every row (rows in arrival order)."""
    rows = np.flatnonzero(accepted)
    order = rows[np.lexsort((rows, terminal[rows]))]
    g, ts = terminal[order], t[order]
    prev_max = _group_prev_max(g, ts)
    applied = order[(prev_max == _NEG) | (ts >= prev_max - lateness_s * US)]
    day = t // DAY_US
    shift = np.int64(1 << 24)
    keys = np.sort(terminal[applied] * shift + day[applied])
    ref = reference_day(t, lateness_s)
    base = terminal * shift
    end = np.searchsorted(keys, base + ref, side="left")
    windows = [(f.name, int((f.window_s or DAY_S) // DAY_S)) for f in TERMINAL_FEATURES]
    out = {
        name: (end - np.searchsorted(keys, base + ref - w, side="left")).astype(np.float64)
        for name, w in windows
    }
    # a too-late row saw its terminal as of its arrival: only events applied before it
    applied_term = terminal[applied]  # applied is sorted by (terminal, arrival)
    for i in np.flatnonzero(~accepted):
        a = np.searchsorted(applied_term, terminal[i], side="left")
        b = np.searchsorted(applied_term, terminal[i], side="right")
        k = a + np.searchsorted(applied[a:b], i, side="left")
        d = day[applied[a:k]]
        for name, w in windows:
            out[name][i] = float(((d >= ref[i] - w) & (d < ref[i])).sum())
    return out


def default_profiles(n: int) -> pd.DataFrame:
    return pd.DataFrame({f.name: np.full(n, f.default, dtype=np.float64) for f in PROFILE_FEATURES})


def _load_profile_fn() -> ProfileFn:
    """The one terminal-risk definition (imported late: it pulls in pandas-heavy code that
    the online path does not need). Never optional: a table without it would train a model
    on default risk columns, silently."""
    from features.profiles.risk import terminal_risk

    return terminal_risk


def build_training_table(
    transactions_df: pd.DataFrame,
    labels_df: pd.DataFrame | None,
    *,
    label_delay_days: int = LABEL_DELAY_DAYS,
    profile_fn: ProfileFn | None = None,
    allowed_lateness_s: int = ALLOWED_LATENESS_S,
    use_profiles: bool = True,
) -> pd.DataFrame:
    """Point-in-time training table: keys, ``is_fraud``, then ``FEATURE_NAMES`` (float64).

    ``transactions_df`` rows are in arrival order (duplicates of a ``transaction_id`` after
    the first are dropped, as the online store ignores replays). ``profile_fn`` (default:
    :func:`features.profiles.risk.terminal_risk`) computes the label-risk columns with the
    label delay; with ``use_profiles=False`` they get their defaults.
    The float64 values equal the online ``FeatureMatrix.raw``; the model sees float32.
    """
    missing = tuple(c for c in REQUIRED if c not in transactions_df.columns)
    if missing:
        raise TrainingDataError(f"transactions are missing columns {missing}", missing)
    tx = transactions_df.drop_duplicates("transaction_id", keep="first").reset_index(drop=True)
    n = len(tx)
    t = event_time_us(tx["event_time"])
    amount = tx["amount"].to_numpy(dtype=np.float64)
    card = pd.factorize(tx["card_id"])[0].astype(np.int64)
    terminal = pd.factorize(tx["terminal_id"])[0].astype(np.int64)
    term_hash = codes(tx["terminal_id"], terminal_hash)
    channel = (
        tx["channel"].map({c: i for i, c in enumerate(CHANNELS)}).fillna(-1).to_numpy(np.int64)
        if "channel" in tx
        else np.zeros(n, dtype=np.int64)
    )
    mcc_values = tx["merchant_category"] if "merchant_category" in tx else pd.Series(["5411"] * n)
    mcc = codes(mcc_values, merchant_category_code)

    raw = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
    cols: dict[str, F64] = dict(transaction_features(t, amount, channel, mcc))
    card_cols, accepted = card_columns(card, t, amount, term_hash, allowed_lateness_s)
    cols.update(card_cols)
    cols.update(terminal_columns(terminal, t, accepted, allowed_lateness_s))
    if use_profiles:
        fn = profile_fn or _load_profile_fn()
        prof = _call_profile_fn(fn, tx, labels_df, t, label_delay_days)
    else:
        prof = default_profiles(n)
    for name in PROFILE_FEATURE_NAMES:
        cols[name] = prof[name].to_numpy(dtype=np.float64)
    for name, values in cols.items():
        raw[:, FEATURE_INDEX[name]] = values
    bounded, _ = clip_features(raw)

    out = tx[list(KEY_COLUMNS)].copy()
    out["is_fraud"] = _labels(tx["transaction_id"], labels_df)
    features = pd.DataFrame(bounded, columns=list(FEATURE_NAMES), index=out.index)
    return pd.concat([out, features], axis=1)


def _call_profile_fn(
    fn: ProfileFn, tx: pd.DataFrame, labels: pd.DataFrame | None, t: I64, delay: int
) -> pd.DataFrame:
    as_of = pd.to_datetime(t * 1000, utc=True)
    kwargs: dict[str, Any] = {"as_of": as_of, "delay_days": delay}
    prof = fn(tx, labels if labels is not None else _empty_labels(), **kwargs)
    absent = [c for c in PROFILE_FEATURE_NAMES if c not in prof.columns]
    if absent or len(prof) != len(tx):
        raise TrainingDataError(f"profile function returned {len(prof)} rows, missing {absent}")
    return prof.reset_index(drop=True)


def _empty_labels() -> pd.DataFrame:
    return pd.DataFrame({"transaction_id": [], "event_time": [], "is_fraud": [], "labelled_at": []})


def _labels(ids: pd.Series, labels: pd.DataFrame | None) -> npt.NDArray[np.int8]:
    if labels is None or labels.empty:
        return np.zeros(len(ids), dtype=np.int8)
    lab = labels.drop_duplicates("transaction_id", keep="last").set_index("transaction_id")
    return ids.map(lab["is_fraud"].astype(np.int8)).fillna(0).to_numpy(dtype=np.int8)
