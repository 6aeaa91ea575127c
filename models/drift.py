"""Data and score drift: recent served feature vectors against a model's reference sample.

Per feature, alibi-detect's :class:`~alibi_detect.cd.TabularDrift` runs a two-sample
Kolmogorov-Smirnov test on numeric features and a chi-squared test on categorical ones
(codes and flags: see :func:`categorical_indices`). The per-feature p-values are then
corrected for testing many features at once - Bonferroni (``p < alpha / n``) or the
Benjamini-Hochberg false-discovery rate. A feature has drifted when it survives the
correction *and* its effect size (KS distance, or Cramer's V for categories) reaches
``min_effect``: with thousands of rows a KS test flags shifts too small to matter.
Features in ``ignore`` (e.g. calendar features, which a window shorter than a week always
"shifts") are reported but not tested. Score drift is a KS test (alibi-detect
:class:`~alibi_detect.cd.KSDrift`) between the model's scores on its reference sample and
the scores it served recently.

Pure library code: the retrainer feeds it numpy arrays and publishes the reports.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from features.definitions import FEATURES, FeatureDef
from models.errors import ModelError

Correction = Literal["bonferroni", "fdr"]

CATEGORICAL_AGGREGATIONS = frozenset(
    {
        "channel_code",
        "merchant_category_code",
        "is_weekend",
        "is_night",
        "is_empty",
        "terminal_not_seen",
    }
)
"""Aggregations whose values are codes or flags: compared by category counts, not by KS."""

CALENDAR_FEATURES: tuple[str, ...] = ("tx_hour", "tx_is_weekend", "tx_is_night")
"""Cycle with the clock: windows shorter than a week differ on them by construction."""

MISSING = -1.0e9
"""Stand-in for NaN before testing (a missing value is a category of its own)."""


class DriftError(ModelError):
    """The drift check cannot run on these inputs (shapes, too few rows)."""


def categorical_indices(features: Sequence[FeatureDef] = FEATURES) -> list[int]:
    """Column indices of the categorical features (codes and 0/1 flags)."""
    return [i for i, f in enumerate(features) if f.aggregation in CATEGORICAL_AGGREGATIONS]


def significant(p_values: np.ndarray, alpha: float, correction: Correction) -> np.ndarray:
    """Mask of the tests rejected at level ``alpha`` after the multiple-testing correction.

    Bonferroni: ``p < alpha / n``. FDR (Benjamini-Hochberg): sort the p-values, find the
    largest ``k`` with ``p_(k) <= k * alpha / n`` and reject the ``k`` smallest.
    """
    p = np.asarray(p_values, dtype=np.float64)
    n = len(p)
    if n == 0:
        return np.zeros(0, dtype=bool)
    if correction == "bonferroni":
        return np.asarray(p < alpha / n)
    if correction != "fdr":
        raise DriftError(f"unknown correction {correction!r} (bonferroni | fdr)")
    order = np.argsort(p, kind="stable")
    below = p[order] <= alpha * np.arange(1, n + 1) / n
    out = np.zeros(n, dtype=bool)
    if below.any():
        k = int(np.flatnonzero(below)[-1]) + 1
        out[order[:k]] = True
    return out


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: Literal["numeric", "categorical"]
    p_value: float
    statistic: float
    drifted: bool
    effect: float = 0.0
    ignored: bool = False


@dataclass(frozen=True)
class DriftReport:
    """One check: the verdict, every feature's p-value, and the score-drift test."""

    drifted: bool
    features: list[FeatureDrift]
    reference_rows: int
    window_rows: int
    alpha: float
    correction: Correction
    score_p_value: float | None = None
    score_statistic: float | None = None
    score_drifted: bool = False
    min_effect: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def any_drift(self) -> bool:
        """Data drift or score drift."""
        return self.drifted or self.score_drifted

    @property
    def min_p_value(self) -> float:
        return min((f.p_value for f in self.features), default=1.0)

    def details(self) -> dict[str, Any]:
        """JSON-ready summary for a ``ModelEvent`` (p-values rounded, drifted names first)."""
        return {
            "drifted": self.drifted,
            "drifted_features": self.drifted_features,
            "score_drifted": self.score_drifted,
            "score_p_value": _round(self.score_p_value),
            "score_statistic": _round(self.score_statistic),
            "p_values": {f.name: _round(f.p_value) for f in self.features},
            "effects": {f.name: _round(f.effect) for f in self.features},
            "min_effect": self.min_effect,
            "ignored": [f.name for f in self.features if f.ignored],
            "reference_rows": self.reference_rows,
            "window_rows": self.window_rows,
            "alpha": self.alpha,
            "correction": self.correction,
            "notes": self.notes,
        }

    def reasons(self) -> list[str]:
        out = []
        if self.drifted:
            out.append(
                f"data drift in {len(self.drifted_features)} feature(s): "
                + ", ".join(self.drifted_features[:10])
            )
        if self.score_drifted:
            out.append(f"score drift (KS p={self.score_p_value:.3g})")
        return out or ["no drift"]


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return value
    return float(f"{value:.4g}")


def _clean(matrix: np.ndarray) -> np.ndarray:
    out = np.asarray(matrix, dtype=np.float64)
    if out.ndim != 2:
        raise DriftError(f"expected a 2-d feature matrix, got shape {out.shape}")
    return np.where(np.isnan(out), MISSING, out)


def effect_sizes(
    statistics: np.ndarray, categorical: Sequence[int], n_reference: int, n_window: int
) -> np.ndarray:
    """Effect size per feature: the KS distance, or Cramer's V (``sqrt(chi2 / n)``, 2 x k)."""
    effect = np.asarray(statistics, dtype=np.float64).copy()
    cats = list(categorical)
    if cats:
        effect[cats] = np.sqrt(np.maximum(effect[cats], 0.0) / max(1, n_reference + n_window))
    return np.nan_to_num(effect, nan=0.0)


def feature_p_values(
    reference: np.ndarray, window: np.ndarray, categorical: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (p-values, statistics) from alibi-detect's TabularDrift (uncorrected)."""
    from alibi_detect.cd import TabularDrift  # heavy import, only where it is used

    ref, win = _clean(reference), _clean(window)
    if ref.shape[1] != win.shape[1]:
        raise DriftError(f"reference has {ref.shape[1]} features, window has {win.shape[1]}")
    detector = TabularDrift(
        ref,
        p_val=0.05,
        categories_per_feature={int(i): None for i in categorical},
        correction="bonferroni",
    )
    result = detector.predict(win, drift_type="feature", return_p_val=True, return_distance=True)
    data = result["data"]
    return np.asarray(data["p_val"], dtype=np.float64), np.asarray(data["distance"], np.float64)


def score_drift(reference_scores: np.ndarray, window_scores: np.ndarray) -> tuple[float, float]:
    """(p-value, KS statistic) of the served scores against the reference scores (KSDrift)."""
    from alibi_detect.cd import KSDrift

    ref = np.asarray(reference_scores, dtype=np.float64).reshape(-1, 1)
    win = np.asarray(window_scores, dtype=np.float64).reshape(-1, 1)
    result = KSDrift(ref, p_val=0.05).predict(win, return_p_val=True, return_distance=True)
    data = result["data"]
    return float(np.ravel(data["p_val"])[0]), float(np.ravel(data["distance"])[0])


@dataclass(frozen=True)
class DriftDetector:
    """Compares windows of served rows with one reference sample (one model version)."""

    reference: np.ndarray
    feature_names: tuple[str, ...]
    categorical: tuple[int, ...] = ()
    alpha: float = 0.05
    correction: Correction = "bonferroni"
    min_rows: int = 200
    reference_scores: np.ndarray | None = None
    min_effect: float = 0.0
    ignore: tuple[str, ...] = ()

    @classmethod
    def for_features(
        cls,
        reference: np.ndarray,
        features: Sequence[FeatureDef] = FEATURES,
        **kwargs: Any,
    ) -> DriftDetector:
        names = tuple(f.name for f in features)
        return cls(np.asarray(reference), names, tuple(categorical_indices(features)), **kwargs)

    def check(self, window: np.ndarray, window_scores: np.ndarray | None = None) -> DriftReport:
        """Test ``window`` (rows x features) and, when both are known, the score shift."""
        window = np.asarray(window)
        n_ref, n_win = len(self.reference), len(window)
        if min(n_ref, n_win) < self.min_rows:
            raise DriftError(
                f"too few rows for a drift check: reference {n_ref}, window {n_win} "
                f"(at least {self.min_rows} each)"
            )
        if window.shape[1] != len(self.feature_names):
            raise DriftError(
                f"window has {window.shape[1]} features, expected {len(self.feature_names)}"
            )
        p_values, stats = feature_p_values(self.reference, window, self.categorical)
        p_values = np.nan_to_num(p_values, nan=1.0)
        effect = effect_sizes(stats, self.categorical, n_ref, n_win)
        tested = np.array([name not in self.ignore for name in self.feature_names])
        flags = np.zeros(len(p_values), dtype=bool)
        flags[tested] = significant(p_values[tested], self.alpha, self.correction)
        flags &= effect >= self.min_effect
        features = [
            FeatureDrift(
                name,
                "categorical" if i in self.categorical else "numeric",
                float(p_values[i]),
                float(stats[i]),
                bool(flags[i]),
                float(effect[i]),
                not bool(tested[i]),
            )
            for i, name in enumerate(self.feature_names)
        ]
        score_p = score_stat = None
        score_flag = False
        if self.reference_scores is not None and window_scores is not None:
            score_p, score_stat = score_drift(self.reference_scores, window_scores)
            score_flag = score_p < self.alpha
        return DriftReport(
            drifted=bool(flags.any()),
            features=features,
            reference_rows=n_ref,
            window_rows=n_win,
            alpha=self.alpha,
            correction=self.correction,
            score_p_value=score_p,
            score_statistic=score_stat,
            score_drifted=score_flag,
            min_effect=self.min_effect,
        )


logging.getLogger("alibi_detect").setLevel(logging.ERROR)
