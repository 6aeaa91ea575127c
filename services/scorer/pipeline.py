"""Scoring a batch of transactions: features -> ONNX -> policy -> (reasons) -> events.

The stream scorer and the REST API both call :meth:`ScoringPipeline.score`; there is one
copy of the decision logic. The REST API explains flagged rows before it answers
(``explain=True``: its response carries the reasons); the stream scorer sends decisions
without waiting for reasons and hands the flagged rows (:attr:`ScoredBatch.flagged`) to
:class:`services.scorer.reasons.ReasonsWorker`, whose review cases follow. Stage names
(``features``, ``inference``, ``policy``, ``explain``) are the ones in the logs and in
``fraud_stage_latency_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from features.definitions import FEATURE_SET_ID
from features.interface import FeatureStore
from models.serving import ServingModel
from services.scorer import metrics
from services.scorer.reasons import Flagged, review_case
from streams.events import Decision, Reason, ReviewCase, Transaction


@dataclass
class ScoredBatch:
    decisions: list[Decision] = field(default_factory=list)
    review_cases: list[ReviewCase] = field(default_factory=list)
    """Cases ready to send with the decisions (reasons computed, or rebuilt as owed)."""
    timings_ms: dict[str, float] = field(default_factory=dict)
    flagged: Flagged = field(default_factory=Flagged)
    """Flagged rows whose review cases wait for their reasons (``explain=False``)."""


class StageClock:
    """Times consecutive stages of one batch (ms) and feeds the stage histogram."""

    def __init__(self) -> None:
        self.timings_ms: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        seconds = now - self._last
        self._last = now
        self.timings_ms[stage] = round(self.timings_ms.get(stage, 0.0) + seconds * 1e3, 4)
        metrics.observe_stage(stage, seconds)


class ScoringPipeline:
    def __init__(self, features: FeatureStore, champion: Callable[[], ServingModel]) -> None:
        self._features = features
        self._champion = champion

    def score(
        self,
        transactions: Sequence[Transaction],
        produced_at_ms: Sequence[int] | None = None,
        clock: StageClock | None = None,
        submitted_by: str | None = None,
        *,
        explain: bool = True,
    ) -> ScoredBatch:
        """``submitted_by``: the API caller's identity, recorded on each decision.
        ``explain``: compute the flagged rows' reasons now (decisions and review cases
        carry them); False leaves the decisions' reasons empty and the rows in
        :attr:`ScoredBatch.flagged` for the reasons worker."""
        clock = clock or StageClock()
        if not transactions:
            return ScoredBatch(timings_ms=clock.timings_ms)
        matrix = self._features.update_and_read_batch(transactions)
        values = matrix.values
        clock.lap("features")

        served = self._champion()  # one model for the whole batch: swaps happen between batches
        scores = served.model.predict(values)
        clock.lap("inference")

        outcomes = served.policy.decide(scores)
        flagged = np.flatnonzero(outcomes != "approve")
        clock.lap("policy")

        reasons: dict[int, list[Reason]] | None = None
        if explain:
            reasons = {}
            if len(flagged):
                explained = served.explainer.explain(values[flagged])
                reasons = dict(zip(flagged.tolist(), explained, strict=True))
            clock.lap("explain")

        batch = self._events(
            transactions,
            produced_at_ms,
            values,
            scores,
            outcomes,
            reasons,
            served.version,
            clock,
            submitted_by,
        )
        if reasons is None and len(flagged):
            batch.flagged = Flagged(
                [batch.decisions[i] for i in flagged.tolist()],
                [transactions[i] for i in flagged.tolist()],
                values[flagged],
                served.explainer,
            )
        return batch

    @staticmethod
    def _events(
        transactions: Sequence[Transaction],
        produced_at_ms: Sequence[int] | None,
        values: np.ndarray,
        scores: np.ndarray,
        outcomes: np.ndarray,
        reasons: dict[int, list[Reason]] | None,
        version: str,
        clock: StageClock,
        submitted_by: str | None,
    ) -> ScoredBatch:
        now = datetime.now(UTC)
        rows = values.astype(np.float64).tolist()
        score_list = np.clip(scores.astype(np.float64), 0.0, 1.0).tolist()
        outcome_list = outcomes.tolist()
        latencies = _latencies_ms(produced_at_ms, now.timestamp() * 1e3, len(transactions))
        batch = ScoredBatch(timings_ms=clock.timings_ms)
        for i, tx in enumerate(transactions):
            decision = Decision(
                transaction_id=tx.transaction_id,
                card_id=tx.card_id,
                terminal_id=tx.terminal_id,
                event_time=tx.event_time,
                amount=tx.amount,
                score=score_list[i],
                decision=outcome_list[i],
                model_version=version,
                feature_set=FEATURE_SET_ID,
                features=rows[i],
                reasons=reasons.get(i, []) if reasons is not None else [],
                timings_ms=clock.timings_ms,
                latency_ms=latencies[i],
                decided_at=now,
                submitted_by=submitted_by,
            )
            batch.decisions.append(decision)
            if reasons is not None and decision.decision != "approve":
                batch.review_cases.append(review_case(decision, tx, decision.reasons))
        for outcome, count in zip(*np.unique(outcomes, return_counts=True), strict=True):
            metrics.DECISIONS.labels(str(outcome)).inc(int(count))
        metrics.REVIEW_CASES.inc(int(np.count_nonzero(outcomes != "approve")))
        return batch


def _latencies_ms(
    produced_at_ms: Sequence[int] | None, now_ms: float, count: int
) -> list[float | None]:
    """Produce time -> decision (ms, rounded to µs) per transaction, None where the record
    had no produce timestamp; the known ones feed the end-to-end histogram in one call."""
    if produced_at_ms is None:
        return [None] * count
    produced = np.asarray(produced_at_ms, dtype=np.float64)
    known = produced > 0
    latency = np.round(now_ms - produced, 3)
    metrics.E2E_LATENCY.observe_many(np.maximum(latency[known], 0.0) / 1e3)
    return [v if ok else None for v, ok in zip(latency.tolist(), known.tolist(), strict=True)]
