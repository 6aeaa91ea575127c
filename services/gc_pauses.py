"""The garbage collector's pauses, as a Prometheus histogram.

A full (generation 2) collection stops the process for as long as it takes to visit every
tracked object: with a large heap of small objects that is tens of milliseconds on a slow
core, long enough for a whole batch of transactions to wait behind it. The pauses are too
rare to move a per-batch stage p99 and frequent enough to move the per-transaction p99,
so they get a series of their own: ``fraud_gc_pause_seconds{generation}``.

:func:`settle_collector` is what a hot-path process (scorer, API) does once it is built:
freeze the start-up objects out of the collector's scans and raise the youngest
generation's threshold. With Python's default of 700 the scorer collected about once per
125 transactions of a backlog (2,424 collections, 18 of them full, 1.6-1.7 µs of CPU per
transaction over 300,000); its hot path leaves no growing set of tracked objects behind,
so at 100,000 the same backlog ran without a single collection. A collection that does
come visits at most that many young objects (about 2 ms for 100,000 on a 2-core VM).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

GC_PAUSE = Histogram(
    "fraud_gc_pause_seconds",
    "Garbage collector pauses, by generation collected",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
)
_CHILDREN = [GC_PAUSE.labels(str(g)) for g in range(3)]
_started: list[float] = [0.0]


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _CHILDREN[min(int(info.get("generation", 2)), 2)].observe(time.perf_counter() - _started[0])


def settle_collector(young_threshold: int) -> dict[str, Any]:
    """Freeze what exists now (the model, the modules) out of every later scan, set the
    youngest generation's threshold (``0`` keeps Python's), and watch the pauses from now
    on. Returns the thresholds and the frozen object count (benchmarks record them)."""
    if young_threshold < 0:
        raise ValueError("the young generation's threshold must be >= 0")
    gc.freeze()
    if young_threshold:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(young_threshold, older, oldest)
    watch_gc_pauses()
    return {"thresholds": list(gc.get_threshold()), "frozen": gc.get_freeze_count()}


def watch_gc_pauses() -> None:
    """Observe every collection's pause from now on (once per process)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
