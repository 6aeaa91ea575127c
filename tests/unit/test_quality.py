"""Label-based quality: reviewed precision and AP against the champion's own numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.quality import QualityBaseline, assess_quality, dropped_below, reviewed_precision

pytestmark = pytest.mark.unit

BASELINE = QualityBaseline(
    "v0001", average_precision=0.6, review_precision=0.5, review_threshold=0.5
)


def test_baseline_reads_metrics_json_numbers() -> None:
    metrics = {"average_precision": 0.61, "at_review_threshold": {"precision": 0.42}}
    base = QualityBaseline.from_metrics("v0003", metrics, 0.37)
    assert (base.version, base.average_precision, base.review_precision) == ("v0003", 0.61, 0.42)
    assert base.review_threshold == 0.37


def test_reviewed_precision_counts_only_flagged_rows_in_the_last_cases() -> None:
    scores = np.array([0.9, 0.1, 0.8, 0.7, 0.2, 0.95])
    labels = np.array([1, 0, 0, 1, 1, 1])
    assert reviewed_precision(scores, labels, 0.5) == (0.75, 4)
    assert reviewed_precision(scores, labels, 0.5, last=2) == (1.0, 2)  # rows 3 and 5
    precision, cases = reviewed_precision(scores, labels, 0.99)
    assert math.isnan(precision) and cases == 0


def test_dropped_below_is_relative_and_ignores_unknowns() -> None:
    assert dropped_below(0.39, 0.5, 0.2)
    assert not dropped_below(0.40, 0.5, 0.2)
    assert not dropped_below(math.nan, 0.5, 0.2)
    assert not dropped_below(0.1, math.nan, 0.2)


def _labelled(good: bool, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros(n, dtype=np.int8)
    labels[::10] = 1  # 40 frauds
    scores = np.where(labels == 1, 0.9, 0.1) if good else np.linspace(0.99, 0.0, n)
    return scores.astype(np.float64), labels


def test_good_model_has_no_quality_drop() -> None:
    scores, labels = _labelled(good=True)
    report = assess_quality(scores, labels, BASELINE)
    assert report.average_precision == 1.0 and report.reviewed_precision == 1.0
    assert report.reviewed_cases == 40
    assert not report.dropped and report.reasons == []


def test_uninformative_model_is_a_quality_drop_with_both_reasons() -> None:
    scores, labels = _labelled(good=False)
    report = assess_quality(scores, labels, BASELINE)
    assert report.dropped
    assert report.reviewed_precision == pytest.approx(20 / 198)  # 198 rows >= 0.5
    assert [r.split()[0] for r in report.reasons] == ["average", "reviewed"]


def test_too_few_labels_never_trigger() -> None:
    scores, labels = _labelled(good=False, n=50)
    report = assess_quality(scores, labels, BASELINE, min_labels=100)
    assert not report.dropped
    assert report.reasons[0].startswith("not enough labels")
