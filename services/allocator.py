"""The process allocator, tuned for the hot path (glibc ``mallopt``).

A feature batch allocates and frees a few buffers of 100 KB - 1 MB each (the card rings
joined, the script's payload, the history table). glibc serves blocks above its mmap
threshold with a fresh ``mmap`` and gives freed heap tops back to the kernel above its trim
threshold; both thresholds move with the process's allocation history, so whether a batch
re-faults memory it has just returned depends on what the process did before. In the
features benchmark's process it did: 194 minor faults and 0.65 ms of system time per
500-transaction batch with glibc's own thresholds, 0 faults and 0.2-0.3 ms with the ones
below. The scorer process happened to fault little either way (0.08-0.21 faults per
transaction over a backlog, no latency or throughput change beyond noise): fixing the
thresholds makes the hot path's memory behaviour independent of that history. The cost is
up to ``trim_threshold`` bytes of freed heap kept resident (the scorer bench reports RSS).

Only glibc has ``mallopt``; elsewhere :func:`tune_allocator` changes nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any

from services.settings import CommonSettings

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""``mallopt`` parameters (glibc ``malloc.h``)."""
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
"""glibc refuses a larger mmap threshold on 64-bit."""


def tune_allocator(mmap_threshold: int, trim_threshold: int) -> bool:
    """Fix glibc's mmap and trim thresholds (bytes); ``0`` for both leaves the defaults.

    Returns whether the thresholds were set (``False`` without glibc, or when ``mallopt``
    refuses a value)."""
    if not mmap_threshold and not trim_threshold:
        return False
    if not 0 <= mmap_threshold <= MMAP_THRESHOLD_MAX or trim_threshold < 0:
        raise ValueError(f"mmap threshold must be 0..{MMAP_THRESHOLD_MAX}, trim >= 0")
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.info("allocator not tuned: no glibc mallopt (%s)", name)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = True
    if mmap_threshold:
        ok &= mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1
    if trim_threshold:
        ok &= mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
    if not ok:
        log.warning("allocator: mallopt refused mmap=%d trim=%d", mmap_threshold, trim_threshold)
    return ok


def tune_hot_path(settings: CommonSettings) -> dict[str, Any]:
    """Apply the settings' thresholds to this process; what was asked and whether it held
    (benchmarks record it beside their numbers)."""
    mmap_threshold = settings.allocator_mmap_threshold_kb * 1024
    trim_threshold = settings.allocator_trim_threshold_kb * 1024
    tuned = tune_allocator(mmap_threshold, trim_threshold)
    log.info(
        "allocator: mmap threshold %d, trim threshold %d, tuned %s",
        mmap_threshold,
        trim_threshold,
        tuned,
    )
    return {"mmap_threshold": mmap_threshold, "trim_threshold": trim_threshold, "tuned": tuned}
