"""The feature registry: every feature of the model is defined here, once.

The online path (:mod:`features.realtime`) and the offline builder (:mod:`features.offline`)
are both driven by :data:`FEATURES`; nothing else lists feature names. The column order of
the model is :data:`FEATURE_NAMES` and :data:`FEATURE_SET_ID` identifies this exact set
(names, windows, caps and version) in every ``Decision``.

Semantics shared by both paths (the no-skew contract, tested by the parity test):

- A card's history is the *accepted* transactions of the card in arrival order. A
  transaction arriving more than :data:`ALLOWED_LATENESS_S` behind the newest event time
  already seen for its card is *too late*: it is scored but never added to any state.
- The card features of a transaction use only the card's last :data:`CARD_MAX_EVENTS`
  accepted transactions that arrived before it, restricted by event time to
  ``[t - window, t)``: a transaction is never part of its own features, and an event that
  arrives later never changes an earlier transaction's features.
- Terminal counts are per UTC day. A transaction at time ``t`` counts the complete days
  ``[D - w, D)`` with ``D = floor((t - lateness) / 1 day)``. An event is added to its
  terminal's day bucket only if it was accepted for its card and its time is within the
  lateness of the newest time seen at that terminal; this makes those days final by the
  time any transaction reads them, so the counts do not depend on arrival order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Entity = Literal["card", "terminal", "transaction"]
Source = Literal["realtime", "profile", "transaction"]
Aggregation = Literal[
    "count",
    "sum",
    "mean",
    "median",
    "std",
    "zscore",
    "count_above_median",
    "seconds_since_last",
    "distinct_terminals",
    "is_empty",
    "terminal_not_seen",
    "day_count",
    "amount",
    "log_amount",
    "hour",
    "is_weekend",
    "is_night",
    "channel_code",
    "merchant_category_code",
    "fraud_count",
    "fraud_share",
    "days_since_fraud",
]

DEFINITION_VERSION = 1
MINUTE_S = 60
HOUR_S = 3600
DAY_S = 86_400

CARD_WINDOW_S = 30 * DAY_S
"""Longest card window; events older than this never enter a card feature."""
CARD_MAX_EVENTS = 256
"""Card windows see at most this many of the card's most recent accepted transactions."""
CARD_RING_CAPACITY = 320
"""Records kept per card (>= CARD_MAX_EVENTS; the slack keeps replays of a batch exact)."""
CARD_TRIM_CHUNK = 32
"""Records beyond the capacity / retention are dropped lazily, this many at a time."""
CardWriteMode = Literal["append", "rewrite"]
"""How a written card reaches Redis: its new records appended in place, or its whole value
(trimmed to the window) set again (``features.realtime.store.BatchFeatureStore``)."""
CARD_WRITE_MODES: tuple[CardWriteMode, ...] = ("append", "rewrite")
ALLOWED_LATENESS_S = 3_600
"""Default lateness: older events are scored but not applied (and counted)."""
TERMINAL_DAY_SLOTS = 64
"""Day buckets kept per terminal (a ring indexed by ``day % slots``)."""
NIGHT_HOURS = (0, 6)
"""``tx_is_night``: UTC hour in ``[start, end)``."""
MERCHANT_CATEGORY_BUCKETS = 1024
CHANNELS: tuple[str, ...] = ("pos", "ecom", "atm", "moto")
LABEL_DELAY_DAYS = 7
PROFILE_WINDOWS_DAYS: tuple[int, ...] = (1, 2, 3, 7, 14, 28, 30)

_BIG = 1e9


@dataclass(frozen=True)
class FeatureDef:
    """One model input: what it describes, how it is computed and how it is bounded."""

    name: str
    entity: Entity
    source: Source
    window_s: int | None
    aggregation: Aggregation
    dtype: Literal["float32"] = "float32"
    default: float = 0.0
    clip: tuple[float, float] = (-_BIG, _BIG)
    param: float | None = None
    description: str = ""


def _card(name: str, agg: Aggregation, window_s: int | None, **kw: object) -> FeatureDef:
    return FeatureDef(name, "card", "realtime", window_s, agg, **kw)  # type: ignore[arg-type]


def _tx(name: str, agg: Aggregation, **kw: object) -> FeatureDef:
    return FeatureDef(name, "transaction", "transaction", None, agg, **kw)  # type: ignore[arg-type]


_COUNT = (0.0, 1e6)
_AMOUNT = (0.0, 1e9)

TRANSACTION_FEATURES: tuple[FeatureDef, ...] = (
    _tx("tx_amount", "amount", clip=(0.0, 1e6), description="amount"),
    _tx("tx_log_amount", "log_amount", clip=(0.0, 20.0), description="log(1 + amount)"),
    _tx("tx_hour", "hour", clip=(0.0, 23.0), description="UTC hour of day"),
    _tx("tx_is_weekend", "is_weekend", clip=(0.0, 1.0), description="Saturday or Sunday (UTC)"),
    _tx("tx_is_night", "is_night", clip=(0.0, 1.0), description="UTC hour in NIGHT_HOURS"),
    _tx("tx_channel_code", "channel_code", clip=(-1.0, 16.0), description="index in CHANNELS"),
    _tx(
        "tx_merchant_category_code",
        "merchant_category_code",
        clip=(0.0, MERCHANT_CATEGORY_BUCKETS - 1.0),
        description="crc32(merchant_category) % MERCHANT_CATEGORY_BUCKETS",
    ),
)

CARD_FEATURES: tuple[FeatureDef, ...] = (
    _card("card_tx_count_10m", "count", 10 * MINUTE_S, clip=_COUNT),
    _card("card_amount_sum_10m", "sum", 10 * MINUTE_S, clip=_AMOUNT),
    _card("card_tx_count_1h", "count", HOUR_S, clip=_COUNT),
    _card("card_amount_sum_1h", "sum", HOUR_S, clip=_AMOUNT),
    _card("card_tx_count_1d", "count", DAY_S, clip=_COUNT),
    _card("card_amount_mean_1d", "mean", DAY_S, clip=_AMOUNT),
    _card("card_tx_count_7d", "count", 7 * DAY_S, clip=_COUNT),
    _card("card_amount_mean_7d", "mean", 7 * DAY_S, clip=_AMOUNT),
    _card("card_tx_count_30d", "count", 30 * DAY_S, clip=_COUNT),
    _card("card_amount_mean_30d", "mean", 30 * DAY_S, clip=_AMOUNT),
    _card("card_amount_median_30d", "median", 30 * DAY_S, clip=_AMOUNT),
    _card("card_amount_std_30d", "std", 30 * DAY_S, clip=_AMOUNT),
    _card(
        "card_amount_zscore_30d",
        "zscore",
        30 * DAY_S,
        clip=(-1e4, 1e4),
        description="(amount - mean_30d) / std_30d (population std); 0 if std is 0",
    ),
    _card(
        "card_large_2x_count_7d",
        "count_above_median",
        7 * DAY_S,
        clip=_COUNT,
        param=2.0,
        description="prior amounts in 7 d above 2x the card's 30-day median",
    ),
    _card(
        "card_large_3x_count_7d",
        "count_above_median",
        7 * DAY_S,
        clip=_COUNT,
        param=3.0,
        description="prior amounts in 7 d above 3x the card's 30-day median",
    ),
    _card(
        "card_seconds_since_prev",
        "seconds_since_last",
        CARD_WINDOW_S,
        default=float(CARD_WINDOW_S),
        clip=(0.0, float(CARD_WINDOW_S)),
        description="seconds since the latest earlier transaction; window length if none",
    ),
    _card("card_distinct_terminals_24h", "distinct_terminals", DAY_S, clip=_COUNT),
    _card(
        "card_is_new",
        "is_empty",
        CARD_WINDOW_S,
        clip=(0.0, 1.0),
        description="no earlier transaction of the card in the kept history",
    ),
    _card(
        "terminal_is_new_for_card",
        "terminal_not_seen",
        CARD_WINDOW_S,
        clip=(0.0, 1.0),
        description="the card never used this terminal in the kept history",
    ),
)

TERMINAL_FEATURES: tuple[FeatureDef, ...] = tuple(
    FeatureDef(
        f"terminal_tx_count_{d}d",
        "terminal",
        "realtime",
        d * DAY_S,
        "day_count",
        clip=_COUNT,
        description=f"accepted transactions in the {d} complete days before",
    )
    for d in (1, 7, 30)
)

PROFILE_FEATURES: tuple[FeatureDef, ...] = (
    *(
        FeatureDef(
            f"terminal_fraud_count_{w}d",
            "terminal",
            "profile",
            w * DAY_S,
            "fraud_count",
            clip=_COUNT,
            description=f"labelled frauds in {w} d, with the label delay",
        )
        for w in PROFILE_WINDOWS_DAYS
    ),
    *(
        FeatureDef(
            f"terminal_fraud_share_{w}d",
            "terminal",
            "profile",
            w * DAY_S,
            "fraud_share",
            clip=(0.0, 1.0),
            description=f"fraud share in {w} d, with the label delay",
        )
        for w in PROFILE_WINDOWS_DAYS
    ),
    FeatureDef(
        "terminal_days_since_fraud",
        "terminal",
        "profile",
        None,
        "days_since_fraud",
        default=365.0,
        clip=(0.0, 365.0),
        description="days since the last usable fraud label; 365 if none",
    ),
)
"""Computed by :mod:`features.profiles` (counts, then shares, then days since)."""

FEATURES: tuple[FeatureDef, ...] = (
    *TRANSACTION_FEATURES,
    *CARD_FEATURES,
    *TERMINAL_FEATURES,
    *PROFILE_FEATURES,
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURE_INDEX: dict[str, int] = {n: i for i, n in enumerate(FEATURE_NAMES)}
PROFILE_FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in PROFILE_FEATURES)
REALTIME_FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.source != "profile")


def _feature_set_id() -> str:
    h = hashlib.sha256()
    h.update(f"v{DEFINITION_VERSION}".encode())
    for c in (CARD_MAX_EVENTS, CARD_WINDOW_S, NIGHT_HOURS, MERCHANT_CATEGORY_BUCKETS, CHANNELS):
        h.update(repr(c).encode())
    for f in FEATURES:
        h.update(repr((f.name, f.window_s, f.aggregation, f.default, f.clip, f.param)).encode())
    return f"fs{DEFINITION_VERSION}-{h.hexdigest()[:10]}"


FEATURE_SET_ID: str = _feature_set_id()


def by_name(name: str) -> FeatureDef:
    """The definition of one feature (``KeyError`` if unknown)."""
    return FEATURES[FEATURE_INDEX[name]]
