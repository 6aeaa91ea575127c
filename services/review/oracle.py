"""Non-interactive labellers for demos and automation.

* :class:`Oracle` - labels review cases from the simulator's ground truth after ``delay_s``,
  flipping a fraction ``error_rate`` (analysts are not perfect). Source/analyst "oracle".
* :func:`chargeback_labels` - the chargeback feed: approved decisions whose ground truth is
  fraud (missed fraud) become "fraud" labels with source "chargeback".
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.review.session import PendingCase, ReviewSession, Verdict
from streams.events import Decision, Label


class TruthReader(Protocol):
    def read_batch(self, transaction_ids: Sequence[str]) -> dict[str, tuple[int, int]]: ...


@dataclass
class OracleStats:
    labelled: int = 0
    flipped: int = 0
    unknown: int = 0


class Oracle:
    def __init__(
        self, truth: TruthReader, *, delay_s: float = 0.0, error_rate: float = 0.0, seed: int = 7
    ) -> None:
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
        self.truth = truth
        self.delay_s = delay_s
        self.error_rate = error_rate
        self.rng = random.Random(seed)
        self.stats = OracleStats()

    def due(self, cases: Sequence[PendingCase], now: float) -> list[PendingCase]:
        return [c for c in cases if now - c.received_at >= self.delay_s]

    def label(self, session: ReviewSession, cases: Sequence[PendingCase]) -> None:
        """Give each case its (possibly wrong) ground-truth verdict; unknown truth -> skip."""
        truth = self.truth.read_batch([c.transaction_id for c in cases])
        for case in cases:
            known = truth.get(case.transaction_id)
            verdict: Verdict
            if known is None:
                verdict = "skip"
                self.stats.unknown += 1
            else:
                is_fraud = bool(known[0])
                if self.rng.random() < self.error_rate:
                    is_fraud = not is_fraud
                    self.stats.flipped += 1
                verdict = "fraud" if is_fraud else "legit"
                self.stats.labelled += 1
            session.verdict(case, verdict)


def chargeback_labels(
    decisions: Sequence[Decision], truth: TruthReader, labelled_at: datetime
) -> list[Label]:
    """Fraud labels (source "chargeback") for approved decisions that were really fraud."""
    approved = [d for d in decisions if d.decision == "approve"]
    known = truth.read_batch([d.transaction_id for d in approved])
    return [
        Label(
            transaction_id=d.transaction_id,
            label="fraud",
            analyst="chargeback",
            labelled_at=labelled_at,
            source="chargeback",
        )
        for d in approved
        if known.get(d.transaction_id, (0, 0))[0] == 1
    ]
