"""The garbage collector's pauses, as a Prometheus histogram.

A full (generation 2) collection stops the process for as long as it takes to visit every
tracked object: with a large heap of small objects that is tens of milliseconds on a slow
core, long enough for a whole batch of transactions to wait behind it. The pauses are too
rare to move a per-batch stage p99 and frequent enough to move the per-transaction p99,
so they get a series of their own: ``fraud_gc_pause_seconds{generation}``.
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


def watch_gc_pauses() -> None:
    """Observe every collection's pause from now on (once per process)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
