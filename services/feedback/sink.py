"""Where the feedback processor's joined (served decision, label) pairs go.

(a) training rows, exactly the served vector + the label, into the
:class:`features.training_store.TrainingStore` (idempotent per label);
(b) fraud labels into terminal risk through a :class:`RiskUpdater` (the Features helper's
:class:`features.profiles.writer.TerminalRiskWriter`: idempotent per transaction_id, label
delay respected). A label not usable yet comes back *deferred*: :meth:`FeedbackSink.write`
returns its pair and the processor keeps it in a table with a changelog topic (it survives
a restart) and hands it to :meth:`FeedbackSink.retry` on every tick.

Every method blocks (parquet, Redis) and is run by the processor on one thread of its own,
never on faust's event loop. A write that fails is retried here, with a capped backoff,
until it is done: the processor's batch is acknowledged only after ``write`` returned, so
an outage holds the stream back (and shows as ``fraud_feedback_sink_failing`` and a log
line) instead of losing a batch. :meth:`FeedbackSink.stop` ends the retrying at shutdown;
the pending call then raises :class:`streams.feedback.app.SinkStopped`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.profiles.writer import TerminalLabel
from features.training_store import TrainingRow, TrainingStore
from services.feedback import metrics
from streams.events import Label
from streams.feedback.app import SinkStopped
from streams.feedback.records import Labelled

log = logging.getLogger("fraud.feedback")

BACKOFF_S = (0.1, 0.3, 1.0, 2.0, 5.0)
T = TypeVar("T")


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
    rows_relanded: int = 0


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


def audit_label(record: Mapping[str, Any]) -> Label:
    """A label as the training store's audit trail recorded it."""
    labelled_at = record["labelled_at"]
    return Label(
        transaction_id=str(record["transaction_id"]),
        label="fraud" if record["label"] == "fraud" else "legit",
        analyst=str(record["analyst"]),
        labelled_at=labelled_at.to_pydatetime()
        if hasattr(labelled_at, "to_pydatetime")
        else datetime.fromisoformat(str(labelled_at)),
        source=record["label_source"],
        note=record.get("note") if isinstance(record.get("note"), str) else None,
    )


class FeedbackSink:
    def __init__(
        self,
        store: TrainingStore,
        risk: RiskUpdater | None = None,
        *,
        feature_set: str = FEATURE_SET_ID,
        sleep: Callable[[float], object] | None = None,
        warn_every_s: float = 30.0,
    ) -> None:
        self.store = store
        self.risk = risk
        self.feature_set = feature_set
        self.counters = SinkCounters()
        self.warn_every_s = warn_every_s
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        self._missing: dict[str, list[Label]] = {}
        self._missing_known = False

    # -- the processor's calls ----------------------------------------------------------
    def write(self, pairs: Sequence[Labelled]) -> list[Labelled]:
        """Training rows + terminal risk for ``pairs``, retried until done; returns the
        pairs whose risk update must wait (their label is not usable yet)."""
        usable = [p for p in pairs if self._usable(p)]
        if len(usable) < len(pairs):  # served by a model of another feature set: unusable
            self.counters.wrong_feature_set += len(pairs) - len(usable)
            metrics.TRAINING_ROWS.labels("unusable").inc(len(pairs) - len(usable))
            log.warning("stage=sink skipped=%d reason=feature_set", len(pairs) - len(usable))
        result = self._until_done(
            "training_store", lambda: self.store.append(training_row(p) for p in usable)
        )
        self.counters.rows_written += result.written
        self.counters.rows_duplicate += result.duplicates
        metrics.TRAINING_ROWS.labels("written").inc(result.written)
        metrics.TRAINING_ROWS.labels("duplicate").inc(result.duplicates)
        relanded = [p for p in usable if p.served.transaction_id in self._missing]
        if relanded:
            self._landed(relanded)
        return self._apply([p for p in pairs if p.label.label == "fraud"])

    def retry(self, pairs: Sequence[Labelled]) -> list[Labelled]:
        """The risk update of pairs that waited; returns those that still wait."""
        still = self._apply(list(pairs))
        metrics.DEFERRED_LABELS.set(len(still))
        return still

    def missing_rows(self) -> dict[str, list[Label]]:
        """Labels applied whose training rows were lost (a quarantined part), by
        transaction_id: the processor writes them again from the decisions it holds."""
        if self.store.refresh() or not self._missing_known:
            missing: dict[str, list[Label]] = {}
            records = self._until_done("training_store", self.store.missing_rows)
            for record in records:
                missing.setdefault(str(record["transaction_id"]), []).append(audit_label(record))
            self._missing, self._missing_known = missing, True
            if missing:
                log.warning(
                    "stage=sink %d labels lost their training rows (quarantined parts %s); "
                    "writing them again from the served decisions",
                    sum(len(v) for v in missing.values()),
                    [p.name for p in self.store.quarantine.parts()],
                )
        metrics.MISSING_ROWS.set(sum(len(v) for v in self._missing.values()))
        return {key: list(labels) for key, labels in self._missing.items()}  # a copy per call

    def stop(self) -> None:
        """Stop retrying: a call that is still failing raises :class:`SinkStopped`."""
        self._stopping.set()

    # -- internals --------------------------------------------------------------------------
    def _usable(self, pair: Labelled) -> bool:
        served = pair.served
        return served.feature_set == self.feature_set and len(served.features) == len(FEATURE_NAMES)

    def _landed(self, pairs: Sequence[Labelled]) -> None:
        for pair in pairs:
            labels = self._missing.get(pair.served.transaction_id, [])
            left = [lab for lab in labels if not _same_label(lab, pair.label)]
            self.counters.rows_relanded += len(labels) - len(left)
            if left:
                self._missing[pair.served.transaction_id] = left
            else:
                self._missing.pop(pair.served.transaction_id, None)
        metrics.MISSING_ROWS.set(sum(len(v) for v in self._missing.values()))

    def _apply(self, pairs: list[Labelled]) -> list[Labelled]:
        risk = self.risk
        if not pairs or risk is None:
            return []
        labels = [terminal_label(p) for p in pairs]
        outcome = self._until_done("terminal_risk", lambda: risk.apply_labels(labels))
        waiting = {label.transaction_id for label in outcome.deferred}
        self.counters.risk_labels += len(labels) - len(outcome.deferred)
        self.counters.risk_deferred = len(outcome.deferred)
        return [p for p in pairs if p.served.transaction_id in waiting]

    def _until_done(self, target: str, call: Callable[[], T]) -> T:
        """``call()`` until it succeeds; a failure is a metric, a log line (every
        ``warn_every_s``) and a backoff, never a lost batch."""
        attempt, first_failure, last_warning = 0, 0.0, float("-inf")
        while True:
            try:
                result = call()
            except Exception as exc:
                if self._stopping.is_set():
                    raise SinkStopped(f"{target} still failing at shutdown: {exc}") from exc
                attempt += 1
                now = time.monotonic()
                if attempt == 1:
                    first_failure = now
                    metrics.SINK_FAILING.labels(target).set(1)
                metrics.SINK_RETRIES.labels(target).inc()
                if now - last_warning >= self.warn_every_s:
                    last_warning = now
                    log.warning(
                        "stage=sink %s failing for %.1fs (attempt %d, %s: %s); the batch is "
                        "held until it is written",
                        target,
                        now - first_failure,
                        attempt,
                        type(exc).__name__,
                        exc,
                    )
                self._sleep(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)])
                continue
            if attempt:
                metrics.SINK_FAILING.labels(target).set(0)
                log.warning(
                    "stage=sink %s written after %d failed attempts (%.1fs)",
                    target,
                    attempt,
                    time.monotonic() - first_failure,
                )
            return result


def _same_label(a: Label, b: Label) -> bool:
    return (a.label, a.source, a.analyst, a.labelled_at) == (
        b.label,
        b.source,
        b.analyst,
        b.labelled_at,
    )
