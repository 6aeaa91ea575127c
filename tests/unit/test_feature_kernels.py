"""Feature kernels on hand-computed examples (shared by the online and offline paths)."""

from __future__ import annotations

import math
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from features.definitions import CARD_WINDOW_S, FEATURE_INDEX, FEATURE_NAMES
from features.kernels import (
    DAY_US,
    US,
    card_features,
    channel_code,
    clip_features,
    merchant_category_code,
    reference_day,
    terminal_features,
    time_us,
    transaction_features,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 3, 10, 0, tzinfo=UTC)  # a Saturday


def _one(t: datetime, amount: float, term: int, events: list[tuple[datetime, float, int]]):
    ev = np.array([[time_us(e[0]) for e in events]], dtype=np.int64).reshape(1, -1)
    am = np.array([[e[1] for e in events]], dtype=np.float64).reshape(1, -1)
    tm = np.array([[e[2] for e in events]], dtype=np.int64).reshape(1, -1)
    tu = np.array([time_us(t)], dtype=np.int64)
    return card_features(
        tu,
        np.array([amount]),
        np.array([term], dtype=np.int64),
        ev,
        am,
        tm,
        np.ones(ev.shape, dtype=bool),
        tu - CARD_WINDOW_S * US,
    )


def test_time_us_is_exact() -> None:
    t = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert time_us(t) == 1_767_225_600_123_456


def test_card_features_hand_computed() -> None:
    events = [
        (T0 - timedelta(days=3), 10.0, 1),
        (T0 - timedelta(hours=2), 30.0, 2),
        (T0 - timedelta(minutes=5), 20.0, 1),
        (T0, 999.0, 3),  # same time: not before the transaction -> excluded
        (T0 + timedelta(minutes=1), 999.0, 3),  # later event time -> excluded
        (T0 - timedelta(days=31), 999.0, 3),  # outside 30 days -> excluded
    ]
    v = _one(T0, 70.0, 2, events)
    assert v["card_tx_count_10m"][0] == 1 and v["card_amount_sum_10m"][0] == 20.0
    assert v["card_tx_count_1h"][0] == 1 and v["card_amount_sum_1h"][0] == 20.0
    assert v["card_tx_count_1d"][0] == 2 and v["card_amount_mean_1d"][0] == 25.0
    assert v["card_tx_count_7d"][0] == 3 and v["card_amount_mean_7d"][0] == 20.0
    assert v["card_tx_count_30d"][0] == 3 and v["card_amount_mean_30d"][0] == 20.0
    assert v["card_amount_median_30d"][0] == 20.0
    std = math.sqrt(((10 - 20) ** 2 + (30 - 20) ** 2 + 0) / 3)
    assert v["card_amount_std_30d"][0] == pytest.approx(std, rel=1e-15)
    assert v["card_amount_zscore_30d"][0] == pytest.approx(50.0 / std, rel=1e-15)
    assert v["card_large_2x_count_7d"][0] == 0  # 30 > 2 * 20 is false
    assert v["card_seconds_since_prev"][0] == 300.0
    assert v["card_distinct_terminals_24h"][0] == 2
    assert v["card_is_new"][0] == 0 and v["terminal_is_new_for_card"][0] == 0


def test_large_amount_counts_and_even_median() -> None:
    events = [
        (T0 - timedelta(days=10), 10.0, 1),
        (T0 - timedelta(days=9), 10.0, 1),
        (T0 - timedelta(days=2), 25.0, 1),
        (T0 - timedelta(days=1), 36.0, 1),
    ]
    v = _one(T0, 5.0, 9, events)
    assert v["card_amount_median_30d"][0] == 17.5  # (10 + 25) / 2
    assert v["card_large_2x_count_7d"][0] == 1  # 36 > 35; 25 is not
    assert v["card_large_3x_count_7d"][0] == 0  # 3 x 17.5 = 52.5
    assert v["terminal_is_new_for_card"][0] == 1


def test_new_card_gets_defaults() -> None:
    v = _one(T0, 12.0, 1, [])
    assert v["card_is_new"][0] == 1 and v["terminal_is_new_for_card"][0] == 1
    assert v["card_tx_count_30d"][0] == 0 and v["card_amount_mean_30d"][0] == 0
    assert v["card_amount_zscore_30d"][0] == 0
    assert v["card_seconds_since_prev"][0] == float(CARD_WINDOW_S)


def test_transaction_features() -> None:
    t = np.array([time_us(T0), time_us(T0 + timedelta(days=2, hours=-7))], dtype=np.int64)
    v = transaction_features(
        t,
        np.array([math.e - 1, 10.0]),
        np.array([channel_code("ecom"), channel_code("atm")]),
        np.array([merchant_category_code("5411")] * 2),
    )
    assert list(v["tx_hour"]) == [10.0, 3.0]
    assert list(v["tx_is_weekend"]) == [1.0, 0.0]  # Saturday, Monday
    assert list(v["tx_is_night"]) == [0.0, 1.0]
    assert list(v["tx_channel_code"]) == [1.0, 2.0]
    assert v["tx_log_amount"][0] == pytest.approx(1.0, rel=1e-15)
    assert channel_code("nope") == -1
    assert 0 <= merchant_category_code("5411") < 1024


def test_terminal_windows_are_complete_days_before_the_reference_day() -> None:
    counts = np.zeros((1, 30), dtype=np.int64)
    counts[0, 0], counts[0, 6], counts[0, 7], counts[0, 29] = 4, 2, 5, 1
    v = terminal_features(counts)
    assert (v["terminal_tx_count_1d"][0], v["terminal_tx_count_7d"][0]) == (4, 6)
    assert v["terminal_tx_count_30d"][0] == 12
    t = np.array([10 * DAY_US + 1800 * US, 10 * DAY_US + 7200 * US], dtype=np.int64)
    assert list(reference_day(t, 3600)) == [9, 10]


def test_clip_replaces_nan_and_clips_absurd_values() -> None:
    row = np.zeros((1, len(FEATURE_NAMES)))
    row[0, FEATURE_INDEX["terminal_days_since_fraud"]] = np.nan
    row[0, FEATURE_INDEX["card_amount_zscore_30d"]] = np.inf
    row[0, FEATURE_INDEX["tx_hour"]] = -3
    out, changed = clip_features(row)
    assert out[0, FEATURE_INDEX["terminal_days_since_fraud"]] == 365.0
    assert out[0, FEATURE_INDEX["card_amount_zscore_30d"]] == 1e4
    assert out[0, FEATURE_INDEX["tx_hour"]] == 0.0
    assert changed.tolist() == [3]
    assert np.isfinite(out).all()


def _random_rows(seed: int, n: int, width: int) -> tuple[np.ndarray, ...]:
    """Rows as the online store and the offline builder pass them: events mostly earlier,
    some later or too old, repeated amounts and terminals, invalid cells anywhere."""
    rng = np.random.default_rng(seed)
    t = 40 * DAY_US + rng.integers(0, DAY_US, n)
    ev_t = t[:, None] - rng.integers(-3600 * US, 35 * DAY_US, (n, width))
    recent = min(5, width)
    ev_t[:, :recent] = t[:, None] - rng.integers(0, 1200 * US, (n, recent))
    ev_amount = np.round(rng.lognormal(3.5, 0.8, (n, width)), 2)
    ev_amount[:, ::4] = ev_amount[:, :1]  # ties for the median
    ev_term = rng.integers(0, 6, (n, width))
    valid = rng.random((n, width)) < 0.9
    lower = t - CARD_WINDOW_S * US
    lower[::5] += rng.integers(0, 20 * DAY_US)  # trimmed state of a too-late row
    amount = np.round(rng.lognormal(3.5, 0.8, n), 2)
    return t, amount, rng.integers(0, 8, n), ev_t, ev_amount, ev_term, valid, lower


@pytest.mark.parametrize(("n", "width"), [(1, 0), (1, 1), (7, 3), (40, 90), (160, 130)])
def test_compiled_kernel_equals_the_plain_reference_bit_for_bit(n: int, width: int) -> None:
    from tests.unit.card_reference import reference_row

    t, amount, term, ev_t, ev_amount, ev_term, valid, lower = _random_rows(n + width, n, width)
    got = card_features(t, amount, term, ev_t, ev_amount, ev_term, valid, lower)
    for i in range(n):
        events = [
            (int(ev_t[i, j]), float(ev_amount[i, j]), int(ev_term[i, j]))
            for j in range(width)
            if valid[i, j]
        ]
        expected = reference_row(int(t[i]), float(amount[i]), int(term[i]), events, int(lower[i]))
        assert {k: float(v[i]) for k, v in got.items()} == expected


def test_card_features_do_not_depend_on_padding_or_on_the_other_rows() -> None:
    """Online batches and offline chunks pad differently and group different rows."""
    t, amount, term, ev_t, ev_amount, ev_term, valid, lower = _random_rows(3, 50, 60)
    whole = card_features(t, amount, term, ev_t, ev_amount, ev_term, valid, lower)
    pad = np.zeros((50, 37), dtype=np.int64)
    padded = card_features(
        t,
        amount,
        term,
        np.hstack([ev_t, pad]),
        np.hstack([ev_amount, pad.astype(np.float64)]),
        np.hstack([ev_term, pad]),
        np.hstack([valid, pad.astype(bool)]),
        lower,
    )
    alone = card_features(
        t[7:8],
        amount[7:8],
        term[7:8],
        ev_t[7:8],
        ev_amount[7:8],
        ev_term[7:8],
        valid[7:8],
        lower[7:8],
    )
    for name, values in whole.items():
        assert np.array_equal(values, padded[name]), name
        assert values[7] == alone[name][0], name
    assert whole["card_tx_count_30d"].max() > 0  # the rows do have events in their windows


def test_card_kernel_edge_cases_and_checked_arguments() -> None:
    from features.kernels import card_features_of_segments

    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
    no_rows = card_features_of_segments(
        empty_i, empty_f, empty_i, empty_i, empty_f, empty_i,
        np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64), empty_i,
    )  # fmt: skip
    assert all(v.shape == (0,) for v in no_rows.values())
    t = np.array([10 * DAY_US], dtype=np.int64)
    one = np.array([1], dtype=np.int64)
    no_events = card_features_of_segments(
        t, np.ones(1), one, empty_i, empty_f, empty_i,
        np.zeros((1, 2), np.int64), np.zeros((1, 2), np.int64), t - CARD_WINDOW_S * US,
    )  # fmt: skip
    assert no_events["card_is_new"][0] == 1.0
    assert no_events["card_seconds_since_prev"][0] == float(CARD_WINDOW_S)
    # the second segment alone, and a segment outside the table is refused, not read
    table_t = t - np.array([60, 120], dtype=np.int64) * US
    second = card_features_of_segments(
        t, np.ones(1), one, table_t, np.array([5.0, 7.0]), np.array([1, 2]),
        np.array([[0, 0]]), np.array([[0, 2]]), t - CARD_WINDOW_S * US,
    )  # fmt: skip
    assert second["card_tx_count_10m"][0] == 2.0 and second["card_amount_sum_10m"][0] == 12.0
    assert second["card_seconds_since_prev"][0] == 60.0
    with pytest.raises(ValueError, match="row columns"):
        card_features_of_segments(
            t, np.ones(2), one, table_t, np.array([5.0, 7.0]), np.array([1, 2]),
            np.array([[0, 0]]), np.array([[0, 2]]), t,
        )  # fmt: skip
    with pytest.raises(ValueError, match="outside the table"):
        card_features_of_segments(
            t, np.ones(1), one, table_t, np.array([5.0, 7.0]), np.array([1, 2]),
            np.array([[1, 0]]), np.array([[2, 0]]), t,
        )  # fmt: skip


def test_planning_loops_equal_plain_python() -> None:
    from features.card_kernel import arrival_max, stored_replays
    from features.realtime.layout import CARD_RECORD

    rng = np.random.default_rng(5)
    counts = rng.integers(0, 9, 12)
    seg = np.concatenate([[0], np.cumsum(counts)])
    records = np.zeros(int(counts.sum()), dtype=CARD_RECORD)
    records["txh"] = rng.integers(0, 40, len(records))  # repeats inside a card: first wins
    records["seq"] = np.arange(len(records)) + 100
    ci = rng.integers(0, 12, 200)
    txh = rng.integers(0, 40, 200).astype(np.uint64)
    expected = [
        next(
            (int(records["seq"][r]) for r in range(seg[c], seg[c + 1]) if records["txh"][r] == h),
            -1,
        )
        for c, h in zip(ci.tolist(), txh.tolist(), strict=True)
    ]
    assert stored_replays(ci, txh, seg, counts, records).tolist() == expected
    assert max(expected) >= 100 and min(expected) == -1

    t = rng.uniform(0, 1e6, 200)
    fresh = rng.random(200) < 0.7
    card_max = rng.uniform(0, 1e6, 12)
    running, want = card_max.tolist(), []
    for c, ti, f in zip(ci.tolist(), t.tolist(), fresh.tolist(), strict=True):
        want.append(running[c])
        if f:
            running[c] = max(running[c], ti)
    assert arrival_max(ci, t, fresh, card_max).tolist() == want
    with pytest.raises(ValueError):
        arrival_max(ci, t, fresh, card_max[:5])


def test_card_writes_follow_the_plain_rules() -> None:
    """Appends, capacity and retention trims, new cards and TTL refreshes, each card's body
    and trailer in the payload, against :func:`reference_writes`."""
    from features.card_kernel import card_writes
    from features.realtime.layout import CARD_RECORD, CARD_TRAILER
    from tests.unit.card_reference import reference_writes

    rng = np.random.default_rng(11)
    nc, capacity, trim_chunk, retention = 40, 12, 4, 1_000.0
    counts = rng.integers(0, 15, nc)
    exists = (counts > 0) | (rng.random(nc) < 0.2)
    seg = np.concatenate([[0], np.cumsum(counts)])
    stored = np.zeros(int(counts.sum()), dtype=CARD_RECORD)
    stored["t"] = np.sort(rng.uniform(0, 3_000, len(stored)))  # some beyond the retention
    stored["txh"] = np.arange(len(stored))  # record ids, to find them in the payload
    expect_max = np.where(exists, rng.uniform(2_000, 3_000, nc), 0.0)
    gs = np.sort(rng.choice(nc, 60))
    new = np.zeros(len(gs), dtype=CARD_RECORD)
    new["txh"] = 10_000 + np.arange(len(gs))
    new["t"] = rng.uniform(2_500, 3_500, len(gs))
    new["seq"] = rng.integers(0, 1_000, len(gs))

    got, payload = card_writes(
        gs, new, stored, seg, counts, expect_max, exists,
        retention_us=retention, capacity=capacity, trim_chunk=trim_chunk, refresh_us=400.0,
    )  # fmt: skip
    old_lists = [
        [(int(r["txh"]), float(r["t"]), 0) for r in stored[seg[c] : seg[c + 1]]] for c in range(nc)
    ]
    new_lists: list[list[tuple[int, float, int]]] = [[] for _ in range(nc)]
    for c, r in zip(gs.tolist(), new, strict=True):
        new_lists[c].append((int(r["txh"]), float(r["t"]), int(r["seq"])))
    want = reference_writes(
        old_lists, new_lists, exists.tolist(), expect_max.tolist(),
        retention_us=retention, capacity=capacity, trim_chunk=trim_chunk, refresh_us=400.0,
    )  # fmt: skip
    assert got["card"].tolist() == [w["card"] for w in want]
    kinds = {(bool(w["append"]), int(w["drop"]) > 0) for w in want}
    assert kinds == {(True, False), (False, False), (False, True)}  # every path was taken
    # appends within the newest event's period and into a later one
    assert {bool(w["refresh"]) for w in want if w["append"]} == {True, False}
    for k, w in enumerate(want):
        assert bool(got["append"][k]) == w["append"] and int(got["drop"][k]) == w["drop"]
        assert got["next_seq"][k] == w["next_seq"] and got["max_time"][k] == w["max_time"]
        assert bool(got["refreshed"][k]) == (w["refresh"] or not w["append"])
        body = payload[got["start"][k] : got["start"][k] + got["length"][k]]
        records = np.frombuffer(body[: len(body) - 12], dtype=CARD_RECORD)
        assert records["txh"].tolist() == w["body"]
        trailer = np.frombuffer(body[len(body) - 12 :], dtype=CARD_TRAILER)[0]
        assert (trailer["next_seq"], trailer["max_time"]) == (w["next_seq"], w["max_time"])
        old = int(counts[w["card"]])
        assert got["offset"][k] == (old * 32 if w["append"] else 0)


def test_terminal_day_counts_follow_the_plain_rules() -> None:
    """Stored buckets (only those of the day asked for), the batch's applied rows of the
    same terminal and day, and a too-late row seeing only the rows before it."""
    from features.card_kernel import terminal_day_counts

    rng = np.random.default_rng(17)
    n_terms, slots, n_days, n = 9, 8, 6, 150
    words = np.zeros((n_terms, 2 + 2 * slots), dtype=np.int32)
    words[:, 2::2] = rng.integers(95, 110, (n_terms, slots))  # some buckets of other days
    words[:, 3::2] = rng.integers(0, 50, (n_terms, slots))
    term_index = rng.integers(0, n_terms, n)
    ref_day = rng.integers(100, 106, n)
    day = ref_day - rng.integers(-1, n_days + 2, n)  # in the window, on it and outside
    status = rng.choice([0, 0, 0, 1, 2, 4], n)

    want = np.zeros((n, n_days), dtype=np.int64)
    for i in range(n):
        w = words[term_index[i]].tolist()
        for k in range(n_days):
            wanted = int(ref_day[i]) - 1 - k
            slot = wanted % slots
            count = w[3 + 2 * slot] if w[2 + 2 * slot] == wanted else 0
            for j in range(n):
                same = term_index[j] == term_index[i] and day[j] == wanted
                hidden = status[i] == 2 and j > i
                count += int(bool(status[j] == 0 and same and not hidden))
            want[i, k] = count
    got = terminal_day_counts(words, term_index, ref_day, day, status, n_days)
    assert got.tolist() == want.tolist()
    assert (
        want.max() > 0
        and (
            got
            != terminal_day_counts(words, term_index, ref_day, day, np.zeros(n, np.int64), n_days)
        ).any()
    )
    with pytest.raises(ValueError, match="terminal index"):
        terminal_day_counts(words, term_index + n_terms, ref_day, day, status, n_days)
    with pytest.raises(ValueError, match="one reference day"):
        terminal_day_counts(words, term_index, ref_day[:5], day, status, n_days)


def test_a_missing_kernel_library_is_a_typed_error_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from features import card_kernel
    from features.errors import FeatureKernelMissing

    monkeypatch.setitem(sys.modules, "features._card_kernel", None)  # import fails
    with pytest.raises(FeatureKernelMissing, match="make setup"):
        card_kernel._load()


def test_the_binding_declares_exactly_the_kernels_header() -> None:
    from features import card_kernel
    from features.card_kernel_build import HEADER, declarations

    functions = set(re.findall(r"^\w[\w ]*?\b(\w+)\(", declarations(), re.M))
    assert functions == {
        "card_rows",
        "stored_replays",
        "arrival_max",
        "card_writes",
        "terminal_day_counts",
    }
    lib = card_kernel._LIB
    assert all(hasattr(lib, name) for name in functions)
    c_source = (HEADER.parent / "card_kernel.c").read_text()
    assert '#include "card_kernel.h"' in c_source  # definitions checked against it
    with pytest.raises(TypeError):  # a call that does not match the declaration
        lib.arrival_max(1, 1)


def test_a_definition_that_differs_from_its_declaration_fails_to_build(tmp_path: Path) -> None:
    """The failure the ctypes binding turned into a crash at run time is a build error."""
    from cffi import FFI, VerificationError

    from features.card_kernel_build import HEADER, declarations

    source = (HEADER.parent / "card_kernel.c").read_text()
    wrong = source.replace("int64_t nw, const int64_t *windows_us, int64_t nf,",
                           "int64_t nw, const int64_t *windows_us, double nf,")  # fmt: skip
    assert wrong != source
    (tmp_path / "card_kernel.c").write_text(wrong)
    shutil.copy(HEADER, tmp_path / "card_kernel.h")
    ffi = FFI()
    ffi.cdef(declarations())
    ffi.set_source(
        "_mismatch",
        '#include "card_kernel.h"',
        sources=[str(tmp_path / "card_kernel.c")],
        include_dirs=[str(tmp_path)],
    )
    with pytest.raises(VerificationError):
        ffi.compile(tmpdir=str(tmp_path / "build"))
