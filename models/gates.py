"""Promotion gates: a challenger replaces the champion only if every gate passes.

Each gate has a number, a name, the number it measured, the bound it was held to and a
pass/fail verdict; the reasons of a rejection are the lines of the failed gates.

1. ``data_checks`` - the evaluation window holds enough labelled rows and both classes;
2. ``onnx_parity`` - the ONNX export reproduces LightGBM's probabilities;
3. ``average_precision`` - challenger AP >= champion AP + margin on the most recent
   labelled window (rows neither model trained on);
4. ``precision_at_review`` - the challenger's precision at its review threshold is not
   worse (minus a tolerance) than the champion's over as many of its highest-scored rows
   on that window: precision falls as more rows are flagged, so the two are held to the
   same volume (a policy refit on recent traffic may decline a burst the champion missed);
5. ``reference_drift`` - the challenger's reference sample does not itself fail the drift
   check against current traffic (it was trained on data that looks like today's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.drift import Correction, DriftDetector, DriftError
from models.export import PARITY_TOLERANCE, parity
from models.lgb import lgb
from models.metrics import precision_recall_at, ranking_metrics
from models.registry import ModelBundle


@dataclass(frozen=True)
class GateConfig:
    min_labels: int = 200
    min_frauds: int = 10
    parity_tolerance: float = PARITY_TOLERANCE
    ap_margin: float = 0.0
    precision_tolerance: float = 0.0
    drift_alpha: float = 0.05
    drift_correction: Correction = "bonferroni"
    drift_min_rows: int = 200
    drift_min_effect: float = 0.0
    drift_ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class GateResult:
    number: int
    name: str
    passed: bool
    value: float
    bound: float
    detail: str

    def line(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        return f"gate {self.number} {self.name}: {verdict} - {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "passed": self.passed,
            "value": self.value if math.isfinite(self.value) else None,
            "bound": self.bound if math.isfinite(self.bound) else None,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class GateReport:
    results: list[GateResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def failures(self) -> list[str]:
        return [r.line() for r in self.results if not r.passed]

    def lines(self) -> list[str]:
        return [r.line() for r in self.results]

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "gates": [r.as_dict() for r in self.results]}


def gate_data_checks(labels: np.ndarray, config: GateConfig) -> GateResult:
    """Gate 1: enough labelled rows, at least ``min_frauds`` frauds and one legit row."""
    labels = np.asarray(labels)
    n, frauds = len(labels), int(np.sum(labels == 1))
    legit = n - frauds
    passed = n >= config.min_labels and frauds >= config.min_frauds and legit >= 1
    detail = (
        f"{n} labelled rows (need {config.min_labels}), {frauds} fraud "
        f"(need {config.min_frauds}), {legit} legit (need 1)"
    )
    return GateResult(1, "data_checks", passed, float(n), float(config.min_labels), detail)


def gate_onnx_parity(max_abs_diff: float, config: GateConfig) -> GateResult:
    """Gate 2: max |p_onnx - p_lightgbm| <= tolerance (NaN fails)."""
    passed = bool(max_abs_diff <= config.parity_tolerance)
    detail = (
        f"max |p_onnx - p_lightgbm| = {max_abs_diff:.3g} (tolerance {config.parity_tolerance:g})"
    )
    return GateResult(2, "onnx_parity", passed, max_abs_diff, config.parity_tolerance, detail)


def gate_average_precision(
    labels: np.ndarray, champion: np.ndarray, challenger: np.ndarray, config: GateConfig
) -> GateResult:
    """Gate 3: challenger AP >= champion AP + margin on the same labelled rows."""
    champion_ap = ranking_metrics(np.asarray(champion), np.asarray(labels))["average_precision"]
    challenger_ap = ranking_metrics(np.asarray(challenger), np.asarray(labels))["average_precision"]
    bound = champion_ap + config.ap_margin
    passed = math.isfinite(challenger_ap) and math.isfinite(bound) and challenger_ap >= bound
    detail = (
        f"challenger AP {challenger_ap:.4f} vs champion AP {champion_ap:.4f} "
        f"+ margin {config.ap_margin:g} on {len(labels)} rows"
    )
    return GateResult(3, "average_precision", passed, challenger_ap, bound, detail)


def gate_precision_at_review(
    labels: np.ndarray,
    champion: np.ndarray,
    champion_threshold: float,
    challenger: np.ndarray,
    challenger_threshold: float,
    config: GateConfig,
) -> GateResult:
    """Gate 4: challenger precision at its threshold >= the champion's over the same number
    of its top-scored rows - tolerance (its own threshold's numbers are in the detail)."""
    labels = np.asarray(labels)
    ours = precision_recall_at(np.asarray(challenger), labels, challenger_threshold)
    theirs = precision_recall_at(np.asarray(champion), labels, champion_threshold)
    flagged = int(np.sum(np.asarray(challenger) >= challenger_threshold))
    top = np.argsort(np.asarray(champion), kind="stable")[::-1][:flagged]
    same_volume = float(labels[top].mean()) if flagged else theirs["precision"]
    bound = same_volume - config.precision_tolerance
    passed = flagged > 0 and ours["precision"] >= bound
    detail = (
        f"challenger precision {ours['precision']:.4f} ({flagged} flagged at "
        f"{challenger_threshold:.4g}) vs champion {same_volume:.4f} on its top {flagged} "
        f"({theirs['precision']:.4f} at its {champion_threshold:.4g}) - tolerance "
        f"{config.precision_tolerance:g}"
    )
    return GateResult(4, "precision_at_review", passed, ours["precision"], bound, detail)


def gate_reference_drift(
    reference: np.ndarray,
    window: np.ndarray,
    config: GateConfig,
    feature_names: Sequence[str] | None = None,
    categorical: Sequence[int] = (),
) -> GateResult:
    """Gate 5: the challenger's reference sample vs current traffic shows no data drift."""
    names = tuple(feature_names or (f"f{i}" for i in range(np.asarray(window).shape[1])))
    detector = DriftDetector(
        np.asarray(reference),
        names,
        tuple(categorical),
        alpha=config.drift_alpha,
        correction=config.drift_correction,
        min_rows=config.drift_min_rows,
        min_effect=config.drift_min_effect,
        ignore=config.drift_ignore,
    )
    try:
        report = detector.check(np.asarray(window))
    except DriftError as exc:
        return GateResult(5, "reference_drift", False, math.nan, config.drift_alpha, str(exc))
    drifted = report.drifted_features
    detail = (
        f"{len(drifted)} drifted feature(s) at alpha {config.drift_alpha:g} "
        f"({config.drift_correction}, effect >= {config.drift_min_effect:g}), "
        f"min p {report.min_p_value:.3g}" + (f": {', '.join(drifted[:8])}" if drifted else "")
    )
    return GateResult(5, "reference_drift", not report.drifted, float(len(drifted)), 0.0, detail)


def bundle_parity(bundle: ModelBundle, rows: np.ndarray) -> float:
    """Max |ONNX - LightGBM| of a bundle on ``rows`` (its own reference if rows is empty)."""
    booster = lgb.Booster(model_str=bundle.model_text)
    sample = np.asarray(rows if len(rows) else bundle.reference, dtype=np.float32)
    if len(sample) == 0:
        return math.nan
    return float(np.max(parity(booster, bundle.onnx, sample)))


@dataclass(frozen=True)
class Candidate:
    """What the gates need to know about a challenger and the window it is judged on."""

    labels: np.ndarray
    champion_scores: np.ndarray
    champion_threshold: float
    challenger_scores: np.ndarray
    challenger_threshold: float
    max_abs_diff: float
    challenger_reference: np.ndarray
    current_window: np.ndarray


def run_gates(
    candidate: Candidate,
    config: GateConfig,
    *,
    feature_names: Sequence[str] | None = None,
    categorical: Sequence[int] = (),
) -> GateReport:
    """Every gate, in number order; all are evaluated so the report shows every number."""
    c = candidate
    return GateReport(
        [
            gate_data_checks(c.labels, config),
            gate_onnx_parity(c.max_abs_diff, config),
            gate_average_precision(c.labels, c.champion_scores, c.challenger_scores, config),
            gate_precision_at_review(
                c.labels,
                c.champion_scores,
                c.champion_threshold,
                c.challenger_scores,
                c.challenger_threshold,
                config,
            ),
            gate_reference_drift(
                c.challenger_reference, c.current_window, config, feature_names, categorical
            ),
        ]
    )
