"""The demo's oracle analyst on the case store: it works the queue like an analyst does
(claim, verdict through :class:`Workflow`, so its labels take the same outbox and relay),
from the simulator's ground truth, ``delay_s`` after each case's decision, wrong on a
fraction ``error_rate``. A fraud verdict that needs a second approver is approved by a
second oracle identity. Cases whose truth is unknown are left in the queue."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from services.cases.errors import CaseConflict
from services.cases.store import CaseStore, QueueFilter
from services.cases.workflow import Workflow
from services.review.oracle import TruthReader


@dataclass
class CaseOracleStats:
    labelled: int = 0
    flipped: int = 0
    unknown: int = 0
    refused: int = 0


class CaseOracle:
    def __init__(
        self,
        store: CaseStore,
        truth: TruthReader,
        *,
        delay_s: float = 0.0,
        error_rate: float = 0.0,
        name: str = "oracle",
        seed: int = 7,
    ) -> None:
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
        self.store = store
        self.workflow = Workflow(store)
        self.truth = truth
        self.delay_s = delay_s
        self.error_rate = error_rate
        self.name = name
        self.rng = random.Random(seed)
        self.stats = CaseOracleStats()
        self._unknown: set[str] = set()

    def step(self, limit: int = 200) -> int:
        """Label the open cases older than ``delay_s``; returns how many were labelled."""
        due = [
            c
            for c in self.store.queue(
                QueueFilter(states=("open", "escalated"), min_age_s=self.delay_s, limit=limit)
            )
            if c["state"] in ("open", "escalated") and c["case_id"] not in self._unknown
        ]
        if not due:
            return 0
        truth = self.truth.read_batch([c["transaction_id"] for c in due])
        done = 0
        for case in due:
            known = truth.get(case["transaction_id"])
            if known is None:
                self._unknown.add(case["case_id"])
                self.stats.unknown += 1
                continue
            is_fraud = bool(known[0])
            if self.rng.random() < self.error_rate:
                is_fraud = not is_fraud
                self.stats.flipped += 1
            verdict: Literal["fraud", "legit"] = "fraud" if is_fraud else "legit"
            try:
                result = self.workflow.verdict(case["case_id"], self.name, verdict, source="oracle")
                if result.action == "proposed":
                    self.workflow.verdict(
                        case["case_id"], f"{self.name}-approver", "fraud", source="oracle"
                    )
            except CaseConflict:  # an analyst holds it or resolved it: theirs
                self.stats.refused += 1
                continue
            self.stats.labelled += 1
            done += 1
        return done
