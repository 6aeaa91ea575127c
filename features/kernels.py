"""Feature kernels shared by the online store and the offline builder.

Both paths reduce a transaction's context to the same arrays - the card's candidate
earlier events in arrival order (segments of one table; the card kernel itself is C,
:mod:`features.card_kernel`), the terminal's day counts, the transaction's own fields - and
call these functions, which are driven by the definitions in :mod:`features.definitions`
(a card aggregation the C kernel does not know fails at import). Times are integer
microseconds since the epoch (exact in both paths); all results are float64 before
clipping and the float32 cast.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from features import card_kernel
from features.definitions import (
    CARD_FEATURES,
    CARD_WINDOW_S,
    CHANNELS,
    FEATURES,
    MERCHANT_CATEGORY_BUCKETS,
    NIGHT_HOURS,
    TERMINAL_FEATURES,
    TRANSACTION_FEATURES,
    FeatureDef,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

US = 1_000_000
DAY_US = 86_400 * US
MEDIAN_REFERENCE_WINDOW_S = 30 * 86_400
"""``count_above_median`` compares with the card's median over this window."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHANNEL_CODE = {c: i for i, c in enumerate(CHANNELS)}


# -- encodings of single values (used identically online and offline) --------------------


def time_us(when: datetime) -> int:
    """Exact integer microseconds since the epoch of an aware datetime."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def terminal_hash(terminal_id: str) -> int:
    """32-bit hash of a terminal id (distinct counting inside a card's history)."""
    return zlib.crc32(terminal_id.encode())


def transaction_hash(transaction_id: str) -> bytes:
    """64-bit digest guarding idempotence of a card update."""
    return hashlib.blake2b(transaction_id.encode(), digest_size=8).digest()


def channel_code(channel: str) -> int:
    return _CHANNEL_CODE.get(channel, -1)


def merchant_category_code(merchant_category: str) -> int:
    return zlib.crc32(merchant_category.encode()) % MERCHANT_CATEGORY_BUCKETS


def codes(values: Iterable[str], fn: object) -> I64:
    """Apply an encoding to many values, computing it once per distinct value."""
    arr = np.asarray(list(values), dtype=object)
    uniq, inv = np.unique(arr.astype(str), return_inverse=True)
    table = np.fromiter((fn(u) for u in uniq), dtype=np.int64, count=len(uniq))  # type: ignore[operator]
    return table[inv].astype(np.int64)


# -- transaction-level --------------------------------------------------------------------


def transaction_features(t_us: I64, amount: F64, channel: I64, mcc: I64) -> dict[str, F64]:
    hour = (t_us // (3600 * US)) % 24
    weekday = (t_us // DAY_US + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    values: dict[str, F64] = {}
    for f in TRANSACTION_FEATURES:
        a = f.aggregation
        if a == "amount":
            v = amount.astype(np.float64)
        elif a == "log_amount":
            v = np.log1p(amount)
        elif a == "hour":
            v = hour.astype(np.float64)
        elif a == "is_weekend":
            v = (weekday >= 5).astype(np.float64)
        elif a == "is_night":
            v = ((hour >= NIGHT_HOURS[0]) & (hour < NIGHT_HOURS[1])).astype(np.float64)
        elif a == "channel_code":
            v = channel.astype(np.float64)
        elif a == "merchant_category_code":
            v = mcc.astype(np.float64)
        else:  # pragma: no cover - guarded by the registry test
            raise ValueError(f"no kernel for {f.name}")
        values[f.name] = v
    return values


# -- card ---------------------------------------------------------------------------------


_CARD_WINDOWS_S: tuple[int, ...] = tuple(
    sorted(
        {int(f.window_s or CARD_WINDOW_S) for f in CARD_FEATURES}
        | {MEDIAN_REFERENCE_WINDOW_S, CARD_WINDOW_S}
    )
)
_WINDOW_INDEX = {w: i for i, w in enumerate(_CARD_WINDOWS_S)}
_CARD_OPS = (
    np.array(_CARD_WINDOWS_S, dtype=np.int64) * US,
    np.array([card_kernel.OPS.index(f.aggregation) for f in CARD_FEATURES], dtype=np.int64),
    np.array([_WINDOW_INDEX[int(f.window_s or CARD_WINDOW_S)] for f in CARD_FEATURES]),
    np.array([float(f.param or 1.0) for f in CARD_FEATURES]),
    np.array([f.default for f in CARD_FEATURES], dtype=np.float64),
    _WINDOW_INDEX[MEDIAN_REFERENCE_WINDOW_S],
)
"""The card definitions as the compiled kernel's operation table: windows (ascending,
µs), then per feature its operation, window index, parameter and default, then the
window of the median that ``count_above_median`` compares with."""


def card_features_of_segments(
    t_us: I64,
    amount: F64,
    term: I64,
    table_t: I64,
    table_amount: F64,
    table_term: I64,
    starts: I64,
    lengths: I64,
    lower_us: I64,
) -> dict[str, F64]:
    """Card features of each row from its candidate earlier events, given as up to two
    segments of one table: row ``i``'s events are ``table_*[starts[i, p] :
    starts[i, p] + lengths[i, p]]`` for ``p = 0`` then ``1`` (``[n, 2]``; a length may be
    0), the card's last accepted events that arrived before the transaction, in arrival
    order (the online store: the stored ring, then the batch's own earlier rows).

    ``lower_us`` is the earliest event time allowed (``t - 30 d`` unless the state was
    trimmed further for a too-late transaction). Computed by the compiled kernel
    (:mod:`features.card_kernel`): sums run strictly left to right over each row's own
    events, so the result depends on nothing else (online batches and offline chunks
    agree bit for bit).
    """
    out = card_kernel.card_rows(
        t_us,
        amount,
        term,
        table_t,
        table_amount,
        table_term,
        starts,
        lengths,
        lower_us,
        CARD_WINDOW_S * US,
        *_CARD_OPS,
    )
    return {f.name: out[k] for k, f in enumerate(CARD_FEATURES)}


def card_features(
    t_us: I64,
    amount: F64,
    term: I64,
    ev_t: I64,
    ev_amount: F64,
    ev_term: I64,
    valid: Bool,
    lower_us: I64,
) -> dict[str, F64]:
    """:func:`card_features_of_segments` with each row's events as a padded row:
    ``ev_*`` / ``valid`` are ``[n, W]``, in arrival order, ``valid`` False on padding."""
    n = len(t_us)
    valid = np.asarray(valid, dtype=bool)
    lengths = np.zeros((n, 2), dtype=np.int64)
    lengths[:, 0] = valid.sum(axis=1)
    starts = np.zeros((n, 2), dtype=np.int64)
    starts[1:, 0] = np.cumsum(lengths[:-1, 0])
    return card_features_of_segments(
        t_us,
        amount,
        term,
        np.asarray(ev_t)[valid],
        np.asarray(ev_amount)[valid],
        np.asarray(ev_term)[valid],
        starts,
        lengths,
        lower_us,
    )


# -- terminal -----------------------------------------------------------------------------


def terminal_features(day_counts: I64) -> dict[str, F64]:
    """Terminal counts from ``day_counts[:, k]`` = accepted transactions on day ``D - 1 - k``."""
    csum = np.cumsum(day_counts, axis=1, dtype=np.int64)
    out: dict[str, F64] = {}
    for f in TERMINAL_FEATURES:
        days = int((f.window_s or 86_400) // 86_400)
        out[f.name] = csum[:, days - 1].astype(np.float64)
    return out


TERMINAL_MAX_DAYS = max(int((f.window_s or 0) // 86_400) for f in TERMINAL_FEATURES)


def reference_day(t_us: I64, lateness_s: int) -> I64:
    """``D``: terminal windows are the complete UTC days ``[D - w, D)``."""
    return (t_us - lateness_s * US) // DAY_US


# -- bounds -------------------------------------------------------------------------------

_DEFAULTS = np.array([f.default for f in FEATURES], dtype=np.float64)
_LO = np.array([f.clip[0] for f in FEATURES], dtype=np.float64)
_HI = np.array([f.clip[1] for f in FEATURES], dtype=np.float64)


def clip_features(
    matrix: F64, defs: tuple[FeatureDef, ...] = FEATURES
) -> tuple[F64, npt.NDArray[np.int64]]:
    """Replace NaN by the default and clip to each definition's range.

    Returns the bounded matrix and, per row, how many values had to be changed.
    """
    if defs is FEATURES:
        default, lo, hi = _DEFAULTS, _LO, _HI
    else:
        default = np.array([f.default for f in defs])
        lo = np.array([f.clip[0] for f in defs])
        hi = np.array([f.clip[1] for f in defs])
    nan = np.isnan(matrix)
    filled = np.where(nan, default, matrix)
    bounded = np.clip(filled, lo, hi)
    changed = (nan | (bounded != filled)).sum(axis=1).astype(np.int64)
    return bounded, changed
