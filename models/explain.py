"""Top reasons for flagged transactions, from TreeSHAP.

Computed in one batch and only for the rows the policy flags, so the approve path pays
nothing. Each reason names the feature, its value and its contribution (log-odds) and
reads like an analyst would say it: "7-day terminal fraud rate 0.31, ×12 the median".
Medians come from the version's reference sample (validation features).

TreeSHAP is the costliest step per row of the scorer: LightGBM's ``pred_contrib`` took
~0.5 ms per flagged row for the 131-tree bench model, against ~35 µs for a plain
prediction of the batch. The explainer computes the same values (to rounding) with
:class:`models.tree_shap.TreeShap`, a C kernel that looks each leaf's contributions up in
tables built once per model; LightGBM is called only for a model the kernel does not
cover. LightGBM runs it on every core by default: OpenMP doubled the CPU of a one-row
call (1.45 vs 0.81 ms) and took the second core from the broker, so it gets one thread
(``num_threads``), like the scorer's ONNX session.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from models.lgb import lgb
from models.tree_shap import TreeShap
from streams.events import Reason

_WINDOW = re.compile(r"^(?P<base>.+?)_(?P<n>\d+)(?P<unit>[dhm])$")
_UNITS = {"d": "day", "h": "hour", "m": "minute"}


def humanize(name: str) -> str:
    """``terminal_fraud_rate_7d`` -> ``7-day terminal fraud rate``."""
    match = _WINDOW.match(name)
    if match:
        base = match["base"].replace("_", " ")
        return f"{match['n']}-{_UNITS[match['unit']]} {base}"
    return name.replace("_", " ")


def _number(value: float) -> str:
    if np.isnan(value):
        return "missing"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}"


def reason_text(label: str, value: float, median: float) -> str:
    text = f"{label} {_number(value)}"
    if np.isnan(value) or np.isnan(median):
        return text
    if median > 0 and value > 0:
        ratio = value / median
        if ratio >= 1.5:
            return (
                f"{text}, ×{ratio:.0f} the median"
                if ratio >= 10
                else f"{text}, ×{ratio:.1f} the median"
            )
        if ratio <= 0.67:
            return f"{text}, ×{ratio:.2f} the median"
    return f"{text} (median {_number(median)})"


class Explainer:
    """Batch TreeSHAP reasons for a LightGBM booster and its feature order."""

    def __init__(
        self,
        booster: lgb.Booster,
        feature_names: Sequence[str],
        medians: np.ndarray,
        descriptions: Mapping[str, str] | None = None,
        num_threads: int = 1,
    ) -> None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        if booster.num_feature() != len(feature_names) or len(medians) != len(feature_names):
            raise ValueError("booster, feature names and medians disagree on the feature count")
        self.booster = booster
        self.feature_names = list(feature_names)
        self.labels = [(descriptions or {}).get(n) or humanize(n) for n in feature_names]
        self.medians = np.asarray(medians, dtype=np.float64)
        self.num_threads = num_threads
        self.kernel = TreeShap.of(booster)
        """The C TreeSHAP of this booster; None where LightGBM's is used."""

    @classmethod
    def from_files(
        cls,
        model_text: Path,
        feature_names: Sequence[str],
        reference: np.ndarray,
        descriptions: Mapping[str, str] | None = None,
    ) -> Explainer:
        """Build from a version's ``model.txt`` and reference sample (medians per column)."""
        booster = lgb.Booster(model_file=str(model_text))
        with np.errstate(all="ignore"):
            medians = (
                np.nanmedian(reference.astype(np.float64), axis=0)
                if len(reference)
                else (np.full(len(feature_names), np.nan))
            )
        return cls(booster, feature_names, medians, descriptions)

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions, shape ``(n, n_features)`` (bias dropped)."""
        if self.kernel is not None:
            return self.kernel.contributions(features)
        raw = np.asarray(
            self.booster.predict(features, pred_contrib=True, num_threads=self.num_threads)
        )
        return raw[:, : len(self.feature_names)]

    def explain(self, features: np.ndarray, top: int = 3) -> list[list[Reason]]:
        """Up to ``top`` reasons per row, strongest push towards fraud first."""
        if len(features) == 0:
            return []
        contrib = self.contributions(features)
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
        out: list[list[Reason]] = []
        for row, columns in enumerate(order):
            reasons = []
            for rank, col in enumerate(columns):
                weight = float(contrib[row, col])
                if weight <= 0 and rank > 0:
                    break
                value = float(features[row, col])
                reasons.append(
                    Reason(
                        feature=self.feature_names[col],
                        value=value,
                        contribution=weight,
                        text=reason_text(self.labels[col], value, float(self.medians[col])),
                    )
                )
            out.append(reasons)
        return out
