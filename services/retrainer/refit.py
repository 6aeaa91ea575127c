"""Refit a challenger's thresholds on the most recent labelled served traffic.

A challenger trained after a change of fraud pattern has thresholds fitted on a
validation window from before (or at the start of) the change; on the demo's card
testing such a v0002 ranked the new frauds well (AP 0.958) and flagged 8 of 240. So
before the gates judge it, its policy is refitted on the gates' own held-out window -
the freshest labelled served rows, in served (compressed) time - keeping the review
capacity in cases per day and the decline-precision rule; the gates then judge the
policy that will be served, and the registry's audit (hence ``model.events``) and the
bundle's ``policy.json`` say what it was fitted on (ADR 0012).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.card import card_markdown
from models.lgb import lgb
from models.policy import ThresholdPolicy, refit_policy
from services.retrainer.challenger import ChallengerRun

log = logging.getLogger("fraud.retrainer")
DAY_NS = 86_400 * 10**9
MIN_ROWS = 100  # fewer complete rows than this say little about a day's volume


@dataclass(frozen=True)
class RefitConfig:
    enabled: bool = True
    days: float | None = None
    """Most recent served days of the gates' window to refit on (None: all its complete rows)."""
    cases_per_day: float | None = None
    """Review capacity (None: the one the challenger's own policy gives at its validation
    volume, i.e. the configured review rate)."""
    declines_in_capacity: bool = False
    """The capacity bounds declines too (the training-time rule); by default it bounds the
    review band and declines follow the precision target."""
    compression: float = 1.0
    """Served seconds per wall second of the recent traffic's event times (demos)."""


@dataclass(frozen=True)
class RecentTraffic:
    """The freshest served rows (labelled or not): what sizes the review band."""

    features: np.ndarray
    event_time_us: np.ndarray

    def days(self, compression: float) -> float:
        n = len(self.event_time_us)
        if n < 2:
            return 0.0
        span_us = float(self.event_time_us.max() - self.event_time_us.min()) * n / (n - 1)
        return span_us * compression / (DAY_NS / 1000)


@dataclass(frozen=True)
class Refit:
    """What :func:`refit_run` did: the run (with the policy it serves) and why."""

    run: ChallengerRun
    refitted: bool
    summary: str

    @property
    def policy(self) -> ThresholdPolicy:
        return self.run.outcome.bundle.policy

    def details(self) -> dict[str, Any]:
        policy = self.policy
        return {
            "policy": {
                "refitted": self.refitted,
                "summary": self.summary,
                "review_threshold": policy.review_threshold,
                "decline_threshold": policy.decline_threshold,
                "review_rate": policy.review_rate,
                "basis": policy.basis,
            }
        }


def refit_rows(run: ChallengerRun, days: float | None) -> np.ndarray:
    """Mask of the evaluation rows to refit on: the complete ones, the last ``days``."""
    mask = np.asarray(run.eval_complete, dtype=bool).copy()
    if len(mask) != len(run.eval_scores) or not mask.any():
        return np.zeros(len(run.eval_scores), dtype=bool)
    if days is not None:
        times = run.eval_times.astype("datetime64[ns]").astype(np.int64)
        end = times[mask].max()
        mask &= times > end - int(days * DAY_NS)
    return mask


def refit_run(
    run: ChallengerRun, config: RefitConfig, traffic: RecentTraffic | None = None
) -> Refit:
    """The run with its bundle's policy refitted, or unchanged (and the reason) when off
    or when the recent window is too small to say how much traffic a day holds."""
    trained = run.outcome.bundle.policy
    kept = f"policy kept as trained (review >= {trained.review_threshold:.4g})"
    if not config.enabled:
        return Refit(run, False, f"{kept}: refit off")
    mask = refit_rows(run, config.days)
    rows = int(mask.sum())
    if rows < MIN_ROWS:
        return Refit(run, False, f"{kept}: {rows} complete recent rows, fewer than {MIN_ROWS}")
    times = run.eval_times[mask].astype("datetime64[ns]")
    first, last = times.min(), times.max()
    # rows cover [first, last] plus about one row's spacing: a day's worth is not a day minus
    # one gap
    span_ns = int((last - first).astype(np.int64)) * rows / max(1, rows - 1)
    days = span_ns / DAY_NS
    if days <= 0:
        return Refit(run, False, f"{kept}: the recent rows span no time")
    capacity = config.cases_per_day or float(
        trained.basis.get("review_cases_per_day") or trained.review_rate * rows / days
    )
    window = {
        "rows": rows,
        "frauds": int(np.sum(run.eval_labels[mask])),
        "first_event": str(first)[:19],
        "last_event": str(last)[:19],
        "days": round(days, 4),
        "rows_from": "the gates' held-out window of labelled served rows (served time)",
    }
    fresh = None
    if traffic is not None and len(traffic.features) >= MIN_ROWS:
        booster = lgb.Booster(model_str=run.outcome.bundle.model_text)
        scores = np.asarray(booster.predict(np.asarray(traffic.features, dtype=np.float32)))
        fresh = (scores, traffic.days(config.compression))
    policy = refit_policy(
        run.eval_scores[mask],
        run.eval_labels[mask],
        days=days,
        cases_per_day=capacity,
        replaces=trained,
        window=window,
        declines_in_capacity=config.declines_in_capacity,
        traffic=fresh,
    )
    bundle = run.outcome.bundle
    card = {
        **bundle.card,
        "policy": {
            "review_threshold": policy.review_threshold,
            "decline_threshold": policy.decline_threshold,
            "review_rate": policy.review_rate,
            "fitted_on": f"{rows:,} recent labelled served rows ({days:.2f} days to {last!s:.19}),"
            f" {capacity:g} review cases a day; trained thresholds were "
            f"{trained.review_threshold:.5f} / {trained.decline_threshold:.5f}",
        },
    }
    bundle = dataclasses.replace(bundle, policy=policy, card=card)
    if bundle.card_markdown and "metrics" in card:
        bundle = dataclasses.replace(bundle, card_markdown=card_markdown(card))
    reached = "reached" if policy.basis["decline_precision_reached"] else "not reached"
    basis = policy.basis
    summary = (
        f"policy refit on {rows} recent labelled served rows ({days:.2f} days, "
        f"{window['frauds']} fraud): review >= {policy.review_threshold:.4g} "
        f"({_band(basis)}, capacity {capacity:.3g}"
        f"{' with declines' if config.declines_in_capacity else ''}), decline >= "
        f"{policy.decline_threshold:.4g} ({basis['decline_cases_per_day']:.3g}/day, precision "
        f"{basis['decline_precision']:.3f}, target {basis['decline_precision_target']:g} "
        f"{reached}); trained thresholds were {trained.review_threshold:.4g} / "
        f"{trained.decline_threshold:.4g}"
    )
    outcome = dataclasses.replace(run.outcome, bundle=bundle)
    return Refit(dataclasses.replace(run, outcome=outcome), True, summary)


def _band(basis: dict[str, Any]) -> str:
    sized = basis.get("review_band_sized_on")
    if isinstance(sized, dict):
        return (
            f"{sized['review_cases_per_day']:.3g} cases/day on the last {sized['rows']} served rows"
        )
    return f"{basis['review_cases_per_day']:.3g} cases/day"
