"""Quality metrics fraud teams read: ranking (AUC, AP), card precision@k, thresholds, calibration.

Card precision@k follows the Fraud Detection Handbook: per day, each card counts once
with its highest score and is fraudulent if any of its transactions that day is; the top
k cards are what analysts can check; precision is (frauds among them) / k; the daily values
are averaged. Handbook-style evaluation also ignores, on later days, cards already caught.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def card_precision_at_k(
    days: Sequence[int] | np.ndarray,
    cards: Sequence[str] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    k: int = 100,
    exclude_detected: bool = False,
) -> tuple[float, list[float]]:
    """Mean over days of the daily card precision@k, and the daily values (in day order)."""
    frame = pd.DataFrame(
        {
            "day": np.asarray(days),
            "card": np.asarray(cards),
            "score": np.asarray(scores),
            "label": np.asarray(labels),
        }
    )
    detected: set[object] = set()
    per_day: list[float] = []
    for _, day in frame.groupby("day", sort=True):
        if exclude_detected and detected:
            day = day[~day["card"].isin(detected)]
        cards_day = day.groupby("card", sort=True)[["score", "label"]].max()
        top = cards_day.sort_values("score", ascending=False, kind="stable").head(k)
        caught = top.index[top["label"] == 1]
        per_day.append(len(caught) / k)
        detected.update(caught)
    return (float(np.mean(per_day)) if per_day else float("nan")), per_day


def precision_recall_at(
    scores: np.ndarray, labels: np.ndarray, threshold: float
) -> dict[str, float]:
    flagged = scores >= threshold
    true_pos = int(np.sum(flagged & (labels == 1)))
    n_flagged, n_pos = int(np.sum(flagged)), int(np.sum(labels == 1))
    return {
        "threshold": float(threshold),
        "precision": true_pos / n_flagged if n_flagged else 0.0,
        "recall": true_pos / n_pos if n_pos else 0.0,
        "flagged_rate": n_flagged / len(scores) if len(scores) else 0.0,
    }


def calibration(scores: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict[str, object]:
    """Brier score, expected calibration error and a reliability table on quantile bins."""
    order = np.argsort(scores, kind="stable")
    table: list[dict[str, float]] = []
    ece = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk) == 0:
            continue
        mean_score, fraud_rate = float(scores[chunk].mean()), float(labels[chunk].mean())
        ece += len(chunk) / len(scores) * abs(mean_score - fraud_rate)
        table.append({"rows": len(chunk), "mean_score": mean_score, "fraud_rate": fraud_rate})
    return {
        "brier": float(np.mean((scores - labels) ** 2)),
        "ece": float(ece),
        "bins": table,
    }


def ranking_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    if len(np.unique(labels)) < 2:
        return {"roc_auc": float("nan"), "average_precision": float("nan")}
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
    }


def evaluate(
    scores: np.ndarray,
    labels: np.ndarray,
    days: np.ndarray,
    cards: np.ndarray,
    *,
    threshold: float | None = None,
    k: int = 100,
) -> dict[str, object]:
    """Every test-window metric of the model card in one dict (JSON-ready)."""
    cp, cp_days = card_precision_at_k(days, cards, scores, labels, k=k)
    out: dict[str, object] = {
        "rows": len(scores),
        "frauds": int(np.sum(labels)),
        "fraud_rate": float(np.mean(labels)) if len(labels) else 0.0,
        **ranking_metrics(scores, labels),
        f"card_precision_at_{k}": cp,
        f"card_precision_at_{k}_per_day": cp_days,
        "calibration": calibration(scores, labels),
    }
    if threshold is not None:
        out["at_review_threshold"] = precision_recall_at(scores, labels, threshold)
    return out
