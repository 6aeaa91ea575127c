"""One real scorer process over a backlog, measured from the inside.

``python -m loadtest.scorer_probe --out stats.json`` (``FRAUD_*`` settings in the
environment) builds the production :class:`services.scorer.service.Scorer` exactly as
``fraudctl serve scorer`` does, runs it until ``--max-idle-s`` without input, and writes:
wall time and process CPU (all threads, librdkafka's included) from the start of the first
batch to the end of the last, decisions, per-stage time summed over the batches (the
scorer's own :class:`StageClock` laps), the feature store's encode / state / compute split,
and RSS. Startup (imports, model load, group join) and the idle tail are excluded; the
collector is settled as the scorer's main() settles it, and its collections are counted.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Message
from prometheus_client import REGISTRY

from loadtest.procstats import minor_faults, peak_rss_mb, process_cpu_s
from services.allocator import tune_hot_path
from services.gc_pauses import settle_collector
from services.scorer.pipeline import StageClock
from services.scorer.service import Scorer, build_scorer
from services.scorer.settings import ScorerSettings


class ProbedScorer(Scorer):
    """The production scorer plus counters around :meth:`process` and :meth:`settle`
    (nothing else changes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_wall: float | None = None
        self.last_wall = 0.0
        self.first_cpu = self.last_cpu = 0.0
        self.first_faults = self.last_faults = 0
        self.batches = 0
        self.messages = 0
        self.stage_ms: dict[str, float] = {}
        self.feature_ms: dict[str, float] = {}
        self.collector: dict[str, Any] = {}

    def process(self, messages: Sequence[Message], clock: StageClock) -> None:
        if self.first_wall is None:
            self.first_wall, self.first_cpu = time.time(), process_cpu_s()
            self.first_faults = minor_faults()
        super().process(messages, clock)
        self.last_wall, self.last_cpu = time.time(), process_cpu_s()
        self.last_faults = minor_faults()
        self.batches += 1
        self.messages += len(messages)
        for stage, ms in clock.timings_ms.items():
            self.stage_ms[stage] = self.stage_ms.get(stage, 0.0) + ms
        split = getattr(self.features, "last_timings_ms", {})
        for part, ms in split.items():
            self.feature_ms[part] = self.feature_ms.get(part, 0.0) + ms

    def settle(self, clock: StageClock | None = None, *, synchronous: bool = False) -> None:
        """A batch ends when it is settled (acknowledged, committed), one poll after it was
        processed: the measured window ends there."""
        pending = self.unsettled is not None
        super().settle(clock, synchronous=synchronous)
        if pending:
            self.last_wall, self.last_cpu = time.time(), process_cpu_s()
            self.last_faults = minor_faults()

    def card_cache(self) -> dict[str, Any]:
        """The feature store's card cache (:class:`features.realtime.cache.CardCache`):
        lookups that found the card in the process, and those that read it from Redis."""
        cache = getattr(self.features, "cards", None)
        if cache is None:
            return {}
        lookups = cache.hits + cache.misses
        return {
            "hits": cache.hits,
            "misses": cache.misses,
            "hit_rate": round(cache.hits / lookups, 4) if lookups else None,
            "cards_held": len(cache),
            "capacity": cache.max_cards,
            "stale_cards": getattr(self.features, "stale_cards", None),
        }

    def summary(self) -> dict[str, Any]:
        n = max(self.decided, 1)
        wall = self.last_wall - (self.first_wall or self.last_wall)
        return {
            "decided": self.decided,
            "messages": self.messages,
            "batches": self.batches,
            "mean_batch": self.messages / max(self.batches, 1),
            "first_wall": self.first_wall,
            "last_wall": self.last_wall,
            "wall_s": wall,
            "tx_per_s": self.decided / wall if wall > 0 else 0.0,
            "cpu_s": self.last_cpu - self.first_cpu,
            "cpu_us_per_tx": (self.last_cpu - self.first_cpu) * 1e6 / n,
            "minor_faults_per_tx": (self.last_faults - self.first_faults) / n,
            "stage_us_per_tx": {k: v * 1e3 / n for k, v in self.stage_ms.items()},
            "features_split_us_per_tx": {k: v * 1e3 / n for k, v in self.feature_ms.items()},
            "rss_mb": psutil.Process().memory_info().rss / 2**20,
            "max_rss_mb": peak_rss_mb(),
            "model_version": self.champion.current().version,
            "card_cache": self.card_cache(),
            "collector": {**self.collector, **gc_collections()},
        }


def gc_collections() -> dict[str, Any]:
    """The garbage collector's collections by generation and their summed pauses, from the
    pause histogram (watched from :func:`settle_collector` on: the run, not the start-up)."""
    count = {
        g: REGISTRY.get_sample_value("fraud_gc_pause_seconds_count", {"generation": g}) or 0.0
        for g in ("0", "1", "2")
    }
    pause = sum(
        REGISTRY.get_sample_value("fraud_gc_pause_seconds_sum", {"generation": g}) or 0.0
        for g in count
    )
    return {"collections": {g: int(n) for g, n in count.items()}, "pause_s": round(pause, 4)}


def build_probed_scorer(settings: ScorerSettings) -> ProbedScorer:
    """As :func:`services.scorer.service.build_scorer`, with the probe class."""
    scorer = build_scorer(settings, ProbedScorer)
    assert isinstance(scorer, ProbedScorer)
    return scorer


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-idle-s", type=float, default=6.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = ScorerSettings(metrics_port=0)
    tune_hot_path(settings)  # as the scorer's main() does
    scorer = build_probed_scorer(settings)
    scorer.collector = settle_collector(settings.gc_young_threshold)  # as the scorer's main()
    scorer.run(max_idle_s=args.max_idle_s)
    args.out.write_text(json.dumps(scorer.summary(), indent=2) + "\n")


if __name__ == "__main__":  # pragma: no cover - the benchmark runs it as a process
    main()
