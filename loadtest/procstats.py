"""CPU and memory of the current process, for the benchmark probes.

A module of its own, importing nothing heavy: a probe that measures a service's RSS must
not carry the benchmark's own imports (pandas, Feast) into the number.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any


def process_cpu_s() -> float:
    """CPU seconds of this process, every thread (librdkafka's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def minor_faults() -> int:
    """Minor page faults of this process so far (first touches of fresh pages)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def peak_rss_mb() -> float:
    """Peak RSS of this process image (``VmHWM``). Not ``ru_maxrss``: Linux carries that
    over from the parent through fork + exec, so a child of a big process inherits it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def collector_text(stats: dict[str, Any]) -> str:
    """A probe's garbage collections as one phrase of a benchmark line."""
    collector = stats.get("collector")
    if not collector or "collections" not in collector:
        return "collections not counted"
    count = sum(collector["collections"].values())
    return f"{count} collections, {collector.get('pause_s', 0.0) * 1e3:.0f} ms in them"
