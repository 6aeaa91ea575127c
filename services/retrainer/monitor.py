"""The two monitors of the serving champion, and their reports as metrics and events.

* drift: the last ``window_rows`` vectors the champion served against its reference
  sample (``reference.npy``), plus its served scores against its scores on that sample;
* quality: its served scores on labelled rows against its own evaluation numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID, FEATURES
from models.drift import Correction, DriftDetector, DriftReport
from models.quality import QualityBaseline, QualityReport, assess_quality
from models.registry import ModelVersion
from models.scoring import OnnxModel
from services.retrainer import metrics
from streams.events import ModelEvent


@dataclass(frozen=True)
class ChampionContext:
    version: str
    detector: DriftDetector
    baseline: QualityBaseline


def load_context(
    champion: ModelVersion,
    *,
    alpha: float,
    correction: Correction,
    min_rows: int,
    min_effect: float = 0.0,
    ignore: tuple[str, ...] = (),
) -> ChampionContext:
    reference = np.asarray(champion.reference(), dtype=np.float32)
    model = OnnxModel.load(
        champion.path,
        expected_features=FEATURE_NAMES,
        expected_feature_set=FEATURE_SET_ID,
        version=champion.version,
    )
    reference_scores = model.predict(reference) if len(reference) else None
    detector = DriftDetector.for_features(
        reference,
        FEATURES,
        alpha=alpha,
        correction=correction,
        min_rows=min_rows,
        reference_scores=reference_scores,
        min_effect=min_effect,
        ignore=ignore,
    )
    policy = champion.policy()
    baseline = QualityBaseline.from_metrics(
        champion.version, champion.metrics(), policy.review_threshold
    )
    return ChampionContext(champion.version, detector, baseline)


def assess(
    context: ChampionContext,
    labelled: pd.DataFrame,
    *,
    tolerance: float,
    min_labels: int,
    min_frauds: int,
) -> QualityReport:
    """Quality of the champion on the labelled rows it served (time order)."""
    rows = labelled[labelled["model_version"] == context.version]
    return assess_quality(
        rows["score"].to_numpy(dtype=np.float64),
        rows["is_fraud"].to_numpy(dtype=np.int8),
        context.baseline,
        tolerance=tolerance,
        min_labels=min_labels,
        min_frauds=min_frauds,
    )


def record_drift(report: DriftReport) -> None:
    for feature in report.features:
        metrics.FEATURE_P_VALUE.labels(feature.name).set(feature.p_value)
        metrics.FEATURE_DRIFTED.labels(feature.name).set(1.0 if feature.drifted else 0.0)
    metrics.DRIFT.set(1.0 if report.drifted else 0.0)
    if report.score_p_value is not None:
        metrics.SCORE_DRIFT.set(report.score_p_value)
    metrics.CHECKS.labels("drift", "drift" if report.any_drift else "ok").inc()


QUALITY_RATIOS = (
    "average_precision",
    "reviewed_precision",
    "baseline_average_precision",
    "baseline_review_precision",
)
QUALITY_COUNTS = {"labelled_rows": "labelled", "frauds": "fraud", "reviewed_cases": "reviewed"}


def record_quality(report: QualityReport) -> None:
    details = report.details()
    for name in QUALITY_RATIOS:
        value = details.get(name)
        if isinstance(value, float | int) and not isinstance(value, bool):
            metrics.QUALITY.labels(name).set(float(value))
    for name, kind in QUALITY_COUNTS.items():
        metrics.QUALITY_ROWS.labels(kind).set(float(details[name]))
    metrics.QUALITY_DROP.set(1.0 if report.dropped else 0.0)
    metrics.CHECKS.labels("quality", "drop" if report.dropped else "ok").inc()


def drift_event(version: str, report: DriftReport) -> ModelEvent:
    return ModelEvent(
        kind="drift_report",
        model_version=version,
        at=datetime.now(UTC),
        reasons=report.reasons(),
        details=report.details(),
    )


def quality_event(report: QualityReport) -> ModelEvent:
    return ModelEvent(
        kind="quality_report",
        model_version=report.version,
        at=datetime.now(UTC),
        reasons=report.reasons or ["quality as promised"],
        details=report.details(),
    )
