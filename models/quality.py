"""Label-based quality of the serving model, against the numbers it was promoted with.

Two measures, both from labelled served rows (the score the model gave, the label that
came back later):

* **reviewed precision**: of the most recent labelled cases the model flagged (score at
  or above its review threshold), the share that were fraud - what analysts experience;
* **average precision** on all labelled rows of the window.

Each is compared with the champion's own evaluation numbers from ``metrics.json``
(``at_review_threshold.precision`` and ``average_precision``); a relative drop beyond the
tolerance is a quality drop, which the retrainer treats as a trigger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.metrics import ranking_metrics


@dataclass(frozen=True)
class QualityBaseline:
    """What the champion promised on its test window."""

    version: str
    average_precision: float
    review_precision: float
    review_threshold: float

    @classmethod
    def from_metrics(
        cls, version: str, metrics: dict[str, Any], review_threshold: float
    ) -> QualityBaseline:
        at = metrics.get("at_review_threshold")
        precision = at.get("precision") if isinstance(at, dict) else None
        return cls(
            version,
            float(metrics.get("average_precision", math.nan)),
            float(precision) if precision is not None else math.nan,
            float(review_threshold),
        )


@dataclass(frozen=True)
class QualityReport:
    version: str
    labelled_rows: int
    frauds: int
    reviewed_cases: int
    reviewed_precision: float
    average_precision: float
    baseline: QualityBaseline
    tolerance: float
    dropped: bool
    reasons: list[str] = field(default_factory=list)

    def details(self) -> dict[str, Any]:
        return {
            "labelled_rows": self.labelled_rows,
            "frauds": self.frauds,
            "reviewed_cases": self.reviewed_cases,
            "reviewed_precision": _finite(self.reviewed_precision),
            "average_precision": _finite(self.average_precision),
            "baseline_average_precision": _finite(self.baseline.average_precision),
            "baseline_review_precision": _finite(self.baseline.review_precision),
            "review_threshold": self.baseline.review_threshold,
            "tolerance": self.tolerance,
            "dropped": self.dropped,
        }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def reviewed_precision(
    scores: np.ndarray, labels: np.ndarray, threshold: float, last: int | None = None
) -> tuple[float, int]:
    """(precision, cases) over the last ``last`` labelled rows scored >= ``threshold``.

    Rows are in time order. NaN precision when no labelled row was flagged.
    """
    flagged = np.flatnonzero(np.asarray(scores) >= threshold)
    if last is not None:
        flagged = flagged[-last:] if last > 0 else flagged[:0]
    if len(flagged) == 0:
        return math.nan, 0
    return float(np.mean(np.asarray(labels)[flagged] == 1)), len(flagged)


def dropped_below(value: float, baseline: float, tolerance: float) -> bool:
    """``value < baseline * (1 - tolerance)``; unknown numbers never count as a drop."""
    if not (math.isfinite(value) and math.isfinite(baseline)):
        return False
    return value < baseline * (1.0 - tolerance)


def assess_quality(
    scores: np.ndarray,
    labels: np.ndarray,
    baseline: QualityBaseline,
    *,
    tolerance: float = 0.2,
    min_labels: int = 100,
    min_frauds: int = 5,
    review_window: int | None = 500,
) -> QualityReport:
    """Quality of the served ``scores`` (time order) against ``labels`` (1 fraud, 0 legit).

    A drop needs at least ``min_labels`` rows and ``min_frauds`` frauds, so a handful of
    early labels cannot trigger a retrain.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int8)
    frauds = int(labels.sum())
    precision, cases = reviewed_precision(scores, labels, baseline.review_threshold, review_window)
    ap = ranking_metrics(scores, labels)["average_precision"] if len(labels) else math.nan
    reasons: list[str] = []
    enough = len(labels) >= min_labels and frauds >= min_frauds
    ap_drop = enough and dropped_below(ap, baseline.average_precision, tolerance)
    precision_drop = enough and dropped_below(precision, baseline.review_precision, tolerance)
    if ap_drop:
        reasons.append(
            f"average precision {ap:.3f} < {1 - tolerance:.2f} x champion's "
            f"{baseline.average_precision:.3f}"
        )
    if precision_drop:
        reasons.append(
            f"reviewed precision {precision:.3f} over {cases} cases < {1 - tolerance:.2f} x "
            f"champion's {baseline.review_precision:.3f}"
        )
    if not enough:
        reasons.append(
            f"not enough labels to judge: {len(labels)} rows, {frauds} frauds "
            f"(need {min_labels} and {min_frauds})"
        )
    return QualityReport(
        baseline.version,
        len(labels),
        frauds,
        cases,
        precision,
        ap,
        baseline,
        tolerance,
        dropped=ap_drop or precision_drop,
        reasons=reasons,
    )
