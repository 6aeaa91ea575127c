"""What the demo sees on the topics: decisions, review cases, labels and model events.

One consumer (its own group, from the beginning of this run's topics) in a thread. Ground
truth (the simulator's, in Redis) is joined to the decisions in batches, so the dashboard
can show how each model version does on the new pattern while it happens.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import Consumer

from streams.events import Decision, Label, ModelEvent, ReviewCase
from streams.kafka import consumer_config
from streams.serde import decision_decoder, label_decoder, model_event_decoder, review_case_decoder
from streams.simulator import GroundTruthStore
from streams.topics import Topics

CARD_TESTING = 4  # the simulator's scenario number of the new pattern


@dataclass
class Served:
    """One decision as the demo keeps it (enough for AP and recall per model version)."""

    transaction_id: str
    score: float
    flagged: bool
    model_version: str
    after_switch: bool
    is_fraud: int | None = None
    scenario: int | None = None


@dataclass
class PatternStats:
    """How one model version did on the new pattern's fraud after the switch."""

    fraud: int = 0
    caught: int = 0

    @property
    def recall(self) -> float | None:
        return self.caught / self.fraud if self.fraud else None


@dataclass
class TopicView:
    """A consistent copy of the watcher's counters for one dashboard frame."""

    decisions: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_version: Counter[str] = field(default_factory=Counter)
    review_cases: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    fraud_labels: int = 0
    events: list[tuple[float, ModelEvent]] = field(default_factory=list)
    pattern: dict[str, PatternStats] = field(default_factory=dict)


class TopicWatcher(threading.Thread):
    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        truth: GroundTruthStore,
        started_at: datetime,
        group_id: str,
    ) -> None:
        super().__init__(name="demo-watch", daemon=True)
        self.topics = topics
        self.truth = truth
        self.started_at = started_at
        config = consumer_config(bootstrap, group_id=group_id, client_id="demo-dashboard")
        config["auto.offset.reset"] = "earliest"
        self.consumer = Consumer(config)
        self.switched_at: float | None = None  # wall clock (monotonic) of the switch
        self.served: list[Served] = []
        self._pending: list[Served] = []
        self._view = TopicView()
        self._event_ids: set[str] = set()
        self._lock = threading.Lock()
        self._running = True
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._running = False

    def view(self) -> TopicView:
        with self._lock:
            v = self._view
            return TopicView(
                decisions=v.decisions,
                outcomes=Counter(v.outcomes),
                by_version=Counter(v.by_version),
                review_cases=v.review_cases,
                labels=Counter(v.labels),
                fraud_labels=v.fraud_labels,
                events=list(v.events),
                pattern={k: PatternStats(s.fraud, s.caught) for k, s in v.pattern.items()},
            )

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # shown on the dashboard; the demo goes on
            self.error = exc
        finally:
            self.consumer.close()

    def _loop(self) -> None:
        t = self.topics
        self.consumer.subscribe([t.scored, t.review, t.labels, t.model_events])
        last_truth = time.monotonic()
        while self._running:
            messages = self.consumer.consume(1000, 0.3)
            with self._lock:
                for message in messages:
                    value = message.value()
                    if message.error() is None and value is not None:
                        self._handle(message.topic(), value)
            if time.monotonic() - last_truth >= 2.0:
                self.join_truth()
                last_truth = time.monotonic()
        self.join_truth()

    def _handle(self, topic: str | None, value: bytes) -> None:
        t, view = self.topics, self._view
        if topic == t.scored:
            decision = decision_decoder.decode(value)
            if isinstance(decision, Decision):
                view.decisions += 1
                view.outcomes[decision.decision] += 1
                view.by_version[decision.model_version] += 1
                served = Served(
                    decision.transaction_id,
                    decision.score,
                    decision.decision != "approve",
                    decision.model_version,
                    self.switched_at is not None,
                )
                self.served.append(served)
                self._pending.append(served)
        elif topic == t.review:
            if isinstance(review_case_decoder.decode(value), ReviewCase):
                view.review_cases += 1
        elif topic == t.labels:
            label = label_decoder.decode(value)
            if isinstance(label, Label):
                view.labels[label.source] += 1
                view.fraud_labels += label.label == "fraud"
        elif topic == t.model_events:
            event = model_event_decoder.decode(value)
            if isinstance(event, ModelEvent) and event.event_id not in self._event_ids:
                if event.event_id:  # delivery is at least once: a repeated id is dropped
                    self._event_ids.add(event.event_id)
                view.events.append(((event.at - self.started_at).total_seconds(), event))

    def join_truth(self) -> None:
        """Ground truth for decisions seen since the last call; updates pattern recall."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        truth = self.truth.read_batch([s.transaction_id for s in pending])
        with self._lock:
            for served in pending:
                found = truth.get(served.transaction_id)
                if found is None:
                    continue
                served.is_fraud, served.scenario = found
                if served.after_switch and served.is_fraud and served.scenario == CARD_TESTING:
                    stats = self._view.pattern.setdefault(served.model_version, PatternStats())
                    stats.fraud += 1
                    stats.caught += served.flagged
