"""The demo's closing summary: numbers computed from what the demo watched, then a table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.table import Table

from services.demo.dashboard import QUANTILES, SLA_S, fmt_ms
from services.demo.scrape import quantile, share_below
from services.demo.watch import CARD_TESTING, Served, TopicView


@dataclass(frozen=True)
class VersionQuality:
    """One model version on the traffic after the switch (ground truth from the simulator)."""

    version: str
    transactions: int
    frauds: int
    average_precision: float | None
    pattern_frauds: int
    pattern_caught: int


@dataclass
class Summary:
    produced: int
    decisions: int
    latency: dict[float, float | None]
    within_sla: float | None
    flagged: int
    outcomes: dict[str, int]
    labels: dict[str, int]
    versions: dict[str, int]
    promotions: list[tuple[float, str, str | None]]
    after_switch: list[VersionQuality] = field(default_factory=list)
    duplicates: int = 0
    stopped_by: str = "time limit"
    exit_codes: dict[str, int | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "produced": self.produced,
            "decisions": self.decisions,
            "latency_s": {f"p{q * 100:.0f}": v for q, v in self.latency.items()},
            "within_sla": self.within_sla,
            "flagged": self.flagged,
            "outcomes": self.outcomes,
            "labels": self.labels,
            "versions": self.versions,
            "promotions": [
                {"at_s": round(at, 1), "version": v, "previous": p} for at, v, p in self.promotions
            ],
            "after_switch": [q.__dict__ for q in self.after_switch],
            "duplicates": self.duplicates,
            "stopped_by": self.stopped_by,
            "exit_codes": self.exit_codes,
        }


def average_precision(labels: list[int], scores: list[float]) -> float | None:
    """AP of ``scores`` against 0/1 ``labels``; None when only one class is present."""
    from sklearn.metrics import average_precision_score

    if len(set(labels)) < 2:
        return None
    value = float(average_precision_score(np.asarray(labels), np.asarray(scores)))
    return value if math.isfinite(value) else None


def quality_after_switch(served: list[Served]) -> list[VersionQuality]:
    """Per model version, on decisions made after the new pattern switched on."""
    out = []
    for version in sorted({s.model_version for s in served if s.after_switch}):
        rows = [
            s
            for s in served
            if s.after_switch and s.model_version == version and s.is_fraud is not None
        ]
        labels = [int(s.is_fraud or 0) for s in rows]
        pattern = [s for s in rows if s.is_fraud and s.scenario == CARD_TESTING]
        out.append(
            VersionQuality(
                version=version,
                transactions=len(rows),
                frauds=sum(labels),
                average_precision=average_precision(labels, [s.score for s in rows]),
                pattern_frauds=len(pattern),
                pattern_caught=sum(1 for s in pattern if s.flagged),
            )
        )
    return out


def summarize(
    produced: int,
    topics: TopicView,
    served: list[Served],
    latency_buckets: list[tuple[float, float]],
) -> Summary:
    ids = [s.transaction_id for s in served]
    return Summary(
        produced=produced,
        decisions=topics.decisions,
        latency={q: quantile(q, latency_buckets) for q in QUANTILES},
        within_sla=share_below(SLA_S, latency_buckets),
        flagged=topics.review_cases,
        outcomes=dict(topics.outcomes),
        labels=dict(topics.labels),
        versions=dict(topics.by_version),
        promotions=[
            (at, e.model_version, e.previous_version)
            for at, e in topics.events
            if e.kind == "promoted"
        ],
        after_switch=quality_after_switch(served),
        duplicates=len(ids) - len(set(ids)),
    )


def _ap(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary_table(summary: Summary) -> Table:
    table = Table(title=f"demo summary (stopped by {summary.stopped_by})")
    table.add_column("")
    table.add_column("value")
    table.add_row("transactions produced", f"{summary.produced:,}")
    table.add_row("decisions", f"{summary.decisions:,} (duplicates: {summary.duplicates})")
    mix = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.outcomes.items()))
    table.add_row("decision mix", mix or "-")
    latency = "  ".join(f"p{q * 100:.0f} {fmt_ms(v)}" for q, v in summary.latency.items())
    table.add_row("e2e latency", latency)
    share = "-" if summary.within_sla is None else f"{summary.within_sla:.2%}"
    table.add_row("within 50 ms SLA", share)
    table.add_row("flagged for review", f"{summary.flagged:,}")
    labels = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.labels.items()))
    table.add_row("labels by source", labels or "-")
    for version, count in sorted(summary.versions.items()):
        table.add_row(f"decided by {version}", f"{count:,}")
    for at, version, previous in summary.promotions:
        came = f" (replacing {previous})" if previous else " (first champion)"
        table.add_row("promoted", f"{version} at {at:.0f}s{came}")
    for q in summary.after_switch:
        caught = f"{q.pattern_caught}/{q.pattern_frauds}" if q.pattern_frauds else "-"
        table.add_row(
            f"after switch: {q.version}",
            f"AP {_ap(q.average_precision)} on {q.transactions:,} tx ({q.frauds} fraud); "
            f"card-testing fraud flagged {caught}",
        )
    return table
