"""Reading the services' Prometheus ``/metrics``: scrape, parse, combine, quantiles.

The dashboard only needs a few families; :class:`MetricsSnapshot` keeps the samples of
one scrape of several endpoints summed by (name, labels), so histograms of two scorers add
up like ``sum by (le)`` in PromQL. Quantiles interpolate linearly inside a bucket, as
Prometheus' ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

LabelKey = tuple[tuple[str, str], ...]


@dataclass
class MetricsSnapshot:
    """Samples summed over endpoints: ``{sample name: {sorted labels: value}}``."""

    samples: dict[str, dict[LabelKey, float]] = field(default_factory=dict)
    endpoints_up: int = 0
    endpoints_down: int = 0

    def add_text(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = tuple(sorted(sample.labels.items()))
                series = self.samples.setdefault(sample.name, {})
                series[key] = series.get(key, 0.0) + float(sample.value)

    def total(self, name: str, **match: str) -> float:
        """Sum of ``name``'s samples whose labels include ``match``."""
        return sum(
            value
            for labels, value in self.samples.get(name, {}).items()
            if all(dict(labels).get(k) == v for k, v in match.items())
        )

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, value in self.samples.get(name, {}).items():
            key = dict(labels).get(label)
            if key is not None:
                out[key] = out.get(key, 0.0) + value
        return out

    def has(self, name: str) -> bool:
        return name in self.samples

    def buckets(self, histogram: str) -> list[tuple[float, float]]:
        """Cumulative ``(upper bound, count)`` of a histogram, summed over label sets."""
        by_le = self.by_label(f"{histogram}_bucket", "le")
        return sorted((float(le), count) for le, count in by_le.items())


def scrape(urls: Iterable[str], timeout_s: float = 0.5) -> MetricsSnapshot:
    """One snapshot of several ``/metrics`` endpoints; an endpoint down is counted, not fatal."""
    snapshot = MetricsSnapshot()
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                text = response.read().decode("utf-8", errors="replace")
        except OSError:
            snapshot.endpoints_down += 1
            continue
        snapshot.add_text(text)
        snapshot.endpoints_up += 1
    return snapshot


def bucket_delta(
    now: list[tuple[float, float]], before: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Buckets of the observations made between two scrapes (counters only grow)."""
    previous = dict(before)
    return [(le, max(0.0, count - previous.get(le, 0.0))) for le, count in now]


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """``histogram_quantile(q, ...)`` over cumulative buckets; None without observations."""
    if not buckets or not 0.0 <= q <= 1.0:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for upper_bound, count in buckets:
        if count >= rank:
            if math.isinf(upper_bound):
                return lower_bound  # beyond the last finite bucket: its bound, as Prometheus
            width = count - lower_count
            if width <= 0:
                return upper_bound
            return lower_bound + (upper_bound - lower_bound) * (rank - lower_count) / width
        lower_bound, lower_count = upper_bound, count
    return lower_bound


def share_below(bound: float, buckets: list[tuple[float, float]]) -> float | None:
    """Share of observations at or below ``bound`` (a bucket boundary, e.g. the SLA)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    below = max((count for le, count in buckets if le <= bound), default=0.0)
    return below / buckets[-1][1]
