"""Reasons for flagged transactions, off the decision's critical path.

A decision needs a score, an outcome and a model version; the top reasons (TreeSHAP) are
for the analyst who opens the review case. TreeSHAP is the scorer's costliest step per
row (~0.7 ms per flagged row), so in the stream the decisions of a batch are sent as soon
as it is scored, with empty reasons, and the batch's flagged rows go to one worker thread
(:class:`ReasonsWorker`; LightGBM's C call releases the GIL, so it runs beside the scoring
loop on the second core). The review cases follow when their reasons are computed; the
batch is settled - acknowledged, marked, committed - only once its review cases are
acknowledged too (:mod:`services.scorer.settling`, docs/adr/0010-reasons-off-the-decision-path.md).

A flagged decision that reached the log without its review case (a crash in between) is
*owed* a case (:mod:`services.scorer.recovery`): it is explained again from the feature
vector the decision carries, with the explainer of the decision's model version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from models.explain import Explainer
from services.scorer import metrics
from streams.events import Decision, Reason, ReviewCase, Transaction

log = logging.getLogger("fraud.scorer")


@dataclass(frozen=True)
class Flagged:
    """Flagged transactions of one batch whose review cases still need their reasons."""

    decisions: list[Decision] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    features: np.ndarray | None = None
    """Their feature rows, in order (None: rebuilt from each decision's ``features``)."""
    explainer: Explainer | None = None
    """The model that decided them (None: looked up by each decision's model version)."""

    def __len__(self) -> int:
        return len(self.decisions)


def review_case(decision: Decision, transaction: Transaction, reasons: list[Reason]) -> ReviewCase:
    """The review case of a flagged decision, with its reasons."""
    return ReviewCase(
        case_id=decision.transaction_id,
        transaction=transaction,
        score=decision.score,
        decision=decision.decision,
        model_version=decision.model_version,
        reasons=reasons,
        created_at=decision.decided_at,
    )


def explain(
    groups: Sequence[Flagged], explainer_for: Callable[[str], Explainer]
) -> list[ReviewCase]:
    """The review cases of every group, in order, each with its top reasons."""
    if not any(len(g) for g in groups):
        return []
    started = time.perf_counter()
    cases = [case for g in groups if len(g) for case in _explain(g, explainer_for)]
    metrics.observe_stage("explain", time.perf_counter() - started)
    return cases


def _explain(flagged: Flagged, explainer_for: Callable[[str], Explainer]) -> list[ReviewCase]:
    """One TreeSHAP call per model version."""
    reasons: list[list[Reason]] = [[] for _ in flagged.decisions]
    if flagged.explainer is not None and flagged.features is not None:
        reasons = flagged.explainer.explain(flagged.features)
    else:
        by_version: dict[str, list[int]] = {}
        for i, d in enumerate(flagged.decisions):
            by_version.setdefault(d.model_version, []).append(i)
        for version, rows in by_version.items():
            features = np.array([flagged.decisions[i].features for i in rows], dtype=np.float32)
            for i, row_reasons in zip(rows, explainer_for(version).explain(features), strict=True):
                reasons[i] = row_reasons
    return [
        review_case(d, t, r)
        for d, t, r in zip(flagged.decisions, flagged.transactions, reasons, strict=True)
    ]


class ReasonsWorker:
    """One thread computing the reasons of flagged batches, in the order submitted."""

    def __init__(self, explainer_for: Callable[[str], Explainer]) -> None:
        self._explainer_for = explainer_for
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasons")

    def submit(self, groups: Sequence[Flagged]) -> Future[list[ReviewCase]]:
        """The batch's review cases, computed on the worker thread."""
        if not any(len(g) for g in groups):
            return done([])
        return self._pool.submit(explain, list(groups), self._explainer_for)

    def explain_now(self, groups: Sequence[Flagged]) -> list[ReviewCase]:
        """The review cases computed on the calling thread (for a path that must wait)."""
        return explain(groups, self._explainer_for)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def done(cases: Sequence[ReviewCase]) -> Future[list[ReviewCase]]:
    """A future already holding ``cases`` (a batch with nothing to explain)."""
    future: Future[list[ReviewCase]] = Future()
    future.set_result(list(cases))
    return future
