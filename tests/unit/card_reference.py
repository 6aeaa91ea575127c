"""The card features of one row, written the plainest way: the independent reference the
compiled kernel (:mod:`features.card_kernel`) is checked against, bit for bit.

Sums are explicit left-to-right loops over the row's events in arrival order (the order
the kernel promises), the median and the distinct count come from sorted lists.
"""

from __future__ import annotations

import math

from features.definitions import CARD_FEATURES, CARD_WINDOW_S
from features.kernels import MEDIAN_REFERENCE_WINDOW_S, US

Event = tuple[int, float, int]
"""(time µs, amount, terminal hash) of one valid candidate event."""


def _in_window(t: int, lower: int, events: list[Event], window_s: int) -> list[Event]:
    return [e for e in events if 0 < t - e[0] <= window_s * US and e[0] >= lower]


def _left_to_right(values: list[float]) -> float:
    acc = 0.0
    for v in values:
        acc += v
    return acc


def _median(values: list[float]) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2.0


def reference_row(
    t: int, amount: float, term: int, events: list[Event], lower: int
) -> dict[str, float]:
    lower = max(lower, t - CARD_WINDOW_S * US)
    out: dict[str, float] = {}
    for f in CARD_FEATURES:
        window = _in_window(t, lower, events, int(f.window_s or CARD_WINDOW_S))
        amounts = [e[1] for e in window]
        c = len(window)
        total = _left_to_right(amounts)
        mean = total / c if c else 0.0
        std = (
            math.sqrt(_left_to_right([(a - mean) * (a - mean) for a in amounts]) / c) if c else 0.0
        )
        a = f.aggregation
        if a == "count":
            v = float(c)
        elif a == "sum":
            v = total
        elif a == "mean":
            v = mean
        elif a == "median":
            v = _median(amounts)
        elif a == "std":
            v = std
        elif a == "zscore":
            v = (amount - mean) / std if std > 0 else 0.0
        elif a == "count_above_median":
            reference = _in_window(t, lower, events, MEDIAN_REFERENCE_WINDOW_S)
            ref = _median([e[1] for e in reference]) * float(f.param or 1.0)
            v = float(sum(1 for x in amounts if x > ref))
        elif a == "seconds_since_last":
            v = (t - max(e[0] for e in window)) / US if c else f.default
        elif a == "distinct_terminals":
            v = float(len({e[2] for e in window}))
        elif a == "is_empty":
            v = float(c == 0)
        elif a == "terminal_not_seen":
            v = float(all(e[2] != term for e in window))
        else:
            raise AssertionError(f"no reference for {f.name}")
        out[f.name] = v
    return out


def reference_writes(
    stored: list[list[tuple[int, float, int]]],
    new: list[list[tuple[int, float, int]]],
    exists: list[bool],
    expect_max: list[float],
    *,
    retention_us: float,
    capacity: int,
    trim_chunk: int,
    refresh_us: float,
) -> list[dict[str, object]]:
    """The write rules of one batch, card by card: ``stored[c]`` / ``new[c]`` are the
    card's (record index, time, seq) before and from the batch; returns, per card with new
    records, whether it appends, how many old records a rewrite drops, its trailer and
    whether an append sets the TTL again (the newest event moved to a later period)."""
    out: list[dict[str, object]] = []
    for c, added in enumerate(new):
        if not added:
            continue
        old = stored[c]
        max_time = max(t for _, t, _ in added)
        if exists[c]:
            max_time = max(max_time, expect_max[c])
        drop = max(0, len(old) + len(added) - capacity)
        if drop < len(old):
            first_recent = next(
                (k for k in range(drop, len(old)) if old[k][1] >= max_time - retention_us),
                len(old),
            )
            drop = max(drop, first_recent)
        append = exists[c] and drop < trim_chunk and drop <= len(old)
        kept = [] if append else (old + added)[drop:]
        out.append(
            {
                "card": c,
                "append": append,
                "drop": 0 if append else drop,
                "body": [r for r, _, _ in added] if append else [r for r, _, _ in kept],
                "next_seq": added[-1][2] + 1,
                "max_time": max_time,
                "refresh": append
                and (
                    refresh_us <= 0
                    or math.floor(max_time / refresh_us) > math.floor(expect_max[c] / refresh_us)
                ),
            }
        )
    return out
