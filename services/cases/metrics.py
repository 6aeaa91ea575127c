"""Case metrics. Queue depth and the oldest open case are read from the store when
Prometheus scrapes (:class:`QueueCollector`), so every process serving the store reports
the same numbers; verdicts are counted where they happen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

VERDICTS = Counter(
    "fraud_case_verdicts_total",
    "Case verdicts (resolutions) by analyst and verdict",
    ["analyst", "verdict"],
)
VERDICT_LATENCY = Histogram(
    "fraud_case_decision_to_verdict_seconds",
    "Time from the model's decision to the analyst's verdict",
    buckets=(60, 300, 600, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600),
)
CASES_INGESTED = Counter(
    "fraud_cases_ingested_total", "Review cases read by the ingester", ["result"]
)
LABELS_RELAYED = Counter(
    "fraud_case_labels_relayed_total", "Labels sent from the case outbox to fraud.labels"
)


class QueueCollector(Collector):
    """``fraud_case_queue_depth{state}`` and ``fraud_case_oldest_open_age_seconds`` from
    the store's ``stats()`` at scrape time."""

    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self.stats = stats

    @staticmethod
    def EXAMPLE() -> dict[str, Any]:
        """Stats of an empty store: every series, for the reference pages and tests."""
        return {"depth": {"open": 0}, "oldest_open_age_s": 0.0, "sla_s": 3600.0, "labels_unsent": 0}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            stats = self.stats()
        except Exception:  # the store is down: no queue numbers (the scrape still works)
            return
        depth = GaugeMetricFamily(
            "fraud_case_queue_depth", "Cases in the store by state", labels=["state"]
        )
        for state, count in sorted(stats["depth"].items()):
            depth.add_metric([state], count)
        yield depth
        yield GaugeMetricFamily(
            "fraud_case_oldest_open_age_seconds",
            "Age (since the decision) of the oldest case without a verdict",
            value=stats["oldest_open_age_s"],
        )
        yield GaugeMetricFamily(
            "fraud_case_sla_seconds",
            "How long a case may wait for its verdict",
            value=stats["sla_s"],
        )
        yield GaugeMetricFamily(
            "fraud_case_labels_unsent",
            "Labels in the case outbox not yet on fraud.labels",
            value=stats["labels_unsent"],
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


_watched: QueueCollector | None = None


def watch_queue(stats: Callable[[], dict[str, Any]]) -> None:
    """Report this store's queue on the process's default registry (registered once; a
    later store replaces the earlier one)."""
    global _watched
    if _watched is None:
        from prometheus_client import REGISTRY

        _watched = QueueCollector(stats)
        REGISTRY.register(_watched)
    else:
        _watched.stats = stats
