"""Where the feedback processor's joined (served decision, label) pairs go.

(a) training rows, exactly the served vector + the label, into the
:class:`features.training_store.TrainingStore` (idempotent per label);
(b) fraud labels into terminal risk through a :class:`RiskUpdater` (the Features helper's
:class:`features.profiles.writer.TerminalRiskWriter`: idempotent per transaction_id, label
delay respected; labels not yet usable come back ``deferred`` and are retried on ticks).

A write that fails raises, so the processor's batch is not acknowledged and is replayed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from features.definitions import FEATURE_SET_ID
from features.profiles.errors import ProfileStoreUnavailable
from features.profiles.writer import TerminalLabel
from features.training_store import TrainingRow, TrainingStore
from streams.feedback.records import Labelled

log = logging.getLogger("fraud.feedback")

_RETRY_DELAYS_S = (0.1, 0.3, 1.0, 2.0)


class ApplyOutcome(Protocol):
    @property
    def deferred(self) -> tuple[TerminalLabel, ...]: ...


class RiskUpdater(Protocol):
    def apply_labels(self, labels: Iterable[TerminalLabel]) -> ApplyOutcome: ...


@dataclass
class SinkCounters:
    rows_written: int = 0
    rows_duplicate: int = 0
    wrong_feature_set: int = 0
    risk_labels: int = 0
    risk_deferred: int = 0


def training_row(pair: Labelled) -> TrainingRow:
    served, label = pair.served, pair.label
    return TrainingRow(
        transaction_id=served.transaction_id,
        event_time=served.event_time,
        card_id=served.card_id,
        terminal_id=served.terminal_id,
        amount=served.amount,
        is_fraud=label.label == "fraud",
        label_source=label.source,
        analyst=label.analyst,
        labelled_at=label.labelled_at,
        model_version=served.model_version,
        score=served.score,
        decision=served.decision,
        feature_set=served.feature_set,
        features=served.features,
        note=label.note,
    )


def terminal_label(pair: Labelled) -> TerminalLabel:
    return TerminalLabel(
        transaction_id=pair.served.transaction_id,
        terminal_id=pair.served.terminal_id,
        event_time=pair.served.event_time,
        labelled_at=pair.label.labelled_at,
        is_fraud=pair.label.label == "fraud",
    )


class FeedbackSink:
    def __init__(
        self,
        store: TrainingStore,
        risk: RiskUpdater | None = None,
        *,
        feature_set: str = FEATURE_SET_ID,
        sleep: object = time.sleep,
    ) -> None:
        self.store = store
        self.risk = risk
        self.feature_set = feature_set
        self.counters = SinkCounters()
        self._deferred: list[TerminalLabel] = []
        self._sleep = sleep

    def write(self, pairs: Sequence[Labelled]) -> None:
        usable = [p for p in pairs if p.served.feature_set == self.feature_set]
        if len(usable) < len(pairs):  # served by a model of another feature set: unusable
            self.counters.wrong_feature_set += len(pairs) - len(usable)
            log.warning("stage=sink skipped=%d reason=feature_set", len(pairs) - len(usable))
        result = self.store.append(training_row(p) for p in usable)
        self.counters.rows_written += result.written
        self.counters.rows_duplicate += result.duplicates
        if self.risk is not None:
            self._apply([terminal_label(p) for p in pairs if p.label.label == "fraud"])

    def tick(self) -> None:
        if self._deferred and self.risk is not None:
            deferred, self._deferred = self._deferred, []
            self._apply(deferred)

    def _apply(self, labels: list[TerminalLabel]) -> None:
        if not labels or self.risk is None:
            return
        for attempt, delay in enumerate((*_RETRY_DELAYS_S, None)):
            try:
                outcome = self.risk.apply_labels(labels)
                break
            except ProfileStoreUnavailable as exc:
                if delay is None:
                    raise
                log.warning("stage=risk redis unavailable (%s); retry %d", exc, attempt + 1)
                self._sleep(delay)  # type: ignore[operator]
        self.counters.risk_labels += len(labels) - len(outcome.deferred)
        self.counters.risk_deferred = len(outcome.deferred)
        self._deferred.extend(outcome.deferred)
