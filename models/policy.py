"""Threshold policy: approve / review / decline, from a review capacity - not a magic 0.5.

The review threshold flags the top ``review_rate`` of validation traffic (or the share
that gives ``cases_per_day`` reviews at the validation days' volume). The decline
threshold is the lowest score above it whose validation precision reaches
``decline_precision`` among the top ``max_decline_share`` of the flagged rows; when no
threshold does, only a score of 1.0 declines. The cap keeps the review band open: with
a precise model the whole review capacity would otherwise be declined, and analysts would
only ever see what the model already decided.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from models.errors import ModelError

OUTCOMES = np.array(["approve", "review", "decline"])
MIN_DECLINES = 5


@dataclass(frozen=True)
class ThresholdPolicy:
    review_threshold: float
    decline_threshold: float
    review_rate: float
    basis: dict[str, Any] = field(default_factory=dict)

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Outcome per score: ``"approve" | "review" | "decline"`` (numpy str array)."""
        level = (scores >= self.review_threshold).astype(np.int8)
        level += scores >= self.decline_threshold
        return OUTCOMES[level]

    def flagged(self, scores: np.ndarray) -> np.ndarray:
        """Mask of rows that are not approved (these get explanations)."""
        return np.asarray(scores >= self.review_threshold)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ThresholdPolicy:
        raw = json.loads(text)
        return cls(
            float(raw["review_threshold"]),
            float(raw["decline_threshold"]),
            float(raw["review_rate"]),
            dict(raw.get("basis", {})),
        )


def choose_policy(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    review_rate: float = 0.005,
    cases_per_day: float | None = None,
    days: float = 1,
    decline_precision: float = 0.9,
    max_decline_share: float = 0.5,
) -> ThresholdPolicy:
    """Thresholds from validation scores and labels (both in validation row order)."""
    if len(scores) == 0:
        raise ModelError("no validation rows to choose thresholds on")
    if cases_per_day is not None:
        review_rate = min(1.0, cases_per_day * max(1, days) / len(scores))
    if not 0 < review_rate <= 1:
        raise ModelError(f"review rate must be in (0, 1], got {review_rate}")
    ranked = np.sort(scores)[::-1]
    n_review = max(1, round(review_rate * len(scores)))
    review_threshold = float(ranked[n_review - 1])
    hits = np.cumsum(labels[np.argsort(scores, kind="stable")[::-1]])
    precision = hits / np.arange(1, len(scores) + 1)
    decline_threshold, reached = 1.0, False
    most = min(int(n_review * max_decline_share), len(scores))
    for n in range(most, MIN_DECLINES - 1, -1):
        if precision[n - 1] >= decline_precision and ranked[n - 1] >= review_threshold:
            decline_threshold, reached = float(ranked[n - 1]), True
            break
    flagged = scores >= review_threshold
    basis = {
        "validation_rows": len(scores),
        "validation_days": days,
        "review_cases_per_day": float(np.sum(flagged)) / max(1, days),
        "review_precision": float(labels[flagged].mean()) if flagged.any() else 0.0,
        "decline_precision_target": decline_precision,
        "decline_precision_reached": reached,
        "max_decline_share": max_decline_share,
        "decline_rate": float(np.mean(scores >= decline_threshold)),
    }
    return ThresholdPolicy(
        review_threshold, max(decline_threshold, review_threshold), review_rate, basis
    )


def refit_policy(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    days: float,
    cases_per_day: float,
    replaces: ThresholdPolicy,
    window: dict[str, Any],
    declines_in_capacity: bool = False,
    traffic: tuple[np.ndarray, float] | None = None,
) -> ThresholdPolicy:
    """Thresholds for ``replaces``' model from recent served rows (scores, labels, in any
    order) spanning ``days`` days, with the decline-precision target of the policy it
    replaces.

    By default the capacity is the review band's: the decline threshold is the lowest
    score whose precision on these rows reaches the target (at least ``MIN_DECLINES``
    rows), and the review band below it holds ``cases_per_day`` cases a day at this
    volume. A burst of a new pattern is then declined as far as the model is precise on
    it instead of being cut at what analysts can review, while they still see a full band
    of cases the model did not decide. ``declines_in_capacity`` keeps the training-time
    rule instead: ``cases_per_day`` bounds review and decline together, declines at most
    the replaced policy's share of them.

    ``traffic`` (scores of the freshest served rows, unlabelled, and the days they span)
    sizes the review band instead of the labelled rows: the band needs no label, and in a
    drifting stream the rows whose labels are complete are days older than what the
    policy will meet.

    ``window`` describes the rows (first/last event time, where they came from) and goes
    into the basis with the thresholds replaced, so the served policy says why it is so.
    """
    if len(scores) == 0:
        raise ModelError("no recent labelled rows to refit the thresholds on")
    if days <= 0 or cases_per_day <= 0:
        raise ModelError(
            f"refit needs days > 0 and cases per day > 0 (got {days}, {cases_per_day})"
        )
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    target = float(replaces.basis.get("decline_precision_target", 0.9))
    cases = max(1, round(cases_per_day * days))
    if declines_in_capacity:
        fitted = choose_policy(
            scores,
            labels,
            review_rate=min(1.0, cases / len(scores)),
            days=days,
            decline_precision=target,
            max_decline_share=float(replaces.basis.get("max_decline_share", 0.5)),
        )
        review_threshold, decline_threshold = fitted.review_threshold, fitted.decline_threshold
        reached = bool(fitted.basis["decline_precision_reached"])
    else:
        order = np.argsort(scores, kind="stable")[::-1]
        ranked = scores[order]
        precision = np.cumsum(labels[order]) / np.arange(1, len(scores) + 1)
        precise = np.flatnonzero(precision[MIN_DECLINES - 1 :] >= target)
        reached = bool(len(precise))
        n_decline = int(precise.max()) + MIN_DECLINES if reached else 0
        decline_threshold = float(ranked[n_decline - 1]) if reached else 1.0
        review_threshold = float(ranked[min(n_decline + cases, len(scores)) - 1])
        if traffic is not None and len(traffic[0]) and traffic[1] > 0:
            fresh = np.sort(np.asarray(traffic[0], dtype=np.float64))[::-1]
            below = fresh[fresh < decline_threshold]
            band = max(1, round(cases_per_day * traffic[1]))
            if len(below):
                review_threshold = float(below[min(band, len(below)) - 1])
    decline_threshold = max(decline_threshold, review_threshold)
    declined = scores >= decline_threshold
    reviewed = (scores >= review_threshold) & ~declined
    flagged = declined | reviewed
    basis = {
        "fitted_on": "recent labelled served traffic",
        "rows": len(scores),
        "days": days,
        "review_capacity_per_day": cases_per_day,
        "declines_in_capacity": declines_in_capacity,
        "review_cases_per_day": float(np.sum(reviewed)) / days,
        "review_band_sized_on": (
            {
                "rows": len(traffic[0]),
                "days": traffic[1],
                "review_cases_per_day": float(
                    np.sum(
                        (np.asarray(traffic[0]) >= review_threshold)
                        & (np.asarray(traffic[0]) < decline_threshold)
                    )
                )
                / traffic[1],
            }
            if traffic is not None
            and len(traffic[0])
            and traffic[1] > 0
            and not declines_in_capacity
            else "the labelled rows"
        ),
        "decline_cases_per_day": float(np.sum(declined)) / days,
        "review_precision": float(labels[flagged].mean()) if flagged.any() else 0.0,
        "decline_precision": float(labels[declined].mean()) if declined.any() else 0.0,
        "decline_precision_target": target,
        "decline_precision_reached": reached,
        "max_decline_share": replaces.basis.get("max_decline_share", 0.5),
        "decline_rate": float(np.mean(declined)),
        "window": window,
        "replaces": {
            "review_threshold": replaces.review_threshold,
            "decline_threshold": replaces.decline_threshold,
            "fitted_on": replaces.basis.get("fitted_on", "validation window"),
        },
    }
    review_rate = float(np.mean(flagged))
    return ThresholdPolicy(review_threshold, decline_threshold, review_rate, basis)
