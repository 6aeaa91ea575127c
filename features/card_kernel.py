"""The card kernel: every card feature of a row in one pass over its events, in C.

:func:`features.kernels.card_features_of_segments` turns the card definitions into a table
of operations (one per feature: what, over which window, with which parameter) and calls
:func:`card_rows`, which runs ``card_kernel.c`` (built by ``pip install -e .`` / ``make
setup`` into the cffi module ``features._card_kernel``, its declarations checked against
``card_kernel.h`` at build time). Per row the C code walks
the row's candidate events once, in arrival order, placing each in the smallest window
holding it and adding it to that window's and every wider window's count, sum and latest
time - so each sum runs strictly left to right over the row's own events, and the result
depends neither on the padding nor on the other rows of the batch (online batches and
offline chunks agree bit for bit). Medians (a selection), standard deviations and distinct
terminals are computed per row only for the windows the table asks for.

Why C and not numpy: the numpy version materialised a ``[windows, events, rows]`` cube per
statistic and was the largest client cost of a 500-transaction batch; why not numba: it
was as fast, but loading LLVM costs every process ~130 MB of resident memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from features.errors import FeatureKernelMissing

OPS = (
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
)
"""Card aggregations the kernel knows, by code (an index into this tuple; the enum in
``card_kernel.c`` lists them in the same order)."""
MAX_WINDOWS = 16

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def _load() -> tuple[Any, Any]:
    try:
        from features._card_kernel import ffi, lib
    except ImportError as exc:  # not built: `make setup` (or `pip install -e .`) builds it
        raise FeatureKernelMissing(f"features/card_kernel.c ({exc})") from None
    return ffi, lib


_FFI, _LIB = _load()
_C_TYPES = {
    np.dtype(np.int64): "int64_t[]",
    np.dtype(np.uint64): "uint64_t[]",
    np.dtype(np.int32): "int32_t[]",
    np.dtype(np.float64): "double[]",
    np.dtype(np.uint8): "unsigned char[]",
}


def _ptr(a: np.ndarray, dtype: type) -> Any:
    """``a``'s data as the C array the kernel declares, checked: the C code trusts the
    dtype and layout (cffi checks the pointer type against the declaration)."""
    if a.dtype != dtype or not a.flags.c_contiguous:
        raise TypeError(f"card kernel needs C-contiguous {dtype.__name__}, got {a.dtype}")
    return _FFI.from_buffer(_C_TYPES[a.dtype], a, require_writable=False)


def _bytes(a: np.ndarray) -> Any:
    """A C-contiguous array of records as ``unsigned char *``."""
    if not a.flags.c_contiguous:
        raise TypeError("card kernel needs C-contiguous records")
    return _FFI.from_buffer("unsigned char[]", a, require_writable=False)


def _check_cards(card_index: I64, n_cards: int, what: str = "card") -> None:
    """Every row's card index names one of ``n_cards`` cards (the C code indexes by it)."""
    if len(card_index) and (int(card_index.min()) < 0 or int(card_index.max()) >= n_cards):
        raise ValueError(f"{what} index out of range")


def _check_records(seg: I64, counts: I64, n_records: int) -> None:
    """Each card's records ``seg[c] : seg[c] + counts[c]`` lie inside the stored ones."""
    nc = len(counts)
    if len(seg) < nc or int((seg[:nc] + counts).max(initial=0)) > n_records:
        raise ValueError("a card's records lie outside the stored records")


def card_rows(
    t_us: I64,
    amount: F64,
    term: I64,
    table_t: I64,
    table_amount: F64,
    table_term: I64,
    starts: I64,
    lengths: I64,
    lower_us: I64,
    horizon_us: int,
    windows_us: I64,
    ops: I64,
    op_window: I64,
    op_param: F64,
    op_default: F64,
    median_window: int,
) -> F64:
    """``[features, n]``: row ``i``'s card features from its events, the table rows
    ``starts[i, p] : starts[i, p] + lengths[i, p]`` for ``p = 0`` then ``1``. An event
    counts in window ``k`` when it is strictly earlier than the row, not before
    ``max(lower_us, t - horizon_us)`` and at most ``windows_us[k]`` old (ascending
    windows). Arrays are converted to C-contiguous int64 / float64 as annotated."""
    i64, f64 = np.int64, np.float64
    t_us, term, lower_us = (np.ascontiguousarray(a, dtype=i64) for a in (t_us, term, lower_us))
    table_t, table_term = (np.ascontiguousarray(a, dtype=i64) for a in (table_t, table_term))
    amount, table_amount = (np.ascontiguousarray(a, dtype=f64) for a in (amount, table_amount))
    starts, lengths = (np.ascontiguousarray(a, dtype=i64).reshape(-1, 2) for a in (starts, lengths))
    n, nf, nw = len(t_us), len(ops), len(windows_us)
    if not (len(amount) == len(term) == len(lower_us) == n):
        raise ValueError("row columns of different lengths")
    if not (len(table_t) == len(table_amount) == len(table_term)):
        raise ValueError("table columns of different lengths")
    if not (len(op_window) == len(op_param) == len(op_default) == nf):
        raise ValueError("operation table columns of different lengths")
    if nf and not (int(op_window.min()) >= 0 and int(op_window.max()) < nw):
        raise ValueError("an operation's window is not in the windows")
    if not 0 <= median_window < nw:
        raise ValueError("the median window is not in the windows")
    if starts.shape != (n, 2) or lengths.shape != (n, 2):
        raise ValueError("starts and lengths must be [n, 2]")
    if n and (
        int(lengths.min()) < 0
        or int(starts.min()) < 0
        or int((starts + lengths).max()) > len(table_t)
    ):
        raise ValueError("a segment lies outside the table")
    if nw > MAX_WINDOWS:
        raise ValueError(f"at most {MAX_WINDOWS} windows")
    out = np.empty((nf, n), dtype=np.float64)
    rc = _LIB.card_rows(
        n,
        _ptr(t_us, i64),
        _ptr(amount, f64),
        _ptr(term, i64),
        _ptr(table_t, i64),
        _ptr(table_amount, f64),
        _ptr(table_term, i64),
        _ptr(starts, i64),
        _ptr(lengths, i64),
        _ptr(lower_us, i64),
        horizon_us,
        nw,
        _ptr(windows_us, i64),
        nf,
        _ptr(ops, i64),
        _ptr(op_window, i64),
        _ptr(op_param, f64),
        _ptr(op_default, f64),
        median_window,
        _ptr(out, f64),
    )
    if rc != 0:
        raise MemoryError("card kernel: out of memory or an unknown operation")
    return out


def stored_replays(
    card_index: I64,
    txh: npt.NDArray[np.uint64],
    seg: I64,
    counts: I64,
    records: npt.NDArray[np.void],
) -> I64:
    """Per row, the ``seq`` of the first of its card's stored records (``records[seg[c] :
    seg[c] + counts[c]]``) with the row's transaction hash, or -1: the row is a replay."""
    n = len(card_index)
    card_index = np.ascontiguousarray(card_index, dtype=np.int64)
    txh = np.ascontiguousarray(txh, dtype=np.uint64)
    seg = np.ascontiguousarray(seg, dtype=np.int64)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    if len(txh) != n:
        raise ValueError("one transaction hash per row")
    _check_records(seg, counts, len(records))
    _check_cards(card_index, len(counts))
    dtype = records.dtype
    if dtype.fields is None or dtype.fields["txh"][1] != 0 or dtype.fields["txh"][0] != np.uint64:
        raise TypeError("records need a u8 txh at offset 0")
    seq_type, seq_offset = dtype.fields["seq"][:2]
    if seq_type != np.uint32:
        raise TypeError("records need a u4 seq")
    records = np.ascontiguousarray(records)
    found = np.empty(n, dtype=np.int64)
    _LIB.stored_replays(
        n,
        _ptr(card_index, np.int64),
        _ptr(txh, np.uint64),
        _ptr(seg, np.int64),
        _ptr(counts, np.int64),
        _bytes(records),
        dtype.itemsize,
        seq_offset,
        _ptr(found, np.int64),
    )
    return found


def arrival_max(card_index: I64, t: F64, fresh: npt.NDArray[np.bool_], card_max: F64) -> F64:
    """Max event time of each row's card at its arrival: the card's stored max and the
    times of its earlier ``fresh`` rows (batch order)."""
    n, nc = len(card_index), len(card_max)
    if not (len(t) == len(fresh) == n):
        raise ValueError("one time and one fresh flag per row")
    _check_cards(card_index, nc)
    card_index = np.ascontiguousarray(card_index, dtype=np.int64)
    t = np.ascontiguousarray(t, dtype=np.float64)
    card_max = np.ascontiguousarray(card_max, dtype=np.float64)
    out = np.empty(n, dtype=np.float64)
    running = np.empty(nc, dtype=np.float64)
    _LIB.arrival_max(
        n,
        nc,
        _ptr(card_index, np.int64),
        _ptr(t, np.float64),
        _ptr(np.ascontiguousarray(fresh, dtype=np.uint8), np.uint8),
        _ptr(card_max, np.float64),
        _ptr(running, np.float64),
        _ptr(out, np.float64),
    )
    return out


RECORD_BYTES, TRAILER_BYTES = 32, 12
WRITE_FIELDS = (
    ("card", np.int64),
    ("first", np.int64),
    ("added", np.int64),
    ("drop", np.int64),
    ("next_seq", np.int64),
    ("max_time", np.float64),
    ("refreshed", np.uint8),
    ("append", np.uint8),
    ("offset", np.int64),
    ("start", np.int64),
    ("length", np.int64),
)
"""The per-written-card outputs of :func:`card_writes`, in the C function's order."""


def card_writes(
    gs: I64,
    new_records: npt.NDArray[np.void],
    stored: npt.NDArray[np.void],
    seg: I64,
    counts: I64,
    expect_max: F64,
    exists: npt.NDArray[np.bool_],
    *,
    retention_us: float,
    capacity: int,
    trim_chunk: int,
    refresh_us: float,
) -> tuple[dict[str, np.ndarray], bytes]:
    """Per written card (``WRITE_FIELDS``) and the script's payload: see
    ``card_writes`` in ``card_kernel.c`` and :func:`features.realtime.cards._writes`."""
    n_new, nc = len(gs), len(counts)
    if new_records.dtype.itemsize != RECORD_BYTES or stored.dtype.itemsize != RECORD_BYTES:
        raise TypeError(f"card records are {RECORD_BYTES} bytes")
    if len(new_records) != n_new or not (len(expect_max) == len(exists) == nc):
        raise ValueError("one card per new record; one max and flag per card")
    _check_cards(gs, nc)
    if np.any(np.diff(gs) < 0):
        raise ValueError("gs must be sorted card indices")
    _check_records(seg, counts, len(stored))
    gs = np.ascontiguousarray(gs, dtype=np.int64)
    seg = np.ascontiguousarray(seg, dtype=np.int64)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    expect_max = np.ascontiguousarray(expect_max, dtype=np.float64)
    exists_u8 = np.ascontiguousarray(exists, dtype=np.uint8)
    new_records = np.ascontiguousarray(new_records)
    stored = np.ascontiguousarray(stored)
    out = {name: np.empty(n_new, dtype=dtype) for name, dtype in WRITE_FIELDS}
    n_written = np.zeros(1, dtype=np.int64)
    bound = (len(stored) + n_new) * RECORD_BYTES + n_new * TRAILER_BYTES
    payload = np.empty(max(bound, 1), dtype=np.uint8)
    size = _LIB.card_writes(
        n_new,
        _ptr(gs, np.int64),
        _bytes(new_records),
        _bytes(stored),
        _ptr(seg, np.int64),
        _ptr(counts, np.int64),
        _ptr(expect_max, np.float64),
        _ptr(exists_u8, np.uint8),
        retention_us,
        capacity,
        trim_chunk,
        refresh_us,
        _ptr(n_written, np.int64),
        *(_ptr(out[name], dtype) for name, dtype in WRITE_FIELDS),
        _ptr(payload, np.uint8),
    )
    k = int(n_written[0])
    return {name: a[:k] for name, a in out.items()}, payload[:size].tobytes()


def terminal_day_counts(
    words: npt.NDArray[np.int32],
    term_index: I64,
    ref_day: I64,
    day: I64,
    status: I64,
    n_days: int,
) -> I64:
    """``[n, n_days]``: row ``i``'s terminal count on day ``ref_day[i] - 1 - k``, from the
    stored buckets (``words``: one row of i32 per terminal, ``max_time`` in the first two,
    then ``(day, count)`` slots) and the batch's applied rows; see ``terminal_day_counts``
    in ``card_kernel.c`` and :func:`features.realtime.layout.terminal_day_counts`."""
    n = len(term_index)
    if words.ndim != 2 or words.shape[1] < 4 or words.shape[1] % 2:
        raise ValueError("terminal words must be [terminals, 2 + 2 * slots]")
    if not (len(ref_day) == len(day) == len(status) == n):
        raise ValueError("one reference day, day and status per row")
    n_terms, width = words.shape
    _check_cards(term_index, n_terms, "terminal")
    words = np.ascontiguousarray(words, dtype=np.int32)
    term_index, ref_day, day, status = (
        np.ascontiguousarray(a, dtype=np.int64) for a in (term_index, ref_day, day, status)
    )
    counts = np.empty((n, n_days), dtype=np.int64)
    head = np.empty(max(n_terms, 1), dtype=np.int64)
    nxt = np.empty(max(n, 1), dtype=np.int64)
    _LIB.terminal_day_counts(
        n,
        n_terms,
        _ptr(words, np.int32),
        width,
        (width - 2) // 2,
        _ptr(term_index, np.int64),
        _ptr(ref_day, np.int64),
        _ptr(day, np.int64),
        _ptr(status, np.int64),
        n_days,
        _ptr(head, np.int64),
        _ptr(nxt, np.int64),
        _ptr(counts, np.int64),
    )
    return counts
